"""The CLI against the fault-injecting stub server: exact counts, nothing lost, kill -9 resume.

Every run here goes through ``clinsynth generate`` as a subprocess while the stub server answers
20 % of the completion requests with a fault (429 with Retry-After, 500, a hang past the client
timeout, a truncated body, malformed JSON content, a dropped connection).
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clinsynth.testing.qa_responder import make_responder
from clinsynth.testing.stub_server import FaultConfig, StubServer
from tests.integration.test_cli_generate import (
    CLI,
    cli_env,
    generate_args,
    one_line_error,
    rows,
    run_cli,
)

KINDS = ["429", "500", "timeout", "truncated", "malformed_json", "drop"]


def faults_20pct(**extra: Any) -> FaultConfig:
    """20 % faults spread over every kind, with short Retry-After and hangs."""
    rates = {"429": 0.04, "500": 0.04, "timeout": 0.03, "truncated": 0.03}
    rates |= {"malformed_json": 0.03, "drop": 0.03}
    return FaultConfig.model_validate(
        {f"rate_{k}": v for k, v in rates.items()}
        | {"retry_after_s": 0.05, "timeout_sleep_s": 2.5, **extra}
    )


def fault_env(base_url: str, store: Path, retries: int = 6) -> dict[str, str]:
    env = cli_env(base_url, store)
    # A short client timeout turns the stub's 2.5 s hangs into retried timeouts.
    env.update(CLINSYNTH_TIMEOUT_S="1.0", CLINSYNTH_MAX_RETRIES=str(retries))
    return env


@pytest.fixture
def stub(request: pytest.FixtureRequest) -> Iterator[StubServer]:
    seed, faults = getattr(request, "param", (0, faults_20pct()))
    with StubServer(make_responder("mixed"), faults=faults, seed=seed) as server:
        yield server


def assert_consistent(out: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """No torn line, no duplicate; finished items are a subset of the started ones."""
    for name in ("accepted.jsonl", "rejected.jsonl", "surplus.jsonl"):
        path = out / name
        if path.exists() and path.stat().st_size:
            assert path.read_bytes().endswith(b"\n"), f"torn last line in {name}"
    accepted, rejected = rows(out / "accepted.jsonl"), rows(out / "rejected.jsonl")
    ids = [r["id"] for r in accepted + rejected + rows(out / "surplus.jsonl")]
    assert len(ids) == len(set(ids)), "an item was written twice"
    started = [r["id"] for r in rows(out / "started.jsonl")]
    assert len(started) == len(set(started))
    assert set(ids) <= set(started)
    return accepted, rejected


def assert_complete(out: Path, n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Exactly ``n`` accepted; every candidate accepted, rejected or surplus with its reasons."""
    accepted, rejected = assert_consistent(out)
    surplus = rows(out / "surplus.jsonl")
    assert len(accepted) == n
    started = {r["id"] for r in rows(out / "started.jsonl")}
    assert {r["id"] for r in accepted + rejected + surplus} == started
    assert all(r["reasons"] for r in rejected + surplus)
    assert not any(r["reasons"][0].startswith("surplus") for r in rejected)
    for rec in accepted + rejected:
        for attempt in rec["history"]:
            if attempt["error"]:  # a reply that could not be parsed is kept verbatim
                assert attempt["raw_output"], rec["id"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["finished"] and manifest["stop_reason"] == "target reached"
    assert manifest["counts"] == {
        "accepted": n,
        "rejected": len(rejected),
        "surplus": len(surplus),
        "candidates": len(started),
        "in_flight": 0,
    }
    return accepted, rejected


def progress_marks(out: Path) -> int:
    """How many rows the run's logs hold (grows whenever a run starts or finishes an item)."""
    return sum(
        len(rows(out / name))
        for name in ("started.jsonl", "accepted.jsonl", "rejected.jsonl", "surplus.jsonl")
    )


def kill_after(args: list[str], env: dict[str, str], delay: float, out: Path) -> int | None:
    """Start the CLI and ``kill -9`` it ``delay`` s after it first logs progress; its exit code
    if it ended first."""
    before = progress_marks(out)
    proc = subprocess.Popen(CLI + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while progress_marks(out) == before and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    try:
        return proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.kill()  # SIGKILL: no cleanup of any kind runs
        proc.wait()
        return None


@pytest.mark.slow
@pytest.mark.parametrize(
    "stub",
    [(0, faults_20pct(sequence=KINDS))],
    indirect=True,
)
def test_exact_counts_at_20pct_faults(
    stub: StubServer, demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    res = run_cli(generate_args(out, 12), fault_env(stub.base_url, demo_store_path))
    assert res.returncode == 0, res.stderr
    assert "target reached: 12 accepted" in res.stdout
    assert "warning" not in res.stderr
    accepted, rejected = assert_complete(out, 12)
    assert set(stub.stats.faults) == set(KINDS)  # every kind was hit and survived
    reasons = Counter(r["reasons"][0].split(":")[0] for r in rejected)
    assert "error" not in reasons, reasons  # faults never turn into rejected items
    assert any(a["error"] for r in accepted for a in r["history"])  # malformed, then repaired


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "checkpoint"), [(1, "step"), (2, "item"), (3, "step")])
def test_kill_9_at_random_points_then_resume(
    seed: int, checkpoint: str, demo_store_path: Path, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    out = tmp_path / "run"
    args = generate_args(out, 12, "--seed", str(seed), "--checkpoint", checkpoint)
    stub = StubServer(make_responder("mixed"), latency_s=0.05, faults=faults_20pct(), seed=seed)
    with stub:
        env = fault_env(stub.base_url, demo_store_path)
        codes = []
        for _ in range(2):  # two kills at seeded random moments of the run
            codes.append(kill_after(args, env, rng.uniform(0.0, 1.2), out))
            assert_consistent(out)
        assert None in codes and set(codes) <= {None, 0}
        res = run_cli(args, env)
        assert res.returncode == 0, res.stderr
        assert "(resumed)" in res.stdout
        assert_complete(out, 12)
        assert sum(stub.stats.faults.values()) > 0
    assert json.loads((out / "manifest.json").read_text())["resumed"] is True


@pytest.mark.slow
@pytest.mark.parametrize("stub", [(0, FaultConfig(rate_500=1.0))], indirect=True)
def test_failing_endpoint_stops_cleanly_and_resumes_when_healthy(
    stub: StubServer, demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    env = fault_env(stub.base_url, demo_store_path, retries=1)
    args = generate_args(out, 4)
    res = run_cli(args, env)
    assert res.returncode == 1
    line = one_line_error(res)
    assert "HTTP 500" in line and "rerun the same command to resume" in line
    accepted, rejected = assert_consistent(out)
    assert accepted == rejected == []  # endpoint failures are not blamed on items
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stop_reason"] == "aborted" and manifest["finished"]

    # An endpoint that hangs on every call: the client timeout ends each call, the run stops.
    stub.faults = FaultConfig(rate_timeout=1.0, timeout_sleep_s=30)
    t0 = time.time()
    res = run_cli(args, env)
    assert res.returncode == 1 and "timed out" in one_line_error(res)
    assert time.time() - t0 < 25
    assert_consistent(out)

    stub.faults = FaultConfig()
    res = run_cli(args, env)
    assert res.returncode == 0, res.stderr
    assert "(resumed)" in res.stdout
    assert_complete(out, 4)


@pytest.mark.slow
@pytest.mark.parametrize("stub", [(0, FaultConfig())], indirect=True)
def test_budget_quota_and_rate_flags(
    stub: StubServer, demo_store_path: Path, tmp_path: Path
) -> None:
    env = fault_env(stub.base_url, demo_store_path)
    # A token budget smaller than one item: the items of the first launch (8 at concurrency 4)
    # finish, then the run stops short of 12.
    res = run_cli(generate_args(tmp_path / "b", 12, "--token-budget", "10"), env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("token budget:")
    assert "warning: target not reached" in res.stderr and "token budget of 10" in res.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["stop_reason"] == "token budget"

    out = tmp_path / "q"
    quota = ["--quota", "answerable=2", "--quota", "unanswerable=1", "--rpm", "600"]
    stub.received.clear()
    res = run_cli(generate_args(out, 3, *quota, "--option", "max_overlap=1"), env)
    assert res.returncode == 0, res.stderr
    assert "target reached: 3 accepted" in res.stdout
    accepted, _ = assert_consistent(out)
    labels = Counter("answerable" if r["item"]["answerable"] else "unanswerable" for r in accepted)
    assert labels == {"answerable": 2, "unanswerable": 1}
    sent = sorted(r.at for r in stub.received if r.path.endswith("/chat/completions"))
    # 600 rpm with a bucket of one: after the first call, at most one call per 0.1 s on average
    # (the span, not the smallest gap: the server's receive times jitter under load).
    assert len(sent) >= 6 and sent[-1] - sent[0] >= 0.1 * (len(sent) - 2)

    res = run_cli(generate_args(tmp_path / "x", 5, "--quota", "answerable=2"), env)
    assert res.returncode == 2
    assert "must equal the sum of the quotas" in one_line_error(res)


REFUSED = "Amlodipine"
"""A word in exactly two demo chunks among the first 25 (offsets 3 and 12): items 3 and 12."""


@pytest.mark.slow
def test_prompts_the_endpoint_refuses_reject_only_their_items(
    demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    faults = FaultConfig(refuse_marker=REFUSED)
    with StubServer(make_responder("accept"), faults=faults) as stub:
        res = run_cli(generate_args(out, 23), fault_env(stub.base_url, demo_store_path))
        sent = [r.body for r in stub.received if r.path.endswith("/chat/completions")]
    formats = {body["response_format"]["type"] for body in sent}
    assert res.returncode == 0, res.stderr
    assert "target reached: 23 accepted" in res.stdout
    _, rejected = assert_complete(out, 23)
    refused = [r for r in rejected if not r["reasons"][0].startswith("surplus")]
    assert sorted(r["task"]["index"] for r in refused) == [3, 12]
    assert stub.stats.refused == 2  # refused once each: no retry, no other method tried
    reason = f"error: endpoint refused this request (HTTP 400: {faults.refuse_message})"
    assert all(r["reasons"] == [reason] for r in refused)
    assert formats == {"json_schema"}  # the refusals were not taken for a capability verdict


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["html", "no_choices", "oversized"])
def test_a_reply_that_is_no_chat_completion_stops_the_run_then_resumes(
    kind: Any, demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = generate_args(out, 4)
    faults = FaultConfig(sequence=[None, None, None, kind])
    with StubServer(make_responder("accept"), faults=faults) as stub:
        env = fault_env(stub.base_url, demo_store_path)
        res = run_cli(args, env)
        assert res.returncode == 1
        line = one_line_error(res)
        assert f"{stub.base_url}" in line and "not an OpenAI chat completion" in line
        assert line.endswith("(rerun the same command to resume)")
        assert stub.stats.faults == {kind: 1}
        _, rejected = assert_consistent(out)
        assert rejected == []  # the endpoint's fault is not blamed on an item
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["stop_reason"] == "aborted"

        res = run_cli(args, env)
    assert res.returncode == 0, res.stderr
    assert "(resumed)" in res.stdout
    assert_complete(out, 4)


@pytest.mark.slow
def test_an_endpoint_that_refuses_every_prompt_stops_the_run(
    demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    faults = FaultConfig(refuse_marker=" ", refuse_message="max_tokens is too large: 99999")
    with StubServer(make_responder("accept"), faults=faults) as stub:
        res = run_cli(generate_args(out, 4), fault_env(stub.base_url, demo_store_path))
        assert stub.stats.refused >= 8 and stub.stats.completions == 0
    assert res.returncode == 1
    line = one_line_error(res)
    # the 8th refusal stops the run; a request already in flight may be refused before the
    # stop reaches it, and the line then counts it too (both counts are true)
    counted = re.search(r"refused each of its first (\d+) requests and answered none", line)
    assert counted is not None and int(counted.group(1)) >= 8
    assert "(HTTP 400: max_tokens is too large: 99999)" in line
    _, rejected = assert_consistent(out)
    assert len(rejected) == 7  # the refusals before the verdict stay on record, with reasons
    assert {r["reasons"][0] for r in rejected} == {
        "error: endpoint refused this request (HTTP 400: max_tokens is too large: 99999)"
    }
