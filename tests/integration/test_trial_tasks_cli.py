"""The ``trial-tasks`` recipe end to end: ``clinsynth ingest-trials`` (train and eval split)
then ``clinsynth generate --option task=...`` for every task type against the stub server,
whose scripted model (clinsynth/testing/trial_tasks_responder.py, mode ``flawed``) makes the
first draft of each item wrong in a way a verifying check must catch."""

from __future__ import annotations

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


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(make_responder("flawed")) as server:
        yield server


def test_every_task_through_the_cli(stub: StubServer, tmp_path: Path) -> None:
    env = cli_env(stub.base_url, tmp_path / "store")
    train = write_ctgov_studies(tmp_path / "train.json", n=24)
    held_out = write_ctgov_studies(tmp_path / "eval.json", n=6, seed=1, start=100)
    for path, split in ((train, "train"), (held_out, "eval")):
        res = run_cli(["ingest-trials", str(path), "--collection", "ttasks", "--split", split], env)
        assert res.returncode == 0, res.stderr
    eval_ids = {f"NCT{80000000 + 100 + i:08d}" for i in range(1, 7)}
    for task in TASKS:
        out = tmp_path / task
        args = ["generate", "--recipe", "trial-tasks", "--collection", "ttasks", "-n", "2"]
        args += ["--option", f"task={task}", "--max-attempts", "3", "--concurrency", "2"]
        res = run_cli([*args, "--out", str(out), "--no-progress"], env)
        assert res.returncode == 0, (task, res.stderr)
        assert "target reached: 2 accepted" in res.stdout, (task, res.stdout)
        accepted, _ = assert_accounted(out)
        assert len(accepted) == 2
        for rec in accepted:
            item, prov = rec["item"], rec["provenance"]
            assert item["task_type"] == task and item["trial_id"] not in eval_ids
            assert prov["recipe"] == "trial-tasks" and prov["prompt_version"] == "trial-tasks-v1"
            assert prov["source_ids"] and set(prov["source_ids"]).isdisjoint(eval_ids)
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
                    assert prov["label_changes"][0]["old"] == "other"
    bad = run_cli(["generate", "--recipe", "trial-tasks", "--option", "task=nope", "-n", "1"], env)
    assert bad.returncode == 2 and "error:" in bad.stderr and "Traceback" not in bad.stderr
