"""Export a run's accepted items as a training-ready dataset with a dataset card.

Rows come from the recipe's :meth:`~clinsynth.recipes.base.Recipe.export_row` (``qa``:
SQuAD-style context / question / answers; ``trials`` and ``notes``: text / label), the record
id first. Formats: ``jsonl`` (``train.jsonl``), ``csv`` (``train.csv``, nested values as
JSON), ``parquet`` (``train.parquet``) and ``hf`` (``datasets.Dataset.save_to_disk``); each
gets a ``README.md`` card (:mod:`clinsynth.tools.card`).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from clinsynth.config import ConfigError
from clinsynth.runtime.runfiles import RunFiles, RunRecords, read_json, read_run

Format = Literal["jsonl", "csv", "parquet", "hf"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "parquet", "hf")
DATA_FILES = {"jsonl": "train.jsonl", "csv": "train.csv", "parquet": "train.parquet"}


class ExportError(ValueError):
    """Export cannot proceed (not a run, unknown field, an item the recipe cannot convert)."""


class ExportResult(BaseModel):
    """What an export wrote."""

    out_dir: str
    format: str
    rows: int
    columns: list[str]
    data_path: str
    card_path: str
    licence: str


def load_run(run_dir: Path) -> tuple[dict[str, Any], RunRecords]:
    """The manifest and the records (passages restored) of a run directory."""
    files = RunFiles(run_dir)
    if not files.manifest.is_file():
        raise ExportError(f"{run_dir} is not a run directory (no manifest.json)")
    return read_json(files.manifest), read_run(files)


def recipe_for(manifest: dict[str, Any]) -> Any:
    """The run's recipe with its options (without them when they no longer validate, e.g. a
    reader path that is gone: export only needs the row hook)."""
    from clinsynth.recipes import get_recipe

    recipe = manifest.get("recipe")
    name = recipe.get("name") if isinstance(recipe, dict) else recipe
    if not isinstance(name, str):
        raise ExportError("the manifest names no recipe")
    options = (manifest.get("run") or {}).get("recipe_options") or {}
    try:
        return get_recipe(name, options)
    except ConfigError:
        try:
            return get_recipe(name)
        except ConfigError as exc:
            raise ExportError(str(exc)) from exc


def export_rows(
    recipe: Any, records: RunRecords, fields: list[str] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows and their columns: ``id`` then the recipe's columns (or ``fields``)."""
    rows = []
    for rec in records.accepted:
        if rec.item is None:
            continue
        try:
            row = {"id": rec.id, **recipe.export_row(rec.item)}
        except (ValueError, KeyError, TypeError) as exc:
            raise ExportError(f"item {rec.id} cannot be exported: {exc}") from exc
        rows.append(row)
    columns = list(dict.fromkeys(k for r in rows for k in r)) or ["id"]
    if fields:
        unknown = [f for f in fields if f not in columns]
        if unknown:
            raise ExportError(
                f"unknown field(s) {', '.join(unknown)} (this recipe exports: {', '.join(columns)})"
            )
        columns = ["id", *[f for f in fields if f != "id"]]
    return [{c: r.get(c) for c in columns} for r in rows], columns


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [
                json.dumps(v, ensure_ascii=False)
                if isinstance(v, dict | list)
                else ("" if v is None else v)
                for v in (row[c] for c in columns)
            ]
        )
    return buf.getvalue()


def _dataset(rows: list[dict[str, Any]], columns: list[str]) -> Any:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - the train extra is missing
        raise ExportError(
            "--format parquet/hf needs the 'datasets' package: pip install 'clinsynth[train]'"
        ) from exc
    if rows:
        return datasets.Dataset.from_list(rows)
    return datasets.Dataset.from_dict({c: [] for c in columns})


def write_data(out_dir: Path, fmt: Format, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    """Write the rows in ``fmt`` under ``out_dir``; returns the data file (or folder)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        path = out_dir / DATA_FILES["jsonl"]
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        path.write_text(text, encoding="utf-8")
        return path
    if fmt == "csv":
        path = out_dir / DATA_FILES["csv"]
        path.write_text(_csv_text(rows, columns), encoding="utf-8", newline="")
        return path
    from clinsynth.runtime.quiet import quiet_progress_bars

    dataset = _dataset(rows, columns)
    with quiet_progress_bars():  # datasets' "Creating parquet" / "Saving the dataset" bars
        if fmt == "parquet":
            path = out_dir / DATA_FILES["parquet"]
            dataset.to_parquet(str(path))
            return path
        dataset.save_to_disk(str(out_dir))
    return out_dir


def check_out_dir(out_dir: Path, fmt: Format, overwrite: bool) -> None:
    """Refuse a folder that already holds files this export would not write (unless
    ``overwrite``): an export never mixes into someone else's folder."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ExportError(f"{out_dir} exists and is not a folder")
    ours = {"README.md", *DATA_FILES.values(), "dataset_info.json", "state.json"}
    others = [
        p.name
        for p in out_dir.iterdir()
        if p.name not in ours and not (fmt == "hf" and p.name.startswith("data-"))
    ]
    if others and not overwrite:
        raise ExportError(
            f"{out_dir} already holds other files ({', '.join(sorted(others)[:3])}); "
            "choose another --out or pass --overwrite"
        )


def export_run(
    run_dir: Path,
    fmt: Format,
    out_dir: Path | None = None,
    fields: list[str] | None = None,
    *,
    overwrite: bool = False,
) -> ExportResult:
    """Export ``run_dir``'s accepted items to ``out_dir`` (default ``RUN/export/FORMAT``)
    with a dataset card."""
    from clinsynth.tools.card import card_text

    if fmt not in FORMATS:
        raise ExportError(f"unknown --format {fmt!r} (use {', '.join(FORMATS)})")
    manifest, records = load_run(run_dir)
    recipe = recipe_for(manifest)
    rows, columns = export_rows(recipe, records, fields)
    out = out_dir if out_dir is not None else run_dir / "export" / fmt
    check_out_dir(out, fmt, overwrite)
    data = write_data(out, fmt, rows, columns)
    card, licence = card_text(run_dir, manifest, records, recipe, fmt, columns, len(rows))
    card_path = out / "README.md"
    card_path.write_text(card, encoding="utf-8")
    return ExportResult(
        out_dir=str(out),
        format=fmt,
        rows=len(rows),
        columns=columns,
        data_path=str(data),
        card_path=str(card_path),
        licence=licence,
    )
