"""``clinsynth inspect RUN``: a readable summary of a run, and its items on request.

Summary: state, counts by status (surplus included), critic scores (min / median / max, which
direction is good, the gate), tokens, cost, timings and the stop reason. ``--sample N``
shows items as panels (fields, label, scores, reasons), filtered by ``--status`` and
``--where``, ordered by ``--sort``; ``--json`` prints the same for machines.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from clinsynth.cli_support import UserError, guard, out
from clinsynth.commands._inspect_items import item_json, print_items, print_summary

STATUSES = ("accepted", "rejected", "surplus", "all")


def inspect_command(
    run_dir: Annotated[Path, typer.Argument(help="a run directory written by generate")],
    sample: Annotated[
        int, typer.Option("--sample", min=0, help="show N items (0: the summary only)")
    ] = 0,
    status: Annotated[
        str, typer.Option("--status", help="items to show: accepted | rejected | surplus | all")
    ] = "accepted",
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            help="keep items where NAME OP VALUE holds, e.g. 'difficulty>=0.7' (repeatable; "
            "NAME: a critic score, an item field, attempts, tokens, duration_s) [default: all]",
            show_default=False,
        ),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(
            "--sort",
            help="order by NAME, highest first (NAME:asc: lowest first) [default: a seeded "
            "random sample]",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the random sample")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Summarise a run (counts, scores, tokens, cost, timings, stop reason) and show items."""
    guard(_inspect, run_dir, sample, status, where or [], sort, seed, as_json)


def _cost(manifest: dict[str, Any], tokens: dict[str, Any]) -> float | None:
    run = manifest.get("run") or {}
    price_in, price_out = run.get("price_per_1k_input") or 0, run.get("price_per_1k_output") or 0
    if not (price_in or price_out):
        return None
    cost = tokens.get("input_tokens", 0) * price_in + tokens.get("output_tokens", 0) * price_out
    return round(cost / 1000, 6)


def summarize_run(run_dir: Path) -> dict[str, Any]:
    """The numbers ``inspect`` shows, as a dict."""
    from clinsynth.evaluators.scores import score_table
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
    everything = accepted + rejected + surplus
    usage = {
        "input_tokens": sum(r.provenance.usage.input_tokens for r in everything),
        "output_tokens": sum(r.provenance.usage.output_tokens for r in everything),
        "calls": sum(r.provenance.usage.calls for r in everything),
    }
    tokens = usage["input_tokens"] + usage["output_tokens"]
    durations = [r.provenance.duration_s for r in accepted if r.provenance.duration_s is not None]
    judged = [r.model_dump(mode="json") for r in accepted + rejected]
    scores = score_table([r.model_dump(mode="json") for r in accepted], judged)
    recipe = manifest.get("recipe")
    wall = (manifest.get("timings") or {}).get("wall_s")
    return {
        "run_dir": str(run_dir),
        "recipe": recipe.get("name") if isinstance(recipe, dict) else recipe,
        "prompt_version": recipe.get("prompt_version") if isinstance(recipe, dict) else None,
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
        "usage": usage,
        "tokens_per_accepted": round(tokens / len(accepted), 1) if accepted else None,
        "cost": _cost(manifest, usage),
        "wall_s": wall,
        "seconds_per_accepted": round(wall / len(accepted), 2) if wall and accepted else None,
        "item_seconds_median": round(statistics.median(durations), 2) if durations else None,
        "scores": [s.model_dump() for s in scores],
    }


def _inspect(
    run_dir: Path,
    sample: int,
    status: str,
    where: list[str],
    sort: str | None,
    seed: int,
    as_json: bool,
) -> None:
    from clinsynth.evaluators.selection import SelectionError, select
    from clinsynth.runtime.runfiles import RunFiles, read_run

    if status not in STATUSES:
        raise UserError(f"unknown --status {status!r} (use {', '.join(STATUSES)})")
    summary = summarize_run(run_dir)
    shown: list[Any] = []
    if sample or where or sort:
        records = read_run(RunFiles(run_dir))
        pool = (
            [r for group in records for r in group]
            if status == "all"
            else list(getattr(records, status))
        )
        try:
            shown = select(pool, sample or 5, where=where, sort=sort, seed=seed)
        except SelectionError as exc:
            raise UserError(str(exc)) from exc
    if as_json:
        wanted = sample or where or sort
        data = dict(summary, items=[item_json(r) for r in shown]) if wanted else summary
        out.print_json(data=data)
        return
    print_summary(summary)
    if sample or where or sort:
        print_items(shown, status, where, sort, _label_function(run_dir))


def _label_function(run_dir: Path) -> Any:
    """The run's recipe's ``label_of`` over records (None when the recipe cannot be built)."""
    from clinsynth.runtime.runfiles import read_json
    from clinsynth.tools.export import ExportError, recipe_for

    try:
        recipe = recipe_for(read_json(run_dir / "manifest.json"))
    except ExportError:
        return None
    return lambda rec: recipe.label_of(rec.task, rec.item)


def register(app: typer.Typer) -> None:
    """Add ``inspect`` to the CLI."""
    app.command("inspect")(inspect_command)
