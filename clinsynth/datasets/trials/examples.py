"""Labelled training examples from trial tables, JSONL rows or run directories."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from clinsynth.datasets.tables import TableError, check_label, read_csv
from clinsynth.datasets.trials.loaders import _jsonl_rows, load_trials
from clinsynth.datasets.trials.schema import TrialError, TrialRecord, trial_text


class Example(BaseModel):
    """One (text, label) example for classification, with the id used to detect overlap."""

    id: str
    text: str
    label: str


def _is_trial(row: Mapping[str, Any]) -> bool:
    return "interventions" in row and "eligibility_criteria" in row


def _label(value: Any, where: str, column: str) -> str:
    """A label cell as a label; a blank/NaN/None cell is a :class:`TrialError` naming ``where``."""
    try:
        return check_label(value, where, column)
    except TableError as exc:
        raise TrialError(str(exc)) from exc


def _row_example(
    row: Mapping[str, Any],
    fallback_id: str,
    text_field: str,
    label_field: str,
    fields: Iterable[str] | None,
) -> Example | None:
    if isinstance(row.get("item"), dict) and "status" in row:  # an ItemRecord of a run
        if row["status"] != "accepted":
            return None
        row = row["item"]
    if _is_trial(row):
        rec = TrialRecord.model_validate(row)
        if rec.label is None:
            return None
        return Example(id=rec.id, text=trial_text(rec, fields), label=rec.label)
    if text_field not in row or label_field not in row:
        raise TrialError(
            f"row {fallback_id} has no '{text_field}' text or '{label_field}' label "
            "(set --text-field / --label-field)"
        )
    label = _label(row[label_field], f"row {fallback_id}", label_field)
    ident = str(row.get("id") or row.get("nctid") or fallback_id)
    return Example(id=ident, text=str(row[text_field]), label=label)


def load_examples(
    path: Path,
    *,
    text_field: str = "text",
    label_field: str = "label",
    fields: Iterable[str] | None = None,
) -> list[Example]:
    """Labelled examples from a trial table (HINT, TrialBench, CT.gov JSON), a run directory
    (its ``accepted.jsonl``), or a generic CSV / JSONL / Parquet with text and label columns. Trial
    texts go through :func:`trial_text` (scrubbed); unlabelled trials are skipped."""
    path = Path(path)
    if path.is_dir():
        path = path / "accepted.jsonl"
    if not path.is_file():
        raise TrialError(f"data file not found: {path}")
    fields = list(fields) if fields is not None else None
    if path.suffix == ".jsonl":
        rows = _jsonl_rows(path)
        if rows and "protocolSection" in rows[0]:
            recs = load_trials(path)
            return [
                Example(id=r.id, text=trial_text(r, fields), label=r.label) for r in recs if r.label
            ]
        found = (
            _row_example(row, f"{path.name}:{i}", text_field, label_field, fields)
            for i, row in enumerate(rows, start=1)
        )
        return [ex for ex in found if ex is not None]
    if path.suffix == ".parquet":  # e.g. written by ``clinsynth export --format parquet``
        import pyarrow.parquet as pq

        table = pq.read_table(path).to_pylist()
        found = (
            _row_example(row, f"{path.name}:{i}", text_field, label_field, fields)
            for i, row in enumerate(table, start=1)
        )
        return [ex for ex in found if ex is not None]
    if path.suffix == ".csv":
        try:
            header, numbered = read_csv(path)
        except TableError as exc:
            raise TrialError(str(exc)) from exc
        if text_field in header and label_field in header and "nctid" not in header:
            return [
                Example(
                    id=str(r.get("id") or f"{path.name}:{line}"),
                    text=r[text_field],
                    label=_label(r[label_field], f"{path}:{line}", label_field),
                )
                for line, r in numbered
            ]
    recs = load_trials(path)
    return [Example(id=r.id, text=trial_text(r, fields), label=r.label) for r in recs if r.label]
