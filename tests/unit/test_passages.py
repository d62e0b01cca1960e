"""Passages stored once per run: rows written without the passage text, read back whole;
rows of older runs (passage on every row) still read as they are."""

from __future__ import annotations

import json
from pathlib import Path

from clinsynth.runtime.passages import compact_row, passage_row, read_passages, restore_row
from clinsynth.runtime.runfiles import RunFiles, read_run

DOC = "The patient reports chest pain on exertion. " * 20


def qa_row(i: int, context: str | None = DOC) -> dict[str, object]:
    item: dict[str, object] = {
        "question": f"question {i}?",
        "context_id": "doc#0",
        "answer": "chest pain",
        "answer_start": 16,
        "answerable": True,
    }
    if context is not None:
        item["context"] = context
    return {
        "id": f"qa-0-{i:06d}",
        "status": "accepted",
        "task": {"id": f"qa-0-{i:06d}", "index": i, "recipe": "qa"},
        "item": item,
        "provenance": {"recipe": "qa", "model": "m", "prompt_version": "v", "attempts": 1},
        "history": [{"number": 1, "item": dict(item)}],
    }


def test_compact_then_restore_is_the_same_row() -> None:
    row = qa_row(0)
    compact = compact_row(row, {"doc#0"})
    assert "context" not in compact["item"] and "context" not in compact["history"][0]["item"]
    assert compact["item"]["context_id"] == "doc#0" and compact["item"]["answer_start"] == 16
    assert restore_row(compact, {"doc#0": DOC}) == row


def test_a_passage_not_stored_stays_on_the_row() -> None:
    row = qa_row(0)
    assert compact_row(row, {"other#1"}) == row


def test_passage_metadata_keeps_short_values_only() -> None:
    row = passage_row("t1", "text", {"source": "hint_top", "record": "x" * 5000, "n": 3})
    assert row == {"id": "t1", "text": "text", "metadata": {"source": "hint_top", "n": 3}}


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_run_with_passages_file_and_old_run_read_the_same(tmp_path: Path) -> None:
    new, old = tmp_path / "new", tmp_path / "old"
    for d in (new, old):
        d.mkdir()
    write_jsonl(new / "passages.jsonl", [passage_row("doc#0", DOC, {"source": "a.md"})])
    write_jsonl(new / "accepted.jsonl", [compact_row(qa_row(i), {"doc#0"}) for i in range(3)])
    write_jsonl(old / "accepted.jsonl", [qa_row(i) for i in range(3)])
    assert read_passages(new / "accepted.jsonl") == {"doc#0": DOC}
    assert read_passages(old / "accepted.jsonl") == {}
    got_new, got_old = read_run(RunFiles(new)).accepted, read_run(RunFiles(old)).accepted
    assert [r.item for r in got_new] == [r.item for r in got_old]
    assert all(r.item and r.item["context"] == DOC for r in got_new)
    # Row size: each row written without its passage is smaller by at least the two copies
    # (the item and the attempt in its history) of the passage.
    new_sizes = [len(line) for line in (new / "accepted.jsonl").read_bytes().splitlines()]
    old_sizes = [len(line) for line in (old / "accepted.jsonl").read_bytes().splitlines()]
    assert all(o - n >= 2 * len(DOC) for o, n in zip(old_sizes, new_sizes, strict=True))
