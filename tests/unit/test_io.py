"""Crash-safe run files: torn-line repair, idempotent append, atomic JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from clinsynth.runtime.runfiles import JsonlLog, iter_jsonl, write_json_atomic


def test_append_is_idempotent_per_id(tmp_path: Path) -> None:
    log = JsonlLog(tmp_path / "a.jsonl")
    assert log.append({"id": "x", "v": 1})
    assert not log.append({"id": "x", "v": 2})
    assert log.append({"id": "y", "v": 3})
    log.close()
    rows = list(iter_jsonl(tmp_path / "a.jsonl"))
    assert [r["id"] for r in rows] == ["x", "y"]
    assert rows[0]["v"] == 1


def test_torn_last_line_is_cut_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"id": "x"}\n{"id": "y", "v": [1, 2')
    assert [r["id"] for r in iter_jsonl(path)] == ["x"]
    log = JsonlLog(path)
    assert log.ids == {"x"}
    log.append({"id": "y"})
    log.close()
    assert path.read_bytes() == b'{"id": "x"}\n{"id": "y"}\n'


def test_ids_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    first = JsonlLog(path)
    first.append({"id": "x"})
    first.close()
    second = JsonlLog(path)
    assert not second.append({"id": "x"})
    assert len(second) == 1
    second.close()


def test_write_json_atomic_replaces(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert not (tmp_path / "m.json.tmp").exists()


def test_fsync_is_grouped_and_done_on_close(tmp_path: Path, monkeypatch: Any) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    grouped = JsonlLog(tmp_path / "g.jsonl", sync_interval_s=3600)
    for i in range(5):
        grouped.append({"id": str(i)})
    assert synced == []  # within the interval: written (a kill -9 keeps them), not yet fsynced
    grouped.close()
    assert len(synced) == 1
    every = JsonlLog(tmp_path / "e.jsonl", sync_interval_s=0)
    for i in range(3):
        every.append({"id": str(i)})
    every.close()  # nothing new since the last row's sync: no extra fsync
    assert len(synced) == 4
    assert [row["id"] for row in iter_jsonl(tmp_path / "g.jsonl")] == ["0", "1", "2", "3", "4"]


def test_torn_line_mid_file_names_file_line_and_repair(tmp_path: Path) -> None:
    import pytest

    from clinsynth.runtime.runfiles import RunFileError, read_records

    (tmp_path / "run.json").write_text("{}")
    path = tmp_path / "started.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b", "ta\n{"id": "c"}\n')
    with pytest.raises(RunFileError) as err:
        list(iter_jsonl(path))
    assert str(err.value).startswith(f"{path}:2: corrupt line")
    assert str(err.value).endswith(f"run 'clinsynth repair {tmp_path}'")
    with pytest.raises(RunFileError, match=r"accepted\.jsonl:1: not an item record"):
        (tmp_path / "accepted.jsonl").write_text('{"id": "a"}\n')
        read_records(tmp_path / "accepted.jsonl")


def test_corrupt_json_file_outside_a_run_says_fix_it(tmp_path: Path) -> None:
    import pytest

    from clinsynth.runtime.runfiles import RunFileError, read_json

    path = tmp_path / "data.json"
    path.write_text('{"a": 1')
    with pytest.raises(RunFileError, match=r"data\.json is corrupt .*; fix or remove it$"):
        read_json(path)
    path.write_text("[1, 2]")
    with pytest.raises(RunFileError, match="a JSON list, not an object"):
        read_json(path)


def test_data_file_keeps_a_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"id": "x"}\n\n{"id": "y"}')
    assert [r["id"] for r in iter_jsonl(path)] == ["x"]
    assert [r["id"] for r in iter_jsonl(path, whole_last_line=True)] == ["x", "y"]
