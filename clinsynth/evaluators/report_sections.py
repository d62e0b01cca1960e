"""The report's sections about items and costs: what each critic score means (which direction
is good, the gate), example items (best and worst by each score, rejected ones with their
reasons), tokens / cost / time per accepted item, and the run's configuration.

Works on the JSON rows of the run files (passages put back), so a run of any recipe, or rows
written by an older version, still renders.
"""

from __future__ import annotations

import html
import json
import statistics
from pathlib import Path
from typing import Any

from clinsynth.evaluators.scores import ScoreInfo, direction_of, score_table
from clinsynth.runtime.passages import read_passages, restore_row
from clinsynth.runtime.runfiles import iter_jsonl

FIELD_CHARS = 400
REJECTED_EXAMPLES = 4


def esc(value: Any) -> str:
    return html.escape(str(value))


def html_table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def read_rows(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Accepted, rejected and surplus rows (older runs logged surplus items as rejected),
    passages restored."""
    passages = read_passages(run_dir / "accepted.jsonl")
    rows: dict[str, list[dict[str, Any]]] = {"accepted": [], "rejected": [], "surplus": []}
    for name in rows:
        for row in iter_jsonl(run_dir / f"{name}.jsonl"):
            first = str((row.get("reasons") or [""])[0])
            status = "surplus" if name == "rejected" and first.startswith("surplus:") else name
            rows[status].append(restore_row(row, passages))
    return rows


def _scores(row: dict[str, Any]) -> dict[str, float]:
    scores = (row.get("provenance") or {}).get("critic_scores") or {}
    return {k: float(v) for k, v in scores.items() if isinstance(v, int | float)}


def scores_section(rows: dict[str, list[dict[str, Any]]]) -> tuple[str, list[ScoreInfo]]:
    """A table of every score: what it measures, which direction is good, the gate this run
    applied, and its spread over accepted items."""
    table = score_table(rows["accepted"], rows["accepted"] + rows["rejected"])
    if not table:
        return "<p>No critic scores stored on accepted items.</p>", table
    body = html_table(
        ["score", "good", "measures", "gate (this run)", "n", "min", "median", "max"],
        [[s.name, s.good, s.meaning, s.gate, s.n, s.min, s.median, s.max] for s in table],
    )
    return body, table


def _item_html(row: dict[str, Any], note: str) -> str:
    """One item as a small card: its fields (long ones cut), scores and reasons."""
    item = row.get("item") or {}
    fields = []
    for key, value in item.items():
        if isinstance(value, dict) or value in (None, "", []):
            continue
        text = "; ".join(map(str, value)) if isinstance(value, list) else str(value)
        if len(text) > FIELD_CHARS:
            text = text[:FIELD_CHARS] + f"… [{len(text) - FIELD_CHARS} more characters]"
        fields.append([key, text])
    scores = ", ".join(f"{k}={v:g}" for k, v in _scores(row).items())
    if scores:
        fields.append(["scores", scores])
    fields += [["reason", r] for r in row.get("reasons") or []]
    if not item:
        fields.insert(0, ["item", "(none: no draft parsed)"])
    title = f"{row.get('id')} · {row.get('status')} · {note}"
    return f"<div class='item'><h4>{esc(title)}</h4>{html_table(['field', 'value'], fields)}</div>"


def examples_section(rows: dict[str, list[dict[str, Any]]], scores: list[ScoreInfo]) -> str:
    """Best and worst accepted item by each score that varies, and rejected items with
    their reasons."""
    parts: list[str] = []
    accepted = rows["accepted"]
    for info in scores:
        have = [r for r in accepted if info.name in _scores(r)]
        values = {_scores(r)[info.name] for r in have}
        if len(values) < 2:
            continue
        ordered = sorted(have, key=lambda r: (_scores(r)[info.name], str(r.get("id"))))
        low, high = ordered[0], ordered[-1]
        best, worst = (low, high) if direction_of(info.name) == "lower" else (high, low)
        if direction_of(info.name) in ("band", None):
            labels = (f"highest {info.name}", f"lowest {info.name}")
        else:
            labels = (f"best {info.name}", f"worst {info.name}")
        parts.append(
            f"<h3>{esc(info.name)} ({esc(info.good)})</h3><div class='figs'>"
            f"{_item_html(best, f'{labels[0]}: {_scores(best)[info.name]:g}')}"
            f"{_item_html(worst, f'{labels[1]}: {_scores(worst)[info.name]:g}')}</div>"
        )
    if not parts and accepted:
        parts.append("<p>No score varies among accepted items; one accepted item:</p>")
        parts.append(_item_html(accepted[0], "accepted"))
    rejected = rows["rejected"][:REJECTED_EXAMPLES]
    if rejected:
        parts.append(f"<h3>Rejected items ({len(rows['rejected'])} in all; first shown)</h3>")
        parts += [_item_html(r, f"{len(r.get('reasons') or [])} reason(s)") for r in rejected]
    else:
        parts.append("<p>No rejected items.</p>")
    return "".join(parts) or "<p>No items.</p>"


def cost_section(manifest: dict[str, Any], rows: dict[str, list[dict[str, Any]]]) -> str:
    """Tokens, cost and time in all and per accepted item."""
    everything = rows["accepted"] + rows["rejected"] + rows.get("surplus", [])
    usage = [(r.get("provenance") or {}).get("usage") or {} for r in everything]
    tin = sum(int(u.get("input_tokens") or 0) for u in usage)
    tout = sum(int(u.get("output_tokens") or 0) for u in usage)
    calls = sum(int(u.get("calls") or 0) for u in usage)
    n = len(rows["accepted"])
    run = manifest.get("run") or {}
    price_in, price_out = run.get("price_per_1k_input") or 0, run.get("price_per_1k_output") or 0
    cost = (tin * price_in + tout * price_out) / 1000 if (price_in or price_out) else None
    wall = (manifest.get("timings") or {}).get("wall_s")
    durations = [
        float(d)
        for r in rows["accepted"]
        if isinstance(d := (r.get("provenance") or {}).get("duration_s"), int | float)
    ]

    def per(value: float | None, digits: int = 1) -> str:
        return "n/a" if value is None or not n else f"{value / n:,.{digits}f}"

    table = [
        ["tokens (input / output)", f"{tin + tout:,} ({tin:,} / {tout:,})", per(tin + tout)],
        ["LLM calls", f"{calls:,}", per(calls, 2)],
        [
            "cost",
            "not priced (--price-in / --price-out)" if cost is None else f"{cost:.4f}",
            per(cost, 5),
        ],
        ["wall time (s)", "n/a" if wall is None else f"{wall:,.1f}", per(wall, 2)],
        [
            "item time, median (s)",
            f"{statistics.median(durations):.2f}" if durations else "n/a",
            "",
        ],
    ]
    note = (
        "<p>Tokens and calls count every item (rejected and surplus ones too), so the "
        "per-accepted figures are what one accepted item cost.</p>"
    )
    return html_table(["", "whole run", "per accepted item"], table) + note


def config_section(manifest: dict[str, Any]) -> str:
    """The run configuration, models, prompt version and package versions."""
    recipe = manifest.get("recipe") or {}
    rows: list[list[Any]] = []
    if isinstance(recipe, dict):
        rows += [["recipe", recipe.get("name")], ["prompt version", recipe.get("prompt_version")]]
    rows += [[f"model ({role})", name] for role, name in (manifest.get("models") or {}).items()]
    for key, value in (manifest.get("run") or {}).items():
        if isinstance(value, dict | list):
            value = json.dumps(value) if value else "—"
        rows.append([key, "—" if value is None else value])
    rows += [[f"version {k}", v] for k, v in (manifest.get("versions") or {}).items()]
    return html_table(["setting", "value"], rows) if rows else "<p>No configuration recorded.</p>"
