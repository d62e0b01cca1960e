"""Run directories: the writer lock, what run.json remembers, what --overwrite may delete."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from clinsynth.config import ConfigError, RunConfig
from clinsynth.memory.embeddings import HashingEmbedder
from clinsynth.memory.registry import AcceptedRegistry
from clinsynth.runtime.rundir import check_overwritable, check_same_run, clear_run_dir
from clinsynth.runtime.runfiles import RunFiles, read_run
from clinsynth.runtime.runlock import RunLock, RunLocked, lock_holder

MODELS = {"generator": "m1", "critic": "m1"}
ENDPOINTS = {"generator": "http://a/v1", "critic": "http://a/v1"}


def test_second_lock_in_the_same_process_is_refused_naming_the_holder(tmp_path: Path) -> None:
    with RunLock(tmp_path / "run") as first:
        assert first.held and first.stale is None
        with pytest.raises(RunLocked) as err:
            RunLock(tmp_path / "run").acquire()
        message = str(err.value)
        assert "\n" not in message
        assert f"pid {os.getpid()} on {socket.gethostname()} since " in message
        assert lock_holder(tmp_path / "run") == json.loads((tmp_path / "run/.lock").read_text())
    assert lock_holder(tmp_path / "run") is None
    assert (tmp_path / "run/.lock").read_text() == ""  # released: no body, so not stale
    with RunLock(tmp_path / "run") as again:
        assert again.stale is None


def test_a_file_in_the_way_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    with pytest.raises(ConfigError, match=r"cannot write the run directory .*taken: "):
        RunLock(tmp_path / "taken").acquire()


def test_wait_blocks_until_the_holder_releases(tmp_path: Path) -> None:
    first = RunLock(tmp_path).acquire()
    waited: list[str] = []
    second = RunLock(tmp_path, wait=True, on_wait=waited.append)
    thread = threading.Thread(target=second.acquire)
    thread.start()
    time.sleep(0.4)
    assert thread.is_alive() and not second.held
    assert len(waited) == 1 and f"pid {os.getpid()}" in waited[0]
    first.release()
    thread.join(5)
    assert second.held
    second.release()


def test_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from clinsynth.runtime.runlock import RunLock;"
        f"RunLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        holder = lock_holder(tmp_path)
        assert holder is not None and holder["pid"] == proc.pid
        with pytest.raises(RunLocked, match=f"pid {proc.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert lock_holder(tmp_path) is None
    with RunLock(tmp_path) as lock:
        assert lock.stale is not None and lock.stale["pid"] == proc.pid
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()


def test_run_memory_refuses_other_models_and_keeps_n_exact(tmp_path: Path) -> None:
    files = RunFiles(tmp_path / "run")
    run = RunConfig(n=3)
    assert check_same_run(files, run, MODELS, ENDPOINTS) is False
    memory = json.loads(files.run_config.read_text())
    assert memory["n"] == 3 and memory["models"] == MODELS and memory["endpoints"] == ENDPOINTS
    # The same models at another address resume; the new address is remembered.
    moved = {"generator": "http://b/v1", "critic": "http://b/v1"}
    assert check_same_run(files, run, MODELS, moved) is True
    assert json.loads(files.run_config.read_text())["endpoints"] == moved
    with pytest.raises(ConfigError, match="made with model m1, not model m2; use another --out"):
        check_same_run(files, run, {"generator": "m2", "critic": "m2"}, ENDPOINTS)
    with pytest.raises(ConfigError, match=r"models critic=m2, generator=m1"):
        check_same_run(files, run, {"generator": "m1", "critic": "m2"}, ENDPOINTS)
    with pytest.raises(ConfigError, match=r"different settings \(seed\)"):
        check_same_run(files, RunConfig(n=3, seed=1), MODELS, ENDPOINTS)
    files.accepted.write_text("".join(json.dumps({"id": f"x{i}"}) + "\n" for i in range(3)))
    with pytest.raises(ConfigError, match="already holds 3 accepted items, more than n=2"):
        check_same_run(files, RunConfig(n=2), MODELS, ENDPOINTS)
    assert check_same_run(files, RunConfig(n=5), MODELS, ENDPOINTS) is True
    assert json.loads(files.run_config.read_text())["n"] == 5


def test_legacy_run_json_without_models_resumes_and_learns_them(tmp_path: Path) -> None:
    files = RunFiles(tmp_path)
    files.run_config.write_text(json.dumps(RunConfig().fingerprint()))
    assert check_same_run(files, RunConfig(n=4), MODELS, ENDPOINTS) is True
    assert json.loads(files.run_config.read_text())["models"] == MODELS
    with pytest.raises(ConfigError, match="made with model m1"):
        check_same_run(files, RunConfig(n=4), {"generator": "m9"}, ENDPOINTS)


def test_overwrite_only_empties_clinsynth_run_directories(tmp_path: Path) -> None:
    check_overwritable(tmp_path / "missing")
    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.docx").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds no clinsynth run; not deleting it"):
        check_overwritable(user)
    (user / "run.json").write_text("{}")  # a run file next to the user's is not enough
    with pytest.raises(ConfigError, match=r"files clinsynth did not write \(thesis.docx\)"):
        clear_run_dir(user)
    assert sorted(p.name for p in user.iterdir()) == ["run.json", "thesis.docx"]
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(ConfigError, match="is not a directory"):
        check_overwritable(file)

    run = tmp_path / "run"
    (run / "analysis").mkdir(parents=True)
    for name in ("run.json", "manifest.json", "accepted.jsonl", "checkpoints.sqlite-wal"):
        (run / name).write_text("x")
    (run / "analysis" / "tsne.png").write_text("x")
    with RunLock(run):
        clear_run_dir(run)
        assert [p.name for p in run.iterdir()] == [".lock"]


def test_legacy_surplus_rows_in_rejected_count_as_surplus(tmp_path: Path) -> None:
    files = RunFiles(tmp_path)
    base = {"task": {"id": "t", "index": 0, "recipe": "qa"}, "item": None}
    prov = {"provenance": {"recipe": "qa", "model": "m", "prompt_version": "1", "attempts": 1}}
    rows = [
        {"id": "a", "status": "rejected", "reasons": ["surplus: the target was reached first"]},
        {"id": "b", "status": "rejected", "reasons": ["grounding: not in the source"]},
    ]
    files.rejected.write_text("".join(json.dumps({**r, **base, **prov}) + "\n" for r in rows))
    files.accepted.write_text(json.dumps({**base, **prov, "id": "c", "status": "accepted"}) + "\n")
    records = read_run(files)
    assert [r.id for r in records.rejected] == ["b"]
    assert [(r.id, r.status) for r in records.surplus] == [("a", "surplus")]
    assert records.acceptance_rate == 0.5


def test_registry_discard_keeps_the_other_rows() -> None:
    registry = AcceptedRegistry(HashingEmbedder())
    registry.add_many([("a", "heart failure"), ("b", "pneumonia cough"), ("c", "sepsis shock")])
    registry.discard("a")
    registry.discard("missing")
    assert len(registry) == 2 and "a" not in registry
    assert registry.nearest("sepsis shock") == ("c", pytest.approx(1.0))
    assert registry.nearest("pneumonia cough") == ("b", pytest.approx(1.0))
    registry.add("a", "heart failure")
    assert registry.nearest("heart failure") == ("a", pytest.approx(1.0)) and len(registry) == 3
