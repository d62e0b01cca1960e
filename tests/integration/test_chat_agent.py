"""The chat agent over several turns against the stub server (scripted tool calls).

The scripted chat model (clinsynth/testing/chat_responder.py) calls the tools; the items go
through the real generation graph and critic. Its question writer only gets harder when
the critic measures an attempt as too easy, so a rising measured difficulty here comes from
the critic loop, not from the script.
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
from clinsynth.config import Settings, parse_band
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
        first = measured(state1["runs"][0])
        assert len(first) == 3 and all(d >= parse_band("hard")[0] for d in first)  # type: ignore[index]
        assert state1["last_difficulty"] == pytest.approx(sum(first) / 3, abs=1e-3)
        records = read_records(RunFiles(Path(state1["runs"][0])).accepted)
        assert all("atrial_fibrillation" in r.provenance.source_ids[0] for r in records)
        answer1 = state1["messages"][-1].content
        assert all(item["question"] in answer1 for item in gen1["items"])

        # Turn 2: "harder" raises the target above turn 1's measurement, and the critic
        # sent the easier first attempts back, so the accepted items measure harder.
        gen2 = turn2["generate_items"]
        low = parse_band(state2["difficulty_target"])[0]  # type: ignore[index]
        assert low > state1["last_difficulty"]
        assert gen2["previous_measured_difficulty"] == state1["last_difficulty"]
        second = measured(state2["runs"][1])
        assert len(second) == 3 and min(second) >= low > max(first)
        assert state2["last_difficulty"] > state1["last_difficulty"]
        history = read_records(RunFiles(Path(state2["runs"][1])).accepted)
        sent_back = [
            a.report
            for r in history
            for a in r.history
            if a.report is not None and a.report.verdict == "revise"
        ]
        assert sent_back and all(
            any(c.name == "difficulty" and not c.passed for c in rep.checks) for rep in sent_back
        )

        # Restart: a new toolkit, model client and graph on the same data dir and thread.
        async def second_session() -> tuple[Any, list[tuple[dict[str, Any], dict[str, Any]]]]:
            async with open_chat(toolkit(stub.base_url, demo_store_path, data_dir)) as app:
                restored = (await app.aget_state(THREAD)).values
                return restored, [await say(app, "more about dosing"), await say(app, "save them")]

        restored, [(state3, turn3), (_state4, turn4)] = asyncio.run(second_session())

    assert restored["last_difficulty"] == state2["last_difficulty"]
    assert len(restored["messages"]) == len(state2["messages"])
    assert restored["runs"] == state2["runs"]

    # Turn 3: the persisted topic is narrowed; the persisted target still holds.
    gen3 = turn3["generate_items"]
    assert state3["topic"] == "anticoagulation in atrial fibrillation: dosing"
    assert gen3["topic"] == state3["topic"] and gen3["accepted"] == 3
    assert state3["difficulty_target"] == state2["difficulty_target"]
    third = measured(state3["runs"][2])
    assert min(third) >= low
    tasks = read_records(RunFiles(Path(state3["runs"][2])).accepted)
    assert all(r.task.topic == state3["topic"] for r in tasks)

    # The critic's near-duplicate check covers the conversation's earlier batches.
    questions = [
        r.item["question"]
        for run in state3["runs"]
        for r in read_records(RunFiles(Path(run)).accepted)
        if r.item
    ]
    assert len(questions) == len(set(questions)) == 9

    # Turn 4: "save them" exports every batch as JSONL and as a datasets folder.
    saved = turn4["save_items"]
    assert saved["items"] == 9
    rows = [json.loads(line) for line in Path(saved["jsonl"]).read_text().splitlines()]
    assert len(rows) == 9 and {r["status"] for r in rows} == {"accepted"}
    from datasets import load_from_disk

    dataset = load_from_disk(saved["datasets"])
    assert dataset.num_rows == 9 and {"question", "answer", "context"} <= set(dataset.column_names)
