"""``clinsynth correct-labels``: find and fix likely wrong labels in a CSV or in a run.

Two inputs:

- ``correct-labels data.csv --text-col T --label-col L``: writes the kept rows with their
  (corrected) labels to ``--out`` (default ``data.corrected.csv``), rows the ``drop`` policy
  removed to ``*.dropped.csv``, and every decision with its probabilities to
  ``*.decisions.jsonl``;
- ``correct-labels --run RUN [--gold gold.csv ...]``: pools the run's accepted ``notes``
  items with optional gold rows, and writes ``RUN/corrected.jsonl`` (every kept item with its
  decision under ``item.label_decision`` and a label change in its provenance),
  ``RUN/label_dropped.jsonl`` (what ``drop`` removed) and ``RUN/gold_label_decisions.jsonl``.
  ``accepted.jsonl`` is never rewritten.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from clinsynth.cli_support import UserError, console, guard, out, settings_from_env
from clinsynth.runtime import aio

if TYPE_CHECKING:
    from clinsynth.tools.labels import LabelDecision, Method, Policy


def read_labelled_csv(path: Path, text_col: str, label_col: str) -> list[dict[str, str]]:
    """Rows of a CSV that has ``text_col`` and ``label_col``; one-line errors otherwise (a
    blank/NaN/None label is an error naming its line, never a class of its own)."""
    from clinsynth.datasets.tables import TableError, check_label, read_csv

    if not path.is_file():
        raise UserError(f"file not found: {path}")
    try:
        columns, numbered = read_csv(path)
        missing = [c for c in (text_col, label_col) if c not in columns]
        if missing:
            raise UserError(
                f"{path}: column {missing[0]!r} not found; columns: {', '.join(columns)}"
            )
        for line, row in numbered:
            if not row[text_col].strip():
                raise UserError(f"{path}:{line}: empty {text_col!r}")
            row[label_col] = check_label(row[label_col], f"{path}:{line}", label_col)
    except TableError as exc:
        raise UserError(str(exc)) from exc
    rows = [row for _, row in numbered]
    if len(rows) < 4:
        raise UserError(f"{path}: {len(rows)} rows; need enough labelled rows to cross-validate")
    return rows


def _correct(
    texts: list[str],
    labels: list[str],
    *,
    policy: Policy,
    method: Method,
    backbone: str | None,
    folds: int,
    seed: int,
    adjudicate_with_llm: bool,
    embedding_cache: Path | None = None,
) -> list[LabelDecision]:
    from clinsynth.finetune.errors import FinetuneError
    from clinsynth.tools.labels import LabelError, adjudicate, correct_labels

    folds = min(folds, len(texts))
    with console.status(f"cross-validating ({folds} folds, {method}) on {len(texts)} items…"):
        try:
            decisions = correct_labels(
                texts,
                labels,
                policy=policy,
                method=method,
                backbone=backbone,
                folds=folds,
                seed=seed,
                embedding_cache=embedding_cache,
            )
        except (LabelError, FinetuneError) as exc:
            raise UserError(str(exc)) from exc
    if adjudicate_with_llm and any(d.flagged for d in decisions):
        from clinsynth.graphs.factory import build_router
        from clinsynth.llm import UsageMeter

        settings = settings_from_env()
        llm = build_router(settings.endpoints(), UsageMeter()).for_role("critic")
        with console.status(f"asking {llm.name} about {sum(d.flagged for d in decisions)} items…"):
            decisions = aio.run(adjudicate(texts, decisions, llm))
    return decisions


def _summary(decisions: list[Any]) -> str:
    flagged = sum(d.flagged for d in decisions)
    relabelled = sum(d.action == "relabel" for d in decisions)
    dropped = sum(d.action == "drop" for d in decisions)
    return (
        f"{len(decisions)} items · {flagged} flagged · {relabelled} relabelled · {dropped} dropped"
    )


def _csv_mode(data: Path, text_col: str, label_col: str, out_path: Path | None, **kw: Any) -> None:
    rows = read_labelled_csv(data, text_col, label_col)
    texts = [row[text_col] for row in rows]
    labels = [row[label_col].strip() for row in rows]
    decisions = _correct(texts, labels, **kw)
    target = out_path or data.with_name(f"{data.stem}.corrected.csv")
    dropped_path = target.with_name(f"{target.stem}.dropped.csv")
    decisions_path = target.with_name(f"{target.stem}.decisions.jsonl")
    extra = ["label_flagged", "label_old", "label_suggested", "label_action", "label_reason"]
    columns = list(rows[0]) + [c for c in extra if c not in rows[0]]
    target.parent.mkdir(parents=True, exist_ok=True)
    kept: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for row, d in zip(rows, decisions, strict=True):
        new = dict(row)
        new.update(
            label_flagged=str(d.flagged).lower(),
            label_old=d.old_label,
            label_suggested=d.suggested_label,
            label_action=d.action,
            label_reason=d.reason,
        )
        if d.new_label is None:
            dropped.append(new)
        else:
            new[label_col] = d.new_label
            kept.append(new)
    for path, part in ((target, kept), (dropped_path, dropped)):
        if path is dropped_path and not part:
            continue
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(part)
    decisions_path.write_text("".join(d.model_dump_json() + "\n" for d in decisions))
    where = f" (dropped rows → {dropped_path})" if dropped else ""
    out.print(f"{_summary(decisions)} → {target}{where}; decisions → {decisions_path}")


def _run_mode(
    run_dir: Path,
    gold: Path | None,
    text_col: str | None,
    label_col: str | None,
    **kw: Any,
) -> None:
    from clinsynth.runtime.runfiles import read_records
    from clinsynth.schemas import ItemRecord

    accepted_path = run_dir / "accepted.jsonl"
    if not accepted_path.is_file():
        raise UserError(f"{run_dir} is not a run directory (no accepted.jsonl)")
    records = read_records(accepted_path)
    bad = [r.id for r in records if not isinstance((r.item or {}).get("text"), str)]
    if bad:
        raise UserError(f"{run_dir}: item {bad[0]} has no 'text' (is this a notes run?)")
    texts = [str((r.item or {})["text"]) for r in records]
    labels = [str((r.item or {}).get("label")) for r in records]
    gold_rows: list[dict[str, str]] = []
    if gold is not None:
        if not text_col or not label_col:
            raise UserError("--gold needs --text-col and --label-col")
        gold_rows = read_labelled_csv(gold, text_col, label_col)
        texts = [row[text_col] for row in gold_rows] + texts
        labels = [row[label_col].strip() for row in gold_rows] + labels
    if not records:
        raise UserError(f"{run_dir}: no accepted items to correct")
    decisions = _correct(texts, labels, **kw)
    gold_part, synth_part = decisions[: len(gold_rows)], decisions[len(gold_rows) :]
    kept_lines: list[str] = []
    dropped_lines: list[str] = []
    for rec, d in zip(records, synth_part, strict=True):
        item = dict(rec.item or {}, label_decision=d.model_dump(mode="json", exclude={"index"}))
        if d.new_label is not None:
            item["label"] = d.new_label
        change = d.label_change()
        prov = rec.provenance
        if change is not None:
            prov = prov.model_copy(update={"label_changes": [*prov.label_changes, change]})
        new = ItemRecord.model_validate(
            rec.model_dump() | {"item": item, "provenance": prov.model_dump()}
        )
        (dropped_lines if d.new_label is None else kept_lines).append(new.model_dump_json())
    (run_dir / "corrected.jsonl").write_text("".join(line + "\n" for line in kept_lines))
    (run_dir / "label_dropped.jsonl").write_text("".join(line + "\n" for line in dropped_lines))
    if gold_rows:
        (run_dir / "gold_label_decisions.jsonl").write_text(
            "".join(d.model_dump_json() + "\n" for d in gold_part)
        )
    out.print(
        f"synthetic: {_summary(synth_part)}"
        + (f" · gold: {_summary(gold_part)}" if gold_rows else "")
        + f" → {run_dir / 'corrected.jsonl'}"
    )


def register(app: typer.Typer) -> None:
    """Add ``correct-labels`` to the CLI."""

    @app.command("correct-labels")
    def correct_labels_cmd(
        data: Annotated[
            Path | None, typer.Argument(help="a CSV with text and label columns")
        ] = None,
        text_col: Annotated[str | None, typer.Option(help="text column")] = None,
        label_col: Annotated[str | None, typer.Option(help="label column")] = None,
        run: Annotated[
            Path | None, typer.Option("--run", help="a notes run directory instead of a CSV")
        ] = None,
        gold: Annotated[
            Path | None, typer.Option(help="with --run: gold CSV pooled with the run's items")
        ] = None,
        policy: Annotated[str, typer.Option(help="flag, relabel or drop")] = "flag",
        method: Annotated[str, typer.Option(help="ours, cleanlab or argmax")] = "ours",
        backbone: Annotated[
            str | None,
            typer.Option(help="minilm (default), hashing, or a BERT name/path to fine-tune"),
        ] = None,
        folds: Annotated[int, typer.Option(min=2, help="cross-validation folds")] = 5,
        seed: Annotated[int, typer.Option(help="fold shuffling seed")] = 0,
        adjudicate: Annotated[
            bool, typer.Option(help="ask the configured LLM (CLINSYNTH_*) about flagged items")
        ] = False,
        out_path: Annotated[
            Path | None, typer.Option("--out", help="CSV mode: corrected CSV to write")
        ] = None,
        embedding_cache: Annotated[
            Path | None,
            typer.Option(help="SQLite file keeping text embeddings for later runs (by text hash)"),
        ] = None,
    ) -> None:
        """Find likely wrong labels by confident learning; flag, relabel or drop them."""

        def _do() -> None:
            if policy not in ("flag", "relabel", "drop"):
                raise UserError(f"unknown policy '{policy}' (use flag, relabel or drop)")
            if method not in ("ours", "cleanlab", "argmax"):
                raise UserError(f"unknown method '{method}' (use ours, cleanlab or argmax)")
            kw: dict[str, Any] = {
                "policy": cast("Policy", policy),
                "method": cast("Method", method),
                "backbone": backbone,
                "folds": folds,
                "seed": seed,
                "adjudicate_with_llm": adjudicate,
                "embedding_cache": embedding_cache,
            }
            if run is not None:
                if data is not None:
                    raise UserError("give either a CSV or --run, not both")
                _run_mode(run, gold, text_col, label_col, **kw)
                return
            if data is None:
                raise UserError("give a CSV (with --text-col and --label-col) or --run RUN")
            if not text_col or not label_col:
                raise UserError("CSV mode needs --text-col and --label-col")
            _csv_mode(data, text_col, label_col, out_path, **kw)

        guard(_do)


__all__ = ["read_labelled_csv", "register"]
