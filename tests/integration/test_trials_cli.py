"""The ``trials`` recipe end to end: ``clinsynth ingest-trials`` then ``clinsynth generate``
against the stub server (clinsynth/testing/trials_responder.py), as a user runs them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from clinsynth.testing.stub_server import StubServer
from clinsynth.testing.trials_responder import make_responder, write_hint_table
from tests.integration.test_cli_generate import assert_accounted, cli_env, run_cli

pytestmark = pytest.mark.slow  # CLI subprocesses: several seconds each on 2 cores


@pytest.fixture
def stub(request: pytest.FixtureRequest) -> Iterator[StubServer]:
    with StubServer(make_responder(getattr(request, "param", "mixed"))) as server:
        yield server


@pytest.fixture
def trial_store(tmp_path: Path, stub: StubServer) -> tuple[Path, dict[str, str]]:
    store = tmp_path / "store"
    env = cli_env(stub.base_url, store)
    table = write_hint_table(tmp_path / "hint.csv", per_label=6)
    res = run_cli(["ingest-trials", str(table), "--collection", "trials"], env)
    assert res.returncode == 0, res.stderr
    assert "ingested 31 trials (31 labelled, split train)" in res.stdout
    assert "2 interventions with ≥3 successful and ≥3 failed" in res.stdout
    return store, env


def test_generate_trials_through_stub(
    trial_store: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    store, env = trial_store
    # --store must reach the recipe's own index too, not only the retriever
    env = {**env, "CLINSYNTH_STORE": str(tmp_path / "elsewhere")}
    out = tmp_path / "run"
    args = ["generate", "--recipe", "trials", "--collection", "trials", "-n", "8"]
    args += ["--store", str(store)]
    args += ["--concurrency", "4", "--max-attempts", "3", "--out", str(out), "--no-progress"]
    res = run_cli(args, env)
    assert res.returncode == 0, res.stderr
    assert "target reached: 8 accepted" in res.stdout
    accepted, rejected = assert_accounted(out)
    assert len(accepted) == 8
    revised = 0
    for rec in accepted:
        item, prov = rec["item"], rec["provenance"]
        assert prov["recipe"] == "trials" and prov["prompt_version"] == "trials-v2"
        assert item["label"] == rec["task"]["label"] and item["source"] == "synthetic"
        assert rec["task"]["params"]["intervention"] in " ".join(item["interventions"])
        assert len(prov["source_ids"]) == 3
        assert {
            "schema_completeness",
            "intervention_named",
            "memorisation",
            "copied_ids",
            "realism",
            "near_duplicate",
        } <= set(prov["critic_scores"])
        if prov["attempts"] > 1:
            revised += 1
            first = rec["history"][0]["report"]["reasons"]
            assert any(r.startswith(("memorisation", "intervention_named")) for r in first)
    assert revised >= 1  # the mixed scenario copies / misnames some first drafts
    # reasons are paid once per (intervention, label): 2 interventions × 2 labels
    with sqlite3.connect(out / "reasoning_cache.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM cache").fetchone()[0] == 4
    for rec in accepted + rejected:
        calls = rec["provenance"]["usage"]["calls"]
        assert calls <= 1 + rec["provenance"]["attempts"]


def test_generate_trials_reports_unbalanced_corpus(
    trial_store: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = trial_store
    args = ["generate", "--recipe", "trials", "--collection", "trials", "-n", "2"]
    args += ["--option", "min_success=50", "--out", str(tmp_path / "r"), "--no-progress"]
    res = run_cli(args, env)
    assert res.returncode == 2
    assert "error:" in res.stderr and "≥50 successful" in res.stderr
    assert "Traceback" not in res.stderr


def test_ingest_trials_user_errors(tmp_path: Path) -> None:
    env = cli_env("http://127.0.0.1:9/v1", tmp_path / "store")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    for args, message in (
        (["ingest-trials", str(bad)], "not a HINT/TOP or TrialBench trial table"),
        (["ingest-trials", str(tmp_path / "none.csv")], "trial file not found"),
        (["ingest-trials", str(bad), "--split", "test"], "--split must be train or eval"),
    ):
        res = run_cli(args, env)
        assert res.returncode == 2, res.stderr
        assert message in res.stderr and "Traceback" not in res.stderr
