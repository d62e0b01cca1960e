"""``clinsynth inspect RUN``: counts, state, rejection reasons, attempts, tokens of a run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from clinsynth.cli_support import UserError, guard, out
from clinsynth.runtime.runlock import describe_holder


def inspect_command(
    run_dir: Annotated[Path, typer.Argument(help="a run directory written by generate")],
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Summarise a run: counts, rejection reasons, attempts, tokens, label changes."""
    guard(_inspect, run_dir, as_json)


def summarize_run(run_dir: Path) -> dict[str, Any]:
    """The numbers ``inspect`` shows, as a dict."""
    from clinsynth.runtime.runfiles import RunFiles, iter_jsonl, read_json, read_run
    from clinsynth.runtime.runlock import lock_holder

    files = RunFiles(run_dir)
    if not files.manifest.exists():
        raise UserError(f"{run_dir} is not a run directory (no manifest.json)")
    manifest = read_json(files.manifest)
    records = read_run(files)
    accepted, rejected, surplus = records
    started = [row["id"] for row in iter_jsonl(files.started)]
    finished = {r.id for r in accepted + rejected + surplus}
    holder = lock_holder(run_dir)
    state = "running" if holder is not None else "finished" if manifest.get("finished") else None
    reasons: Counter[str] = Counter()
    for rec in rejected:
        for reason in rec.reasons:
            reasons[reason.split(":", 1)[0]] += 1
    attempts = Counter(r.provenance.attempts for r in accepted)
    tokens = sum(r.provenance.usage.total_tokens for r in accepted + rejected + surplus)
    return {
        "run_dir": str(run_dir),
        "recipe": manifest.get("recipe"),
        "models": manifest.get("models"),
        "stop_reason": manifest.get("stop_reason"),
        "finished": manifest.get("finished"),
        "state": state or "interrupted",
        "writer": holder,
        "accepted": len(accepted),
        "rejected": len(rejected),
        "surplus": len(surplus),
        "candidates": len(started),
        "unfinished": sorted(set(started) - finished),
        "acceptance_rate": records.acceptance_rate,
        "rejection_reasons": dict(reasons.most_common()),
        "attempts_of_accepted": dict(sorted(attempts.items())),
        "label_changes": sum(len(r.provenance.label_changes) for r in accepted),
        "tokens": tokens,
        "tokens_per_accepted": round(tokens / len(accepted), 1) if accepted else None,
    }


def _inspect(run_dir: Path, as_json: bool) -> None:
    summary = summarize_run(run_dir)
    if as_json:
        out.print_json(data=summary)
        return
    table = Table(title=f"run {run_dir}", show_header=False)
    state = summary["state"]
    if state == "interrupted":
        state = "interrupted (stopped before it finished; rerun the command to resume)"
    elif state == "running":
        state = f"running ({describe_holder(summary['writer'])})"
    table.add_row("state", state)
    for key in (
        "recipe",
        "models",
        "stop_reason",
        "accepted",
        "rejected",
        "surplus",
        "candidates",
        "acceptance_rate",
        "attempts_of_accepted",
        "label_changes",
        "tokens",
        "tokens_per_accepted",
    ):
        table.add_row(key, str(summary[key]))
    table.add_row("unfinished", str(len(summary["unfinished"])))
    out.print(table)
    if summary["rejection_reasons"]:
        reasons = Table("rejection reason (check)", "items")
        for reason, count in summary["rejection_reasons"].items():
            reasons.add_row(reason, str(count))
        out.print(reasons)


def register(app: typer.Typer) -> None:
    """Add ``inspect`` to the CLI."""
    app.command("inspect")(inspect_command)
