"""Passages stored once per run: ``RUN/passages.jsonl`` holds each source chunk a run's items
were grounded in, keyed by chunk id; item rows keep the chunk id and spans, not the text.

An item that names its passage with ``context_id`` and carries it as ``context`` (recipe
``qa``) is written without ``context`` (in the item and in each attempt of its history) and
gets it back when read. Rows of older runs, which carry ``context`` themselves, are read as
they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clinsynth.runtime.runfiles import JsonlLog
    from clinsynth.schemas import ItemRecord

PASSAGES_FILE = "passages.jsonl"
PASSAGE_ID_KEY = "context_id"
PASSAGE_TEXT_KEY = "context"
METADATA_VALUE_CHARS = 300
"""Chunk metadata values longer than this (e.g. a whole stored trial record) are not kept."""


def passage_row(chunk_id: str, text: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """The ``passages.jsonl`` row of one chunk: id, text, and its short metadata (``source``
    among them, which the dataset card reads for licences)."""
    meta = {
        key: value
        for key, value in metadata.items()
        if value is None
        or isinstance(value, bool | int | float)
        or len(json.dumps(value, ensure_ascii=False)) <= METADATA_VALUE_CHARS
    }
    return {"id": chunk_id, "text": text, "metadata": meta}


def _compact_item(item: Any, stored: set[str]) -> Any:
    if (
        isinstance(item, dict)
        and item.get(PASSAGE_ID_KEY) in stored
        and PASSAGE_TEXT_KEY in item
        and isinstance(item[PASSAGE_TEXT_KEY], str)
    ):
        return {k: v for k, v in item.items() if k != PASSAGE_TEXT_KEY}
    return item


def compact_row(row: dict[str, Any], stored: set[str]) -> dict[str, Any]:
    """``row`` (an item record as JSON) without the passage text of any item whose
    ``context_id`` is among the ``stored`` passage ids."""
    out = dict(row, item=_compact_item(row.get("item"), stored))
    history = row.get("history")
    if isinstance(history, list):
        out["history"] = [
            dict(a, item=_compact_item(a.get("item"), stored)) if isinstance(a, dict) else a
            for a in history
        ]
    return out


def logged_row(record: ItemRecord, passages: JsonlLog) -> dict[str, Any]:
    """The row to log for ``record``: its passages appended to the run's (or a worker
    part's) ``passages`` log, once each, then the record as JSON without their text."""
    for chunk in record.passages:
        passages.append(passage_row(chunk.id, chunk.text, chunk.metadata))
    return compact_row(record.model_dump(mode="json"), passages.ids)


def _restore_item(item: Any, passages: dict[str, str]) -> Any:
    if isinstance(item, dict) and PASSAGE_TEXT_KEY not in item:
        text = passages.get(str(item.get(PASSAGE_ID_KEY)))
        if text is not None:
            return {**item, PASSAGE_TEXT_KEY: text}
    return item


def restore_row(row: dict[str, Any], passages: dict[str, str]) -> dict[str, Any]:
    """``row`` with each item's passage text put back from ``passages`` (id → text)."""
    if not passages:
        return row
    out = dict(row)
    if "item" in row:
        out["item"] = _restore_item(row["item"], passages)
    history = row.get("history")
    if isinstance(history, list):
        out["history"] = [
            dict(a, item=_restore_item(a.get("item"), passages)) if isinstance(a, dict) else a
            for a in history
        ]
    return out


def passages_path(rows_path: Path) -> Path:
    """The ``passages.jsonl`` beside a run's ``accepted.jsonl`` (or other JSONL log)."""
    return rows_path.parent / PASSAGES_FILE


def read_passage_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``passages.jsonl`` (none when it does not exist)."""
    from clinsynth.runtime.runfiles import iter_jsonl

    return [row for row in iter_jsonl(path) if isinstance(row.get("id"), str)]


def read_passages(rows_path: Path) -> dict[str, str]:
    """Chunk id → text of the passages stored beside ``rows_path`` (empty for an old run or a
    plain JSONL file)."""
    return {
        row["id"]: str(row.get("text") or "") for row in read_passage_rows(passages_path(rows_path))
    }
