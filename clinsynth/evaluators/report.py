"""A run's HTML report: acceptance funnel, rejection reasons, critic scores (table and
histograms), example items, cost and time per accepted item, the run configuration.

Pure summarising and rendering over a run directory's rows (``manifest.json``,
``started.jsonl``, ``accepted.jsonl``, ``rejected.jsonl``) and ``analysis/`` files; the page
is self-contained (figures are inline base64 PNGs drawn with matplotlib's Agg backend).
Works for any recipe: every numeric critic score stored on the items gets a histogram.
"""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from clinsynth.evaluators.report_sections import esc, html_table
from clinsynth.evaluators.scores import direction_of
from clinsynth.runtime.runfiles import iter_jsonl, read_json

FIRST_SCORES = ("lexical_overlap", "difficulty")
"""Critic scores drawn first (the QA recipe's overlap and difficulty); others follow."""


class ReportError(Exception):
    """The directory is not a run directory (or its files cannot be read)."""


class RunSummary(BaseModel):
    """The numbers of the report."""

    run_dir: str
    recipe: str | None = None
    stop_reason: str | None = None
    started: int
    accepted: int
    rejected: int
    surplus: int = 0
    """Stopped or set aside because the target was reached: neither accepted nor rejected."""
    unfinished: int
    relabelled: int
    rejection_reasons: dict[str, int] = Field(default_factory=dict)
    attempts: dict[str, dict[int, int]] = Field(
        default_factory=dict, description="status → attempts → items"
    )
    scores: dict[str, dict[str, list[float]]] = Field(
        default_factory=dict, description="critic check → status → scores"
    )
    label_changes: dict[str, int] = Field(default_factory=dict, description="method → count")


def summarize(run_dir: Path) -> RunSummary:
    """Read a run directory into a :class:`RunSummary`; a corrupt run file raises
    :class:`~clinsynth.runtime.runfiles.RunFileError` naming it and ``clinsynth repair``."""
    manifest_path = run_dir / "manifest.json"
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir} does not exist or is not a directory")
    if not manifest_path.is_file():
        raise ReportError(f"{run_dir} is not a run directory (no manifest.json)")
    manifest = read_json(manifest_path)
    recipe = manifest.get("recipe")
    if isinstance(recipe, dict):
        recipe = recipe.get("name")
    accepted = list(iter_jsonl(run_dir / "accepted.jsonl"))
    rejected: list[dict[str, Any]] = []
    surplus = list(iter_jsonl(run_dir / "surplus.jsonl"))
    for rec in iter_jsonl(run_dir / "rejected.jsonl"):  # older runs logged surplus items there
        first = (rec.get("reasons") or [""])[0]
        (surplus if str(first).startswith("surplus:") else rejected).append(rec)
    started = {row.get("id") for row in iter_jsonl(run_dir / "started.jsonl")}
    finished = {r.get("id") for r in accepted + rejected + surplus}
    reasons: Counter[str] = Counter()
    for rec in rejected:
        for reason in rec.get("reasons") or []:
            reasons[str(reason).split(":", 1)[0]] += 1
    attempts: dict[str, Counter[int]] = {"accepted": Counter(), "rejected": Counter()}
    scores: dict[str, dict[str, list[float]]] = {}
    methods: Counter[str] = Counter()
    relabelled = 0
    for status, recs in (("accepted", accepted), ("rejected", rejected)):
        for rec in recs:
            prov = rec.get("provenance") or {}
            attempts[status][int(prov.get("attempts") or len(rec.get("history") or []))] += 1
            for name, value in (prov.get("critic_scores") or {}).items():
                if isinstance(value, int | float):
                    scores.setdefault(name, {}).setdefault(status, []).append(float(value))
            changes = prov.get("label_changes") or []
            methods.update(str(c.get("method", "?")) for c in changes)
            if status == "accepted" and changes:
                relabelled += 1
    return RunSummary(
        run_dir=str(run_dir),
        recipe=str(recipe) if recipe is not None else None,
        stop_reason=manifest.get("stop_reason"),
        started=len(started | finished),
        accepted=len(accepted),
        rejected=len(rejected),
        surplus=len(surplus),
        unfinished=len(started - finished),
        relabelled=relabelled,
        rejection_reasons=dict(reasons.most_common()),
        attempts={k: dict(sorted(v.items())) for k, v in attempts.items() if v},
        scores=scores,
        label_changes=dict(methods.most_common()),
    )


