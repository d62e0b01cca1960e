"""Extractive-QA examples for ``clinsynth train --task qa``: a SQuAD JSON file, a ``qa`` run
(passages put back from ``passages.jsonl``), or rows written by ``clinsynth export``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clinsynth.cli_support import UserError


def load_qa_examples(path: Path) -> list[Any]:
    """Extractive-QA examples from a SQuAD JSON file, from a ``qa`` run directory / JSONL of
    accepted items (question, context, answer, answerable, answer_start), or from rows written
    by ``clinsynth export`` (JSONL or Parquet: context, question, SQuAD ``answers``)."""
    from clinsynth.finetune import QAExample, load_squad_json
    from clinsynth.runtime.passages import read_passages, restore_row
    from clinsynth.runtime.runfiles import numbered_jsonl

    if path.suffix == ".json":
        return load_squad_json(path)
    rows_path = path / "accepted.jsonl" if path.is_dir() else path
    if not rows_path.is_file():
        raise UserError(f"data file not found: {rows_path}")
    if rows_path.suffix == ".parquet":
        rows = list(enumerate(_parquet_rows(rows_path), start=1))
    else:
        passages = read_passages(rows_path)
        rows = [
            (i, restore_row(r, passages))
            for i, r in numbered_jsonl(rows_path, whole_last_line=True)
        ]
    examples = []
    for i, row in rows:
        item = row.get("item") if isinstance(row.get("item"), dict) else row
        if row.get("status", "accepted") != "accepted" or not item:
            continue
        if not {"question", "context"} <= set(item):
            raise UserError(f"{rows_path}:{i} is not a QA item (needs question and context)")
        text, start = _answer_of(item)
        examples.append(
            QAExample(
                id=str(row.get("id") or f"{rows_path.name}:{i}"),
                question=item["question"],
                context=item["context"],
                answer_text=text,
                answer_start=start,
            )
        )
    return examples


def _answer_of(item: dict[str, Any]) -> tuple[str | None, int | None]:
    """(answer text, start) of a run item or of a SQuAD-style exported row; (None, None)
    when unanswerable."""
    answers = item.get("answers")
    if isinstance(answers, dict):
        texts, starts = list(answers.get("text") or []), list(answers.get("answer_start") or [])
        return (str(texts[0]), int(starts[0])) if texts and starts else (None, None)
    if bool(item.get("answerable", item.get("answer_start") is not None)):
        return item.get("answer"), item.get("answer_start")
    return None, None


def _parquet_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a Parquet file written by ``clinsynth export`` (plain Python values)."""
    import pyarrow.parquet as pq

    return list(pq.read_table(path).to_pylist())
