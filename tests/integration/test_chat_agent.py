"""The chat agent over several turns against the stub server (scripted tool calls).

The scripted chat model (clinsynth/testing/chat_responder.py) calls the tools; the items go
through the real generation graph and critic. No reader is configured, so difficulty is the
lexical proxy, whose validated ROC-AUC is below the bar: the critic records it as "not
graded", and "make them harder" is answered by saying difficulty cannot be measured (and how
to get a reader) instead of pretending to escalate.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from clinsynth.apps.chat import open_chat
from clinsynth.config import Settings
from clinsynth.runtime.runfiles import RunFiles, read_records
from clinsynth.testing.chat_responder import respond
from clinsynth.testing.stub_server import StubServer
from clinsynth.tools.toolkit import ClinsynthToolkit

THREAD: RunnableConfig = {"configurable": {"thread_id": "session-1"}}


def toolkit(base_url: str, store: Path, data_dir: Path) -> ClinsynthToolkit:
    settings = Settings(
        base_url=base_url,
        api_key="test-key",
        model="stub-model",
        store=store,
        embedder="hashing",
        max_retries=1,
        timeout_s=10,
    )
    # Every task answerable: an unanswerable item's lexical difficulty is its overlap, which
    # the overlap check caps below the "hard" band, so it could never be accepted here.
    return ClinsynthToolkit(
        settings, data_dir=data_dir, run_defaults={"recipe_options": {"unanswerable_share": 0}}
    )


def tool_results(messages: list[Any], since: int) -> dict[str, Any]:
    """Tool name → parsed result of the tool messages after position ``since``."""
    out = {}
    for m in messages[since:]:
        if isinstance(m, ToolMessage):
            assert m.status != "error", m.content
            out[str(m.name)] = json.loads(str(m.content))
    return out


async def say(app: Any, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    before = await app.aget_state(THREAD)
    start = len((before.values or {}).get("messages") or [])
    state = await app.ainvoke({"messages": [HumanMessage(text)]}, THREAD)
    last = state["messages"][-1]
    assert isinstance(last, AIMessage) and not last.tool_calls and last.content
    return state, tool_results(state["messages"], start)


def measured(run_dir: str) -> list[float]:
    return [
        r.provenance.critic_scores["difficulty"]
        for r in read_records(RunFiles(Path(run_dir)).accepted)
    ]


@pytest.mark.slow
def test_multi_turn_retrieval_generation_escalation_persistence(
    demo_store_path: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with StubServer(respond) as stub:

        async def first_session() -> list[tuple[dict[str, Any], dict[str, Any]]]:
            async with open_chat(toolkit(stub.base_url, demo_store_path, data_dir)) as app:
                return [
                    await say(
                        app, "give me 3 hard questions about anticoagulation in atrial fibrillation"
                    ),
                    await say(app, "make them harder"),
                ]

        (state1, turn1), (state2, turn2) = asyncio.run(first_session())

        # Turn 1: retrieval, then generation through the critic loop.
        search = turn1["search_corpus"]
        assert search["passages"], "no passages retrieved"
        assert "atrial_fibrillation" in search["passages"][0]["id"]
        gen1 = turn1["generate_items"]
        assert gen1["accepted"] == 3 and gen1["difficulty_target"] == "hard"
        # Recorded but not graded: no difficulty reaches the chat, nothing steers by it.
        assert gen1["measured_difficulty"] is None and state1.get("last_difficulty") is None
        assert all(item["difficulty"] is None for item in gen1["items"])
        records = read_records(RunFiles(Path(state1["runs"][0])).accepted)
        for r in records:
            (check,) = [c for c in r.history[-1].report.checks if c.name == "difficulty"]  # type: ignore[union-attr]
            assert check.passed and check.details["graded"] is False
            assert "not graded" in check.reason and "clinsynth train-reader" in check.reason
        assert len(measured(state1["runs"][0])) == 3  # the proxy's number is still recorded
        assert all("atrial_fibrillation" in r.provenance.source_ids[0] for r in records)
        answer1 = state1["messages"][-1].content
        assert all(item["question"] in answer1 for item in gen1["items"])

        # Turn 2: "harder" without a reader: the chat says difficulty cannot be measured and
        # names the one command that trains a reader; nothing is generated, the target holds.
        assert turn2["generate_items"]["difficulty_measurable"] is False
        answer2 = state2["messages"][-1].content
        assert "cannot be measured" in answer2 and "clinsynth train-reader" in answer2
        assert state2["runs"] == state1["runs"] and state2["difficulty_target"] == "hard"

        # Restart: a new toolkit, model client and graph on the same data dir and thread.
        async def second_session() -> tuple[Any, list[tuple[dict[str, Any], dict[str, Any]]]]:
            async with open_chat(toolkit(stub.base_url, demo_store_path, data_dir)) as app:
                restored = (await app.aget_state(THREAD)).values
                return restored, [await say(app, "more about dosing"), await say(app, "save them")]

        restored, [(state3, turn3), (_state4, turn4)] = asyncio.run(second_session())

    assert len(restored["messages"]) == len(state2["messages"])
    assert restored["runs"] == state2["runs"]

    # Turn 3: the persisted topic is narrowed; the persisted target still holds.
    gen3 = turn3["generate_items"]
    assert state3["topic"] == "anticoagulation in atrial fibrillation: dosing"
    assert gen3["topic"] == state3["topic"] and gen3["accepted"] == 3
    assert state3["difficulty_target"] == "hard"
    tasks = read_records(RunFiles(Path(state3["runs"][1])).accepted)
    assert all(r.task.topic == state3["topic"] for r in tasks)

    # The critic's near-duplicate check covers the conversation's earlier batches.
    questions = [
        r.item["question"]
        for run in state3["runs"]
        for r in read_records(RunFiles(Path(run)).accepted)
        if r.item
    ]
    assert len(questions) == len(set(questions)) == 6

    # Turn 4: "save them" exports every batch as JSONL and as a datasets folder.
    saved = turn4["save_items"]
    assert saved["items"] == 6
    rows = [json.loads(line) for line in Path(saved["jsonl"]).read_text().splitlines()]
    assert len(rows) == 6 and {r["status"] for r in rows} == {"accepted"}
    from datasets import load_from_disk

    dataset = load_from_disk(saved["datasets"])
    assert dataset.num_rows == 6 and {"question", "answer", "context"} <= set(dataset.column_names)