# --- figures --------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(draw: Any) -> str:
    """Base64 PNG of a small figure drawn by ``draw(ax)`` (Agg backend, closed after)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 3.0))
    draw(fig.add_subplot())
    return _png(fig)


def funnel_png(summary: RunSummary) -> str:
    """Bar chart: started → accepted (of which relabelled) / rejected / surplus / unfinished."""
    labels = ["started", "accepted", "relabelled", "rejected", "surplus", "unfinished"]
    values = [
        summary.started,
        summary.accepted,
        summary.relabelled,
        summary.rejected,
        summary.surplus,
        summary.unfinished,
    ]

    def draw(ax: Any) -> None:
        bars = ax.barh(labels[::-1], values[::-1], color="#4a7ab5")
        ax.bar_label(bars, padding=2)
        ax.set_xlabel("items")
        ax.set_title("acceptance funnel")

    return _figure(draw)


def attempts_png(summary: RunSummary) -> str:
    """Grouped bars: how many attempts accepted and rejected items took."""
    top = max((n for counts in summary.attempts.values() for n in counts), default=1)
    xs = list(range(1, top + 1))

    def draw(ax: Any) -> None:
        width = 0.4
        for i, status in enumerate(("accepted", "rejected")):
            counts = summary.attempts.get(status, {})
            ax.bar(
                [x + (i - 0.5) * width for x in xs],
                [counts.get(x, 0) for x in xs],
                width,
                label=status,
            )
        ax.set_xticks(xs)
        ax.set_xlabel("attempts")
        ax.set_ylabel("items")
        ax.set_title("attempts per item")
        ax.legend()

    return _figure(draw)


def histogram_png(name: str, by_status: dict[str, list[float]]) -> str:
    """Histogram of one critic score, accepted and rejected items stacked."""
    values = [v for vs in by_status.values() for v in vs]
    lo, hi = min(values), max(values)
    if lo >= 0 and hi <= 1:
        lo, hi = 0.0, 1.0
    elif lo == hi:
        lo, hi = lo - 0.5, hi + 0.5

    def draw(ax: Any) -> None:
        statuses = [s for s in ("accepted", "rejected") if by_status.get(s)]
        ax.hist(
            [by_status[s] for s in statuses], bins=20, range=(lo, hi), stacked=True, label=statuses
        )
        ax.set_xlabel(name)
        ax.set_ylabel("items")
        good = {"lower": ", lower is better", "higher": ", higher is better"}
        ax.set_title(f"{name} (final attempt{good.get(str(direction_of(name)), '')})")
        ax.legend()

    return _figure(draw)


# --- html -----------------------------------------------------------------------------------


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{b64}">'


def _flatten(value: Any, prefix: str = "") -> list[list[Any]]:
    """Key-path / value rows of nested JSON (lists of scalars joined)."""
    if isinstance(value, dict):
        rows: list[list[Any]] = []
        for key, sub in value.items():
            rows += _flatten(sub, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return [[prefix, ", ".join(map(str, value))]]
    if isinstance(value, list):
        rows = []
        for i, sub in enumerate(value):
            rows += _flatten(sub, f"{prefix}[{i}]")
        return rows
    if isinstance(value, float):
        value = round(value, 4)
    return [[prefix or "value", value]]


def json_table(data: Any) -> str:
    """A JSON document as an HTML table: a list of objects gets one column per key; anything
    else gets key-path / value rows."""
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        columns = list(dict.fromkeys(k for r in data for k in r))
        rows = [
            [
                json.dumps(r.get(c)) if isinstance(r.get(c), dict | list) else r.get(c, "")
                for c in columns
            ]
            for r in data
        ]
        return html_table(columns, rows)
    return html_table(["key", "value"], _flatten(data))


def analysis_section(analysis_dir: Path) -> str:
    """Every ``analysis/*.png`` embedded and every ``analysis/*.json`` as a table."""
    if not analysis_dir.is_dir():
        return "<p>No analysis/ directory in this run.</p>"
    parts: list[str] = []
    for path in sorted(analysis_dir.iterdir()):
        if path.suffix.lower() == ".png":
            b64 = base64.b64encode(path.read_bytes()).decode("ascii")
            parts.append(f"<h3>{esc(path.name)}</h3>{_img(b64, path.name)}")
        elif path.suffix.lower() == ".json":
            try:
                table = json_table(json.loads(path.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                table = f"<p>could not read: {esc(exc)}</p>"
            parts.append(f"<h3>{esc(path.name)}</h3>{table}")
    return "".join(parts) or "<p>analysis/ holds no .png or .json files.</p>"


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;"
    "text-align:left;font-size:.9em}th{background:#f2f2f2}img{max-width:100%}"
    ".figs{display:flex;flex-wrap:wrap;gap:1em}.item{flex:1 1 480px;min-width:0}"
    ".item td{vertical-align:top;white-space:pre-wrap}h4{margin:.6em 0 .2em}"
)


def render_html(
    summary: RunSummary, analysis_dir: Path | None = None, sections: dict[str, str] | None = None
) -> str:
    """The whole self-contained HTML page; ``sections`` (from :func:`item_sections`) adds
    the score table, example items, cost and time, and the run configuration."""
    extra = sections or {}
    funnel_rows = [
        ["started", summary.started],
        ["accepted", summary.accepted],
        ["  of which relabelled", summary.relabelled],
        ["rejected", summary.rejected],
        ["surplus (target reached first)", summary.surplus],
        ["unfinished", summary.unfinished],
    ]
    finished = summary.accepted + summary.rejected  # surplus items were never judged
    rate = f"{summary.accepted / finished:.1%}" if finished else "n/a"
    figs = [_img(funnel_png(summary), "acceptance funnel")]
    if summary.attempts:
        figs.append(_img(attempts_png(summary), "attempts per item"))
    names = [n for n in FIRST_SCORES if n in summary.scores]
    names += sorted(n for n in summary.scores if n not in FIRST_SCORES)
    hists = "".join(_img(histogram_png(n, summary.scores[n]), n) for n in names)
    reasons = (
        html_table(
            ["check", "rejected items"], [[k, v] for k, v in summary.rejection_reasons.items()]
        )
        if summary.rejection_reasons
        else "<p>No rejected items.</p>"
    )
    changes = (
        html_table(["method", "changes"], [[k, v] for k, v in summary.label_changes.items()])
        if summary.label_changes
        else "<p>No label changes.</p>"
    )
    analysis = analysis_section(analysis_dir) if analysis_dir is not None else ""
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>clinsynth report: {esc(summary.run_dir)}</title><style>{_STYLE}</style>"
        f"</head><body><h1>Run report</h1><p>{esc(summary.run_dir)} · recipe "
        f"<b>{esc(summary.recipe)}</b> · stop reason {esc(summary.stop_reason)} · "
        f"acceptance rate {rate}</p>"
        "<h2>Acceptance funnel</h2>"
        f"{html_table(['stage', 'items'], funnel_rows)}<div class='figs'>{''.join(figs)}</div>"
        f"<h2>Rejection reasons</h2>{reasons}<h2>Label changes</h2>{changes}"
        f"<h2>Cost and time</h2>{extra.get('cost', '')}"
        f"<h2>Critic scores</h2>{extra.get('scores', '')}"
        f"<div class='figs'>{hists or '<p>No critic scores stored.</p>'}</div>"
        f"<h2>Example items</h2>{extra.get('examples', '')}"
        f"<h2>Run configuration</h2>{extra.get('config', '')}"
        f"<h2>Analysis</h2>{analysis}</body></html>"
    )


def item_sections(run_dir: Path) -> dict[str, str]:
    """The report's sections on scores, example items, cost and time, and configuration."""
    from clinsynth.evaluators import report_sections as rs

    manifest = read_json(run_dir / "manifest.json")
    rows = rs.read_rows(run_dir)
    scores_html, scores = rs.scores_section(rows)
    return {
        "scores": scores_html,
        "examples": rs.examples_section(rows, scores),
        "cost": rs.cost_section(manifest, rows),
        "config": rs.config_section(manifest),
    }


def write_report(run_dir: Path) -> Path:
    """Summarise ``run_dir`` and write ``run_dir/report.html``; returns its path."""
    summary = summarize(run_dir)
    path = run_dir / "report.html"
    page = render_html(summary, run_dir / "analysis", item_sections(run_dir))
    path.write_text(page, encoding="utf-8")
    return path
