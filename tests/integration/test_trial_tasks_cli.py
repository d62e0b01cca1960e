"""The ``trial-tasks`` recipe end to end: ``clinsynth ingest-trials`` (train and eval split)
then ``clinsynth generate --option task=...`` for every task type against the stub server,
whose scripted model (clinsynth/testing/trial_tasks_responder.py, mode ``flawed``) makes the
first draft of each item wrong in a way a verifying check must catch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from clinsynth.testing.stub_server import StubServer
from clinsynth.testing.trial_tasks_responder import make_responder, write_ctgov_studies
from tests.integration.test_cli_generate import assert_accounted, cli_env, run_cli

pytestmark = pytest.mark.slow  # CLI subprocesses: several seconds each on 2 cores

FIRST_DRAFT_FLAW = {
    "criteria_mcq": "distractor_similarity",
    "endpoint_mcq": "distractor_similarity",
    "arm_mcq": "distractor_similarity",
    "sample_size_scenario": "sample_size_recomputed",
}
TASKS = (
    "criteria_mcq",
    "endpoint_mcq",
    "arm_mcq",
    "sample_size",
    "sample_size_scenario",
    "completion",
    "criteria_generation",
)
EVAL_IDS = {f"NCT{80000000 + 100 + i:08d}" for i in range(1, 7)}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A stub server and a store with 24 training and 6 eval-split made-up studies."""
    tmp = tmp_path_factory.mktemp("trial_tasks_cli")
    with StubServer(make_responder("flawed")) as server:
        environ = cli_env(server.base_url, tmp / "store")
        train = write_ctgov_studies(tmp / "train.json", n=24)
        held_out = write_ctgov_studies(tmp / "eval.json", n=6, seed=1, start=100)
        for path, split in ((train, "train"), (held_out, "eval")):
            args = ["ingest-trials", str(path), "--collection", "ttasks", "--split", split]
            res = run_cli(args, environ)
            assert res.returncode == 0, res.stderr
        yield environ


@pytest.mark.parametrize("task", TASKS)
def test_task_through_the_cli(env: dict[str, str], task: str, tmp_path: Path) -> None:
    out = tmp_path / task
    args = ["generate", "--recipe", "trial-tasks", "--collection", "ttasks", "-n", "2"]
    args += ["--option", f"task={task}", "--max-attempts", "3", "--concurrency", "2"]
    res = run_cli([*args, "--out", str(out), "--no-progress"], env, timeout=240)
    assert res.returncode == 0, res.stderr
    assert "target reached: 2 accepted" in res.stdout, res.stdout
    accepted, _ = assert_accounted(out)
    assert len(accepted) == 2
    for rec in accepted:
        item, prov = rec["item"], rec["provenance"]
        assert item["task_type"] == task and item["trial_id"] not in EVAL_IDS
        assert prov["recipe"] == "trial-tasks" and prov["prompt_version"] == "trial-tasks-v1"
        assert prov["source_ids"] and set(prov["source_ids"]).isdisjoint(EVAL_IDS)
        assert {"item_schema", "label_leak", "memorisation", "privacy"} <= set(
            prov["critic_scores"]
        )
        flaw = FIRST_DRAFT_FLAW.get(task)
        if flaw:
            first = rec["history"][0]["report"]["reasons"]
            assert prov["attempts"] == 2 and any(r.startswith(flaw) for r in first)
        if task == "completion" and item["labels"]["outcome"] == "terminated":
            assert item["label_check"]["method"] == "why_stop-rules"
            if item["label_check"]["decision"] == "relabelled":
                assert prov["label_changes"][0]["method"] == "why_stop-rules"
    if task == "criteria_mcq":  # the run exports as TrialPanorama-style JSONL
        res = run_cli(["export", str(out), "--format", "jsonl", "--out", str(tmp_path / "x")], env)
        assert res.returncode == 0, res.stderr
        rows = [json.loads(line) for p in (tmp_path / "x").glob("*.jsonl") for line in p.open()]
        assert len(rows) == 2
        for row in rows:
            assert list(row) == ["id", "task_type", "trial_id", "instruction", "input", "output"]
            assert row["task_type"] == task and row["output"] in {"A", "B", "C", "D"}
            assert row["trial_id"] not in EVAL_IDS and row["input"].strip()


def test_unknown_task_is_one_error_line(env: dict[str, str]) -> None:
    bad = run_cli(["generate", "--recipe", "trial-tasks", "--option", "task=nope", "-n", "1"], env)
    assert bad.returncode == 2 and "error:" in bad.stderr and "Traceback" not in bad.stderr
