"""``clinsynth report RUN``: write RUN/report.html (funnel, rejection reasons, histograms)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clinsynth.cli_support import UserError, console, guard, out


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="a run directory written by generate")],
) -> None:
    """Write RUN/report.html: acceptance funnel, attempts, rejection reasons, critic-score
    histograms (e.g. overlap and difficulty) and every RUN/analysis/*.png / *.json."""

    def _do() -> None:
        from clinsynth.evaluators.report import ReportError, write_report

        try:
            with console.status("rendering report…"):
                path = write_report(run_dir)
        except ReportError as exc:
            raise UserError(str(exc)) from exc
        out.print(f"report written to {path}", highlight=False)

    guard(_do)


def register(app: typer.Typer) -> None:
    """Add ``report`` to the CLI."""
    app.command("report")(report_command)
