"""``clinsynth export RUN``: the accepted items as a training-ready dataset with a card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from clinsynth.cli_support import UserError, console, guard, out


def export_command(
    run_dir: Annotated[Path, typer.Argument(help="a run directory written by generate")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="jsonl | csv | parquet | hf (save_to_disk)")
    ] = "jsonl",
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="output folder [default: RUN/export/FORMAT]", show_default=False
        ),
    ] = None,
    fields: Annotated[
        list[str] | None,
        typer.Option(
            "--fields",
            help="columns to keep besides id (repeat or comma-separate) [default: all]",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="write into a folder that holds other files")
    ] = False,
) -> None:
    """Export accepted items as a dataset (jsonl, csv, parquet, hf) with a dataset card.

    Rows are the recipe's training-ready rows (qa: SQuAD-style context / question / answers;
    trials, notes: text / label); README.md holds the card (licence from the sources, counts,
    critic-score distributions, models, prompt version, generation config)."""

    def _do() -> None:
        from clinsynth.tools.export import ExportError, Format, export_run

        wanted = [f.strip() for spec in fields or [] for f in spec.split(",") if f.strip()]
        try:
            with console.status(f"exporting {run_dir} as {fmt}…"):
                result = export_run(
                    run_dir, cast(Format, fmt), out_dir, wanted or None, overwrite=overwrite
                )
        except ExportError as exc:
            raise UserError(str(exc)) from exc
        out.print(
            f"exported {result.rows} rows ({', '.join(result.columns)}) to {result.data_path}; "
            f"card {result.card_path} (licence: {result.licence})"
        )

    guard(_do)


def register(app: typer.Typer) -> None:
    """Add ``export`` to the CLI."""
    app.command("export")(export_command)
