"""How ``inspect`` prints: the summary table, the score table, and items as panels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from clinsynth.cli_support import out
from clinsynth.runtime.runlock import describe_holder
from clinsynth.schemas import ItemRecord

LONG_FIELD_CHARS = 320
"""Longer item fields (a passage, a whole trial) are cut in the panels (``--json`` has all)."""


def _models(models: Any) -> str:
    if not isinstance(models, dict) or not models:
        return str(models or "unknown")
    names = set(models.values())
    if len(names) == 1:
        return f"{next(iter(names))} ({', '.join(models)})"
    return " · ".join(f"{role}: {name}" for role, name in models.items())


def _num(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
    return text + unit


def print_summary(s: dict[str, Any]) -> None:
    """The summary as a two-column table, then the scores and the rejection reasons."""
    table = Table(title=f"run {s['run_dir']}", show_header=False, title_justify="left")
    state = s["state"]
    if state == "interrupted":
        state = "interrupted (stopped before it finished; rerun the command to resume)"
    elif state == "running":
        state = f"running ({describe_holder(s['writer'])})"
    rate = s["acceptance_rate"]
    usage = s["usage"]
    attempts = " · ".join(
        f"{n} attempt{'s' if int(n) > 1 else ''}: {count}"
        for n, count in s["attempts_of_accepted"].items()
    )
    rows = [
        ("state", state),
        ("recipe", f"{s['recipe']} (prompt version {s['prompt_version']})"),
        ("models", _models(s["models"])),
        ("stop reason", str(s["stop_reason"])),
        ("accepted", str(s["accepted"])),
        ("rejected", str(s["rejected"])),
        ("surplus", f"{s['surplus']} (stopped once the target was met; not judged)"),
        ("candidates", f"{s['candidates']} started, {len(s['unfinished'])} unfinished"),
        ("acceptance rate", "n/a" if rate is None else f"{rate:.1%} of judged items"),
        ("attempts (accepted)", attempts or "n/a"),
        ("label changes", str(s["label_changes"])),
        (
            "tokens",
            f"{s['tokens']:,} (in {usage['input_tokens']:,} · out {usage['output_tokens']:,} · "
            f"{usage['calls']:,} calls) · {_num(s['tokens_per_accepted'])} per accepted",
        ),
        (
            "cost",
            "not priced (generate --price-in / --price-out)"
            if s["cost"] is None
            else f"{s['cost']:.4f} (at the run's prices per 1k tokens)",
        ),
        (
            "time",
            f"{_num(s['wall_s'], ' s')} wall · {_num(s['seconds_per_accepted'], ' s')} per "
            f"accepted · median item {_num(s['item_seconds_median'], ' s')}",
        ),
    ]
    for key, value in rows:
        table.add_row(key, Text(value))
    out.print(table)
    if s["scores"]:
        scores = Table(
            "score", "good", "gate", "min", "median", "max", title="critic scores of accepted items"
        )
        for sc in s["scores"]:
            scores.add_row(
                sc["name"],
                sc["good"],
                sc["gate"],
                *(f"{sc[k]:g}" for k in ("min", "median", "max")),
            )
        out.print(scores)
    if s["rejection_reasons"]:
        reasons = Table("rejection reason (check)", "items")
        for reason, count in s["rejection_reasons"].items():
            reasons.add_row(reason, str(count))
        out.print(reasons)


def _short(value: Any) -> str:
    if isinstance(value, list):
        value = "; ".join(map(str, value))
    text = str(value)
    if len(text) > LONG_FIELD_CHARS:
        return text[:LONG_FIELD_CHARS] + f"… [{len(text) - LONG_FIELD_CHARS} more characters]"
    return text


def item_panel(
    rec: ItemRecord, label_of: Callable[[ItemRecord], str | None] | None = None
) -> Panel:
    """One item: its fields, its label (``label_of``: the recipe's view, e.g. a qa item's
    answerability; else the label it was asked for), scores and reasons."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for key, value in (rec.item or {}).items():
        if not isinstance(value, dict) and value not in (None, "", []):
            grid.add_row(key, Text(_short(value)))
    if rec.item is None:
        grid.add_row("item", Text("(none: the item stopped before a draft parsed)"))
    label = label_of(rec) if label_of is not None and rec.item is not None else None
    if label and "label" not in (rec.item or {}):
        grid.add_row("label", Text(label))
    if rec.task.label and rec.task.label != label and "label" not in (rec.item or {}):
        grid.add_row("asked label", Text(rec.task.label))
    scores = rec.provenance.critic_scores
    if scores:
        grid.add_row("scores", Text(", ".join(f"{k}={v:g}" for k, v in scores.items())))
    for change in rec.provenance.label_changes:
        grid.add_row("label change", Text(f"{change.old!r} → {change.new!r}: {change.reason}"))
    for reason in rec.reasons:
        grid.add_row("reason", Text(reason))
    usage = rec.provenance.usage
    title = (
        f"{rec.id} · {rec.status} · {rec.provenance.attempts} attempt(s) · "
        f"{usage.total_tokens:,} tokens"
    )
    return Panel(grid, title=Text(title), title_align="left")


def print_items(
    records: list[ItemRecord],
    status: str,
    where: list[str],
    sort: str | None,
    label_of: Callable[[ItemRecord], str | None] | None = None,
) -> None:
    """The selected items as panels, after a line saying what was selected."""
    how = f"sorted by {sort}" if sort else "random sample"
    cond = f" where {' and '.join(where)}" if where else ""
    out.print(Text(f"{len(records)} {status} item(s){cond}, {how}:"))
    for rec in records:
        out.print(item_panel(rec, label_of))


def item_json(rec: ItemRecord) -> dict[str, Any]:
    """An item for ``--json``: the record without its attempt history."""
    return rec.model_dump(mode="json", exclude={"history"})
