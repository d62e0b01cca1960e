"""Crash-safe run files: torn-line repair, idempotent append, atomic JSON."""

from __future__ import annotations

import json
from pathlib import Path

from clinsynth.tools.io import JsonlLog, iter_jsonl, write_json_atomic


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
