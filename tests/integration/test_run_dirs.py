"""Run directories through the CLI: one writer, exact resume, --overwrite deletes only runs
and only once the endpoint answers, a killed run is seen as interrupted and taken over."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clinsynth.runtime.runlock import lock_holder
from clinsynth.testing.qa_responder import make_responder
from clinsynth.testing.stub_server import StubServer
from tests.integration.test_cli_generate import (
    CLI,
    assert_accounted,
    cli_env,
    generate_args,
    one_line_error,
    rows,
    run_cli,
)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(make_responder("accept")) as server:
        yield server


def snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def start_and_hold(args: list[str], env: dict[str, str], out: Path) -> subprocess.Popen[str]:
    """Start the CLI and return once it holds the run directory's lock."""
    proc = subprocess.Popen(
        CLI + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 60
    while lock_holder(out) is None:
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.02)
    return proc


@pytest.mark.slow
def test_second_writer_is_refused_or_waits(demo_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [*generate_args(out, 8), "--concurrency", "1"]
    with StubServer(make_responder("accept"), latency_s=0.4) as stub:
        env = cli_env(stub.base_url, demo_store_path)
        first = start_and_hold(args, env, out)
        second = run_cli(args, env)
        assert first.poll() is None, "the first run ended before the second tried"
        assert second.returncode == 2
        error = one_line_error(second)
        assert f"{out} is in use by pid {first.pid} on " in error and "--wait" in error
        waiting = subprocess.Popen(
            [*CLI, *args, "--wait"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out_first, err_first = first.communicate(timeout=120)
        out_wait, err_wait = waiting.communicate(timeout=120)
    assert first.returncode == 0, err_first
    assert "target reached: 8 accepted, 0 rejected, 0 surplus" in out_first
    assert waiting.returncode == 0, err_wait
    assert f"waiting for pid {first.pid} on " in err_wait.decode()
    assert "target reached: 8 accepted" in out_wait.decode() and "(resumed)" in out_wait.decode()
    accepted, rejected = assert_accounted(out)
    assert len(accepted) == 8 and rejected == []


@pytest.mark.slow
def test_killed_run_is_interrupted_and_its_lock_taken_over(
    demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = [*generate_args(out, 4), "--concurrency", "1"]
    with StubServer(make_responder("accept"), latency_s=0.2) as stub:
        env = cli_env(stub.base_url, demo_store_path)
        proc = start_and_hold(args, env, out)
        while not rows(out / "accepted.jsonl"):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        inspected = run_cli(["inspect", str(out), "--json"], env)
        assert inspected.returncode == 0, inspected.stderr
        summary = json.loads(inspected.stdout)
        assert summary["state"] == "interrupted" and summary["writer"] is None
        assert summary["finished"] is False and summary["accepted"] >= 1
        table = run_cli(["inspect", str(out)], env)
        (state,) = [line for line in table.stdout.splitlines() if "│ state" in line]
        assert "interrupted (stopped before it finished;" in state
        res = run_cli(args, env)
    assert res.returncode == 0, res.stderr
    assert f"note: pid {proc.pid} on " in res.stderr and "taking it over" in res.stderr
    assert "target reached: 4 accepted" in res.stdout and "(resumed)" in res.stdout
    accepted, rejected = assert_accounted(out)
    assert len(accepted) == 4 and rejected == []
    summary = json.loads(run_cli(["inspect", str(out), "--json"], env).stdout)
    assert summary["state"] == "finished" and summary["surplus"] == 0
    assert summary["acceptance_rate"] == 1.0


def test_resume_is_exact_about_n_and_models(
    stub: StubServer, demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    env = cli_env(stub.base_url, demo_store_path)
    assert run_cli(generate_args(out, 2), env).returncode == 0
    before = snapshot(out)
    smaller = run_cli(generate_args(out, 1), env)
    assert smaller.returncode == 2
    assert "already holds 2 accepted items, more than n=1" in one_line_error(smaller)
    other = run_cli([*generate_args(out, 2), "--model", "other-model"], env)
    assert other.returncode == 2
    assert "made with model stub-model, not model other-model" in one_line_error(other)
    assert snapshot(out) == before  # refused before anything was written
    memory = json.loads((out / "run.json").read_text())
    assert memory["n"] == 2 and set(memory["models"].values()) == {"stub-model"}
    assert set(memory["endpoints"].values()) == {stub.base_url}
    larger = run_cli(generate_args(out, 3), env)
    assert larger.returncode == 0 and "(resumed)" in larger.stdout
    accepted, _ = assert_accounted(out)
    assert len(accepted) == 3 and json.loads((out / "run.json").read_text())["n"] == 3


def test_overwrite_deletes_nothing_while_the_endpoint_is_down(
    stub: StubServer, demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    assert run_cli(generate_args(out, 1), cli_env(stub.base_url, demo_store_path)).returncode == 0
    before = snapshot(out)
    down = cli_env("http://127.0.0.1:9/v1", demo_store_path)
    res = run_cli([*generate_args(out, 1), "--seed", "5", "--overwrite"], down)
    assert res.returncode == 1
    assert "127.0.0.1:9" in one_line_error(res)
    assert snapshot(out) == before
    empty_store = cli_env(stub.base_url, tmp_path / "empty-store")
    res = run_cli([*generate_args(out, 1), "--seed", "5", "--overwrite"], empty_store)
    assert res.returncode == 2 and "clinsynth ingest" in one_line_error(res)
    assert snapshot(out) == before


def test_overwrite_refuses_a_folder_that_is_not_a_run(
    stub: StubServer, demo_store_path: Path, tmp_path: Path
) -> None:
    env = cli_env(stub.base_url, demo_store_path)
    folder = tmp_path / "my-docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    res = run_cli([*generate_args(folder, 1), "--overwrite"], env)
    assert res.returncode == 2
    assert f"--overwrite: {folder} holds no clinsynth run; not deleting it" in one_line_error(res)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    # A run directory the user added a file to is refused too.
    run = tmp_path / "run"
    assert run_cli(generate_args(run, 1), env).returncode == 0
    (run / "keep.md").write_text("mine")
    res = run_cli([*generate_args(run, 1), "--overwrite"], env)
    assert res.returncode == 2
    assert "files clinsynth did not write (keep.md)" in one_line_error(res)
    assert (run / "keep.md").read_text() == "mine" and rows(run / "accepted.jsonl")
