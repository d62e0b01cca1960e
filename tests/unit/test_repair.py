"""``repair_run``: unreadable run data is moved aside (never deleted), JSON files rebuilt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinsynth.cli_support import UserError
from clinsynth.commands.repair import repair_run
from clinsynth.config import RunConfig
from clinsynth.runtime.runfiles import iter_jsonl, read_json


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps(RunConfig(n=2).fingerprint()))
    return run


def test_started_log_torn_tail_and_non_objects_go_to_the_side_file(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    started = run / "started.jsonl"
    started.write_bytes(b'{"id": "a"}\n[1]\n{"no_id": 1}\n{"id": "b"}\n{"id": "c", "ta')
    (run / "started.jsonl.corrupt").write_bytes(b"earlier\n")
    assert repair_run(run) == [
        "started.jsonl: moved 3 unreadable line(s) (line 2, 3, 5) to started.jsonl.corrupt; 2 kept",
        "manifest.json: missing; rebuilt from the JSONL files",
    ]
    assert [r["id"] for r in iter_jsonl(started)] == ["a", "b"]
    assert (run / "started.jsonl.corrupt").read_bytes() == (
        b'earlier\n[1]\n{"no_id": 1}\n{"id": "c", "ta\n'
    )
    manifest = read_json(run / "manifest.json")
    assert manifest["counts"] == {
        "accepted": 0,
        "rejected": 0,
        "surplus": 0,
        "candidates": 2,
        "in_flight": 0,
    }
    assert manifest["run"] == RunConfig(n=2).fingerprint() and not manifest["finished"]
    assert repair_run(run) == []


def test_invalid_item_record_is_moved_aside(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    (run / "manifest.json").write_text("{}")
    (run / "accepted.jsonl").write_text('{"id": "a", "status": "accepted"}\n')
    assert repair_run(run) == [
        "accepted.jsonl: moved 1 unreadable line(s) (line 1) to accepted.jsonl.corrupt; 0 kept"
    ]
    assert (run / "accepted.jsonl").read_bytes() == b""


def test_run_json_and_manifest_both_broken_explains_and_numbers_side_files(
    tmp_path: Path,
) -> None:
    run = _run_dir(tmp_path)
    (run / "run.json").write_text("{")
    (run / "run.json.corrupt").write_text("older")
    (run / "manifest.json").write_text("[]")
    assert repair_run(run) == [
        "run.json: unreadable, moved to run.json.corrupt.1; the next generate records the "
        "settings it is given, so rerun it with the same settings as before",
        "manifest.json: unreadable, moved to manifest.json.corrupt; rebuilt from the JSONL files",
    ]
    assert (run / "run.json.corrupt").read_text() == "older"
    assert (run / "run.json.corrupt.1").read_text() == "{"
    assert not (run / "run.json").exists()
    assert read_json(run / "manifest.json")["run"] == {}


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is not a run directory"):
        repair_run(tmp_path)
    with pytest.raises(UserError, match="is not a run directory"):
        repair_run(tmp_path / "missing")


def test_damaged_cache_database_is_named_and_moved_aside(tmp_path: Path) -> None:
    from clinsynth.memory.cache import ReasoningCache
    from clinsynth.runtime.runfiles import RunFileError

    run = _run_dir(tmp_path)
    (run / "manifest.json").write_text("{}")
    cache = run / "reasoning_cache.sqlite"
    cache.write_bytes(b"not sqlite at all " * 300)
    with pytest.raises(RunFileError) as err:
        ReasoningCache(cache)
    assert str(err.value) == (
        f"{cache} is not a readable cache database (file is not a database); "
        f"run 'clinsynth repair {run}'"
    )
    assert repair_run(run) == [
        "reasoning_cache.sqlite: unreadable, moved to reasoning_cache.sqlite.corrupt; cached "
        "reasoning is asked for (and paid) again on the next run"
    ]
    with ReasoningCache(cache) as fresh:
        assert len(fresh) == 0
    assert repair_run(run) == []


def test_a_distributed_runs_worker_parts_are_repaired_and_named_in_the_hint(
    tmp_path: Path,
) -> None:
    from clinsynth.runtime.runfiles import RunFileError, recovery_hint

    run = _run_dir(tmp_path)
    (run / "manifest.json").write_text("{}")
    part = run / "parts" / "w1"
    part.mkdir(parents=True)
    (part / "started.jsonl").write_bytes(b'{"id": "a"}\n{"id": garbage\n{"id": "b"}\n')
    assert recovery_hint(part / "started.jsonl") == f"run 'clinsynth repair {run}'"
    # a single-process run kept in a folder that happens to be called "parts" is its own run
    own = tmp_path / "parts" / "mine"
    own.mkdir(parents=True)
    (own / "run.json").write_text("{}")
    assert recovery_hint(own / "accepted.jsonl") == f"run 'clinsynth repair {own}'"
    with pytest.raises(RunFileError, match="clinsynth repair"):
        list(iter_jsonl(part / "started.jsonl"))
    assert repair_run(run) == [
        "parts/w1/started.jsonl: moved 1 unreadable line(s) (line 2) to "
        "started.jsonl.corrupt; 2 kept"
    ]
    assert [r["id"] for r in iter_jsonl(part / "started.jsonl")] == ["a", "b"]
    assert repair_run(run) == []
