"""``clinsynth.tools.as_tools()``: LangChain tools with pydantic schemas over the core, and the
host-app example run against the stub server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool

from clinsynth.config import Settings
from clinsynth.runtime.runfiles import RunFiles, read_records
from clinsynth.runtime.runlock import lock_holder
from clinsynth.testing.chat_responder import respond
from clinsynth.testing.stub_server import StubServer
from clinsynth.testing.tiny_bert import save_tiny_bert
from clinsynth.tools import ClinsynthToolkit, as_tools
from clinsynth.tools.models import (
    CorrectLabelsArgs,
    CritiqueArgs,
    FinetuneArgs,
    GenerateArgs,
    SearchArgs,
    ToolError,
)

REPO = Path(__file__).resolve().parents[2]
AF_NOTE = (REPO / "clinsynth/data/demo_corpus/atrial_fibrillation_clinic.md").read_text()


def settings(store: Path, base_url: str = "http://127.0.0.1:9/v1") -> Settings:
    return Settings(
        base_url=base_url,
        api_key="test-key",
        model="stub-model",
        store=store,
        embedder="hashing",
        max_retries=1,
        timeout_s=10,
    )


def by_name(tools: list[BaseTool]) -> dict[str, BaseTool]:
    return {t.name: t for t in tools}


def test_tools_have_pydantic_schemas(tmp_path: Path) -> None:
    tools = by_name(as_tools(settings=settings(tmp_path / "store"), data_dir=tmp_path))
    expected = {
        "search_corpus": SearchArgs,
        "generate_items": GenerateArgs,
        "critique_item": CritiqueArgs,
        "correct_labels": CorrectLabelsArgs,
        "finetune_evaluate": FinetuneArgs,
    }
    assert {name: t.args_schema for name, t in tools.items()} == expected
    schema = tools["generate_items"].tool_call_schema.model_json_schema()  # type: ignore[union-attr]
    assert schema["properties"]["n"]["minimum"] == 1
    assert "difficulty" in schema["properties"] and tools["generate_items"].description
    only = as_tools(settings=settings(tmp_path / "store"), include=["critique_item"])
    assert [t.name for t in only] == ["critique_item"]
    with pytest.raises(ValueError, match="unknown tool"):
        as_tools(settings=settings(tmp_path / "store"), include=["nope"])


def test_search_and_user_errors(demo_store_path: Path, tmp_path: Path) -> None:
    tools = by_name(as_tools(settings=settings(demo_store_path), data_dir=tmp_path))
    found = json.loads(
        tools["search_corpus"].invoke({"query": "anticoagulation in atrial fibrillation"})
    )
    assert len(found["passages"]) == 5
    assert "atrial_fibrillation" in found["passages"][0]["id"]
    # A user mistake comes back as the tool's message (for the model), not an exception.
    empty = by_name(as_tools(settings=settings(tmp_path / "empty"), data_dir=tmp_path))
    assert "is empty" in empty["search_corpus"].invoke({"query": "x"})
    bad = tools["generate_items"].invoke({"difficulty": "extreme"})
    assert "difficulty" in bad and "error" in bad.lower()


def test_critique_item_runs_the_critic_checks(tmp_path: Path) -> None:
    tool = by_name(as_tools(settings=settings(tmp_path / "store")))["critique_item"]
    copied = json.loads(
        tool.invoke(
            {
                "item": {
                    "question": "What is the CHA2DS2-VASc score of the woman referred after "
                    "atrial fibrillation was found on a pre-operative electrocardiogram?",
                    "answer": "CHA2DS2-VASc score 4",
                },
                "context": AF_NOTE,
                "difficulty": "hard",
            }
        )
    )
    assert copied["verdict"] == "revise"
    failed = {c["name"] for c in copied["checks"] if not c["passed"]}
    assert "lexical_overlap" in failed
    fine = json.loads(
        tool.invoke(
            {
                "item": {
                    "question": "How likely is a brain clot each year for this lady, in points?",
                    "answer": "CHA2DS2-VASc score 4",
                },
                "context": AF_NOTE,
            }
        )
    )
    assert fine["verdict"] == "accept", fine["reasons"]
    assert fine["item"]["answer_start"] == AF_NOTE.index("CHA2DS2-VASc score 4")


def test_generate_items_tool_with_progress(demo_store_path: Path, tmp_path: Path) -> None:
    seen: list[int] = []
    with StubServer(respond) as stub:
        toolkit = ClinsynthToolkit(
            settings(demo_store_path, stub.base_url),
            data_dir=tmp_path,
            run_defaults={"recipe_options": {"unanswerable_share": 0}},
        )
        tool = by_name(as_tools(toolkit, progress=lambda p: seen.append(p.accepted)))
        args = {"topic": "atrial fibrillation", "n": 2, "difficulty": "hard"}
        result = json.loads(asyncio.run(tool["generate_items"].ainvoke(args)))
        again = json.loads(asyncio.run(tool["generate_items"].ainvoke(args)))
    assert result["accepted"] == 2 and result["stop_reason"] == "target reached"
    assert seen == [1, 2]
    # No reader: the lexical difficulty is recorded among the scores but not graded (None).
    assert all(
        i["difficulty"] is None and 0 <= i["scores"]["difficulty"] <= 1 for i in result["items"]
    )
    assert all(i["scores"]["lexical_overlap"] <= 0.5 for i in result["items"])
    assert Path(result["run_dir"]).parent == tmp_path / "runs"
    # The same request resumes the same run directory: same items, no new calls.
    assert again["run_dir"] == result["run_dir"]
    assert [i["id"] for i in again["items"]] == [i["id"] for i in result["items"]]


@pytest.mark.slow
def test_correct_labels_tool_calls_the_label_module(tmp_path: Path) -> None:
    pytest.importorskip("clinsynth.tools.labels")
    tool = by_name(as_tools(settings=settings(tmp_path / "store")))["correct_labels"]
    texts = [f"fever and cough since day {i}" for i in range(6)] + [
        f"itchy rash after the new drug in week {i}" for i in range(6)
    ]
    labels = ["infection"] * 6 + ["reaction"] * 6
    out = json.loads(
        tool.invoke({"texts": texts, "labels": labels, "backbone": "hashing", "folds": 3})
    )
    assert [d["index"] for d in out["decisions"]] == list(range(12))
    assert [d["old_label"] for d in out["decisions"]] == labels
    assert out["flagged"] == sum(d["flagged"] for d in out["decisions"])
    mismatch = tool.invoke({"texts": texts, "labels": labels[:5]})
    assert "12 texts but 5 labels" in mismatch


@pytest.mark.slow
def test_finetune_evaluate_tool_on_a_tiny_bert(tmp_path: Path) -> None:

    words = [
        "the",
        "patient",
        "has",
        "fever",
        "cough",
        "rash",
        "drug",
        "after",
        "day",
        "infection",
        "reaction",
    ]
    bert = save_tiny_bert(tmp_path / "bert", [".", *words], layers=1, positions=64)
    rows = [{"text": "the patient has fever cough", "label": "infection"}] * 6 + [
        {"text": "rash after the drug", "label": "reaction"}
    ] * 6
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tool = by_name(as_tools(settings=settings(tmp_path / "store")))["finetune_evaluate"]
    out: dict[str, Any] = json.loads(
        tool.invoke(
            {
                "task": "classification",
                "train": str(data),
                "eval": str(data),
                "backbone": str(bert),
                "max_steps": 2,
                "max_length": 16,
                "seeds": [0, 1],
            }
        )
    )
    assert out["n_train"] == out["n_eval"] == 12 and len(out["runs"]) == 2
    assert not out["fell_back"] and out["backbone"] == str(bert)
    assert {"accuracy"} <= set(out["summary"])
    assert set(out["baselines"]) == {"majority", "tfidf_lr"}
    assert out["baselines"]["tfidf_lr"]["roc_auc"]["mean"] == 1.0  # the two texts separate
    assert out["beats_baselines"] is False  # two steps of a random BERT do not reach AUC 1
    assert len(out["warnings"]) == 1 and "does not beat its baselines" in out["warnings"][0]


@pytest.mark.slow
def test_host_app_example_runs(demo_store_path: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINSYNTH_")}
    with StubServer(respond) as stub:
        env.update(
            CLINSYNTH_BASE_URL=stub.base_url,
            CLINSYNTH_API_KEY="test-key",
            CLINSYNTH_MODEL="stub-model",
            CLINSYNTH_EMBEDDER="hashing",
            CLINSYNTH_STORE=str(demo_store_path),
        )
        res = subprocess.run(
            [sys.executable, str(REPO / "examples" / "host_app.py"), "-n", "2"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert res.returncode == 0, res.stderr
    lines = {line.split(":", 1)[0]: line for line in res.stdout.splitlines() if ":" in line}
    assert "generate_items" in lines["tools"] and "finetune_evaluate" in lines["tools"]
    assert lines["subgraph"].startswith("subgraph: accepted: ")
    assert "'difficulty': " in lines["subgraph"]
    assert "accepted items on 'anticoagulation in atrial fibrillation'" in lines["agent"]
    assert (tmp_path / ".clinsynth" / "runs").is_dir()


@pytest.mark.slow
def test_cancelled_generation_stops_and_resumes(demo_store_path: Path, tmp_path: Path) -> None:
    """Cancelling the call cancels the run in its worker thread; the same request resumes."""
    toolkit = ClinsynthToolkit(
        settings(demo_store_path),
        data_dir=tmp_path,
        run_defaults={"recipe_options": {"unanswerable_share": 0}},
    )
    args = GenerateArgs(topic="atrial fibrillation", n=3, difficulty="hard", concurrency=1)

    async def cancel_after_first_item() -> None:
        first = asyncio.Event()
        task = asyncio.create_task(toolkit.generate(args, progress=lambda p: first.set()))
        await asyncio.wait_for(first.wait(), timeout=60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with StubServer(respond, latency_s=0.3) as stub:
        toolkit.settings = settings(demo_store_path, stub.base_url)
        asyncio.run(cancel_after_first_item())
        calls_when_cancelled = stub.stats.completions
        time.sleep(1.5)  # five model latencies: a run still going would have called again
        assert stub.stats.completions <= calls_when_cancelled + 1  # at most the one in flight
        done = toolkit.default_run_dir(toolkit.run_config(args))
        accepted_then = (done / "accepted.jsonl").read_text().count("\n")
        assert 1 <= accepted_then < 3
        result = asyncio.run(toolkit.generate(args))
    assert result.accepted == 3 and result.run_dir == str(done)
    # Resumed, not restarted: far fewer calls than a fresh run of 3 items (2 calls each).
    assert stub.stats.completions - calls_when_cancelled <= 2 * (3 - accepted_then) + 2


@pytest.mark.slow
def test_avoid_makes_earlier_batches_count_as_near_duplicates(
    demo_store_path: Path, tmp_path: Path
) -> None:
    """The scripted model answers the same ask with the same questions; with ``avoid`` the
    critic sends those repeats back, without it they are accepted again."""

    def run(out: str, avoid: list[Path]) -> Any:
        toolkit = ClinsynthToolkit(
            settings(demo_store_path, stub.base_url),
            data_dir=tmp_path,
            run_defaults={"recipe_options": {"unanswerable_share": 0}},
        )
        args = GenerateArgs(topic="atrial fibrillation", n=2, difficulty="hard", out_dir=out)
        return asyncio.run(toolkit.generate(args, avoid=avoid))

    with StubServer(respond) as stub:
        first = run(str(tmp_path / "a"), [])
        repeat = run(str(tmp_path / "b"), [])
        fresh = run(str(tmp_path / "c"), [tmp_path / "a"])
    questions = {i.item["question"] for i in first.items}
    assert {i.item["question"] for i in repeat.items} == questions
    assert all(i.attempts == 1 for i in repeat.items)
    assert not questions & {i.item["question"] for i in fresh.items}
    history = read_records(RunFiles(tmp_path / "c").accepted) + read_records(
        RunFiles(tmp_path / "c").rejected
    )
    failed = {
        c.name
        for r in history
        for a in r.history
        if a.report
        for c in a.report.checks
        if not c.passed
    }
    assert "near_duplicate" in failed


def test_two_identical_concurrent_generate_calls_do_not_share_a_directory(
    demo_store_path: Path, tmp_path: Path
) -> None:
    """The second of two identical calls finds the run directory locked and says by whom."""
    toolkit = ClinsynthToolkit(
        settings(demo_store_path),
        data_dir=tmp_path,
        run_defaults={"recipe_options": {"unanswerable_share": 0}},
    )
    args = GenerateArgs(topic="atrial fibrillation", n=3, concurrency=1)

    run_dir = toolkit.default_run_dir(toolkit.run_config(args))

    async def both() -> list[Any]:
        first = asyncio.create_task(toolkit.generate(args))
        while lock_holder(run_dir) is None:  # the first one has started its run
            assert not first.done(), first
            await asyncio.sleep(0.01)
        return await asyncio.gather(first, toolkit.generate(args), return_exceptions=True)

    with StubServer(respond, latency_s=0.3) as stub:
        toolkit.settings = settings(demo_store_path, stub.base_url)
        done, refused = asyncio.run(both())
    assert isinstance(refused, ToolError), refused
    assert "is in use by pid " in str(refused) and f"pid {os.getpid()} " in str(refused)
    assert done.accepted == 3 and done.rejected == 0
    files = RunFiles(run_dir)
    ids = [r.id for r in read_records(files.accepted) + read_records(files.rejected)]
    assert len(ids) == len(set(ids)) == 3 and read_records(files.surplus) == []
    assert done.surplus == 0 and done.acceptance_rate == 1.0
