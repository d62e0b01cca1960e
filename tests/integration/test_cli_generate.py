"""The CLI end to end against the local OpenAI-compatible stub server on 127.0.0.1.

Each test starts ``clinsynth`` as a subprocess, the way a user runs it, with scripted model
replies (clinsynth/testing/qa_responder.py) and checks the files it leaves behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clinsynth.testing.qa_responder import make_responder
from clinsynth.testing.stub_server import StubServer

CLI = [sys.executable, "-m", "clinsynth.cli"]


def cli_env(base_url: str, store: Path, *, retries: int = 2) -> dict[str, str]:
    """The environment of a CLI subprocess against the stub (none of the caller's settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINSYNTH_")}
    env.update(
        CLINSYNTH_BASE_URL=base_url,
        CLINSYNTH_API_KEY="test-key",
        CLINSYNTH_MODEL="stub-model",
        CLINSYNTH_EMBEDDER="hashing",
        CLINSYNTH_STORE=str(store),
        CLINSYNTH_MAX_RETRIES=str(retries),
        CLINSYNTH_TIMEOUT_S="10",
    )
    return env


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        CLI + args, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a run log, each item's passage put back from ``passages.jsonl``."""
    from clinsynth.runtime.passages import read_passages, restore_row

    if not path.exists():
        return []
    passages = read_passages(path)
    lines = path.read_text().splitlines()
    return [restore_row(json.loads(line), passages) for line in lines if line.strip()]


def generate_args(out: Path, n: int, *extra: str) -> list[str]:
    return [
        "generate",
        "-n",
        str(n),
        "--concurrency",
        "4",
        "--max-attempts",
        "2",
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


@pytest.fixture
def stub(request: pytest.FixtureRequest) -> Iterator[StubServer]:
    mode, latency = getattr(request, "param", ("accept", 0.0))
    with StubServer(make_responder(mode), latency_s=latency) as server:
        yield server


def assert_accounted(out: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every started candidate is in exactly one of accepted / rejected / surplus; no duplicates.
    Returns accepted and rejected."""
    accepted, rejected = rows(out / "accepted.jsonl"), rows(out / "rejected.jsonl")
    surplus = rows(out / "surplus.jsonl")
    started = [r["id"] for r in rows(out / "started.jsonl")]
    ids = [r["id"] for r in accepted + rejected + surplus]
    assert len(set(ids)) == len(ids), "duplicate ids"
    assert sorted(ids) == sorted(started)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["accepted"] == len(accepted)
    assert manifest["counts"]["rejected"] == len(rejected)
    assert manifest["counts"]["surplus"] == len(surplus)
    assert manifest["counts"]["candidates"] == len(started)
    return accepted, rejected


@pytest.mark.parametrize("stub", [("accept", 0.0)], indirect=True)
def test_accept_path(stub: StubServer, demo_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = run_cli(
        ["generate", "-n", "4", "--concurrency", "2", "--out", str(out), "--no-progress"],
        cli_env(stub.base_url, demo_store_path),
    )
    assert res.returncode == 0, res.stderr
    assert "target reached: 4 accepted, 0 rejected" in res.stdout
    accepted, rejected = assert_accounted(out)
    assert len(accepted) == 4 and rejected == []
    for rec in accepted:
        item, prov = rec["item"], rec["provenance"]
        assert prov["recipe"] == "qa" and prov["prompt_version"] == "qa-v3"
        assert prov["model"] == "stub-model" and prov["attempts"] == 1
        assert prov["source_ids"] and prov["source_ids"][0] == item["context_id"]
        assert {"lexical_overlap", "answer_validity", "privacy", "near_duplicate"} <= set(
            prov["critic_scores"]
        )
        assert prov["usage"]["calls"] == 3 and prov["usage"]["input_tokens"] > 0
        if item["answerable"]:
            assert item["context"][item["answer_start"] : item["answer_end"]] == item["answer"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["finished"] and manifest["stop_reason"] == "target reached"
    assert manifest["tokens"]["total_tokens"] == sum(
        r["provenance"]["usage"]["input_tokens"] + r["provenance"]["usage"]["output_tokens"]
        for r in accepted
    )
    assert manifest["versions"]["langgraph"]


@pytest.mark.parametrize("stub", [("revise", 0.0)], indirect=True)
def test_revise_then_accept(stub: StubServer, demo_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = run_cli(
        ["generate", "-n", "3", "--out", str(out), "--no-progress"],
        cli_env(stub.base_url, demo_store_path),
    )
    assert res.returncode == 0, res.stderr
    accepted, rejected = assert_accounted(out)
    assert len(accepted) == 3 and rejected == []
    for rec in accepted:
        first, second = rec["history"]
        assert first["report"]["verdict"] == "revise"
        assert any(r.startswith("lexical_overlap") for r in first["report"]["reasons"])
        assert second["report"]["verdict"] == "accept"
        assert rec["provenance"]["attempts"] == 2
    # The second generator call carried the critic's reasons back to the model.
    revised = [
        r
        for r in stub.received
        if "<feedback>" in json.dumps(r.body) and "lexical_overlap" in json.dumps(r.body)
    ]
    assert len(revised) == 3


@pytest.mark.parametrize("stub", [("relabel", 0.0)], indirect=True)
def test_relabel_makes_unlocated_answers_unanswerable(
    stub: StubServer, demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    res = run_cli(
        ["generate", "-n", "2", "--out", str(out), "--no-progress"],
        cli_env(stub.base_url, demo_store_path),
    )
    assert res.returncode == 0, res.stderr
    accepted, _ = assert_accounted(out)
    assert len(accepted) == 2
    for rec in accepted:
        assert rec["item"]["answer"] == "unanswerable" and rec["item"]["answerable"] is False
        (change,) = rec["provenance"]["label_changes"]
        assert change["method"] == "answer-not-located"
        assert change["old"] == "a finding that this record never mentions"
        assert rec["history"][0]["report"]["verdict"] == "relabel"


@pytest.mark.parametrize("stub", [("reject", 0.0)], indirect=True)
def test_reject_after_max_attempts(stub: StubServer, demo_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = run_cli(
        [
            "generate",
            "-n",
            "2",
            "--max-attempts",
            "2",
            "--max-candidates",
            "3",
            "--out",
            str(out),
            "--no-progress",
        ],
        cli_env(stub.base_url, demo_store_path),
    )
    assert res.returncode == 0, res.stderr
    assert "candidate limit: 0 accepted, 3 rejected" in res.stdout
    accepted, rejected = assert_accounted(out)
    assert accepted == [] and len(rejected) == 3
    for rec in rejected:
        assert len(rec["history"]) == 2
        assert any(r.startswith("lexical_overlap") for r in rec["reasons"])
        assert rec["reasons"][-1] == "gave up after 2 attempts"
        assert rec["item"]["question"].startswith("Regarding")
    inspect = run_cli(["inspect", str(out), "--json"], cli_env(stub.base_url, demo_store_path))
    summary = json.loads(inspect.stdout)
    assert summary["rejection_reasons"]["lexical_overlap"] == 3
    assert summary["unfinished"] == []


@pytest.mark.slow
@pytest.mark.parametrize("stub", [("mixed", 0.03)], indirect=True)
@pytest.mark.parametrize("kill_after", [2, 6])
def test_resume_after_kill_9(
    stub: StubServer, demo_store_path: Path, tmp_path: Path, kill_after: int
) -> None:
    out = tmp_path / "run"
    args = generate_args(out, 10)
    env = cli_env(stub.base_url, demo_store_path)
    proc = subprocess.Popen(CLI + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        if len(rows(out / "accepted.jsonl")) + len(rows(out / "rejected.jsonl")) >= kill_after:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {r["id"] for r in rows(out / "accepted.jsonl") + rows(out / "rejected.jsonl")}
    started_before = {r["id"] for r in rows(out / "started.jsonl")}
    assert started_before - before, "nothing was in flight at the kill"

    res = run_cli(args, env)
    assert res.returncode == 0, res.stderr
    assert "(resumed)" in res.stdout
    accepted, rejected = assert_accounted(out)
    assert len(accepted) == 10
    finished = {r["id"] for r in accepted + rejected}
    assert before <= finished and started_before <= finished
    assert json.loads((out / "manifest.json").read_text())["resumed"] is True


def one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in res.stderr, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), res.stderr
    return lines[-1]


def test_unreachable_endpoint_is_one_line(demo_store_path: Path, tmp_path: Path) -> None:
    env = cli_env("http://127.0.0.1:9/v1", demo_store_path)
    res = run_cli(["generate", "-n", "1", "--out", str(tmp_path / "r"), "--no-progress"], env)
    assert res.returncode != 0
    assert "127.0.0.1:9" in one_line_error(res)


@pytest.mark.parametrize("stub", [("accept", 0.0)], indirect=True)
def test_empty_store_is_one_line(stub: StubServer, tmp_path: Path) -> None:
    env = cli_env(stub.base_url, tmp_path / "empty-store")
    res = run_cli(["generate", "-n", "1", "--out", str(tmp_path / "r"), "--no-progress"], env)
    assert res.returncode == 2
    assert "clinsynth ingest" in one_line_error(res)


@pytest.mark.parametrize("stub", [("accept", 0.0)], indirect=True)
def test_bad_input_is_one_line(stub: StubServer, demo_store_path: Path, tmp_path: Path) -> None:
    env = cli_env(stub.base_url, demo_store_path)
    bad = tmp_path / "bad.toml"
    bad.write_text("max_attempts = 0\n")
    cases = [
        (["generate", "--config", str(bad)], "max_attempts"),
        (["generate", "--recipe", "nope"], "unknown recipe 'nope'"),
        (["generate", "--option", "max_overlap=7"], "max_overlap"),
        # A directory without a saved reader: refused when the run loads its models.
        (["generate", "--option", f"reader_path={tmp_path}"], "not a saved clinsynth reader"),
        (["ingest", str(tmp_path / "missing")], "does not exist"),
        (["inspect", str(tmp_path)], "not a run directory"),
    ]
    for args, message in cases:
        res = run_cli([*args, "--out", str(tmp_path / "r")] if args[0] == "generate" else args, env)
        assert res.returncode == 2, (args, res.stderr)
        assert message in one_line_error(res), (args, res.stderr)


@pytest.mark.parametrize("stub", [("accept", 0.0)], indirect=True)
def test_other_run_in_out_dir_is_refused(
    stub: StubServer, demo_store_path: Path, tmp_path: Path
) -> None:
    env = cli_env(stub.base_url, demo_store_path)
    out = tmp_path / "run"
    assert run_cli(["generate", "-n", "1", "--out", str(out), "--no-progress"], env).returncode == 0
    res = run_cli(["generate", "-n", "1", "--seed", "5", "--out", str(out), "--no-progress"], env)
    assert res.returncode == 2
    assert "different settings (seed)" in one_line_error(res)
    res = run_cli(
        ["generate", "-n", "1", "--seed", "5", "--out", str(out), "--overwrite", "--no-progress"],
        env,
    )
    assert res.returncode == 0, res.stderr


def test_ingest_cli(tmp_path: Path) -> None:
    env = dict(os.environ, CLINSYNTH_EMBEDDER="hashing")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        json.dumps({"id": "a", "text": "Heart failure with reduced ejection fraction. " * 30})
        + "\n"
        + json.dumps({"id": "b", "text": "Community-acquired pneumonia. " * 5})
        + "\n"
    )
    res = run_cli(
        ["ingest", str(corpus), "--store", str(tmp_path / "s"), "--chunk-size", "400"], env
    )
    assert res.returncode == 0, res.stderr
    assert "ingested 2 documents" in res.stdout
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = run_cli(["ingest", str(empty), "--store", str(tmp_path / "s")], env)
    assert res.returncode == 2
    one_line_error(res)
