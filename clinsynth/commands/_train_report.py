"""What ``clinsynth train`` prints and writes: the mean ± sd table with a row per baseline
under each set, the flag for a model that does not beat its baselines, the results JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clinsynth.cli_support import console

METRICS = ("accuracy", "roc_auc", "pr_auc", "f1", "precision", "recall")
QA_METRICS = ("exact_match", "f1", "reference_overlap")


def _cells(summary: dict[str, Any], metrics: tuple[str, ...]) -> list[str]:
    return [
        f"{summary[m]['mean']:.3f} ± {summary[m]['sd']:.3f}" if m in summary else "n/a"
        for m in metrics
    ]


def _table(results: dict[str, Any], metrics: tuple[str, ...] = METRICS) -> Any:
    """One row per set (flagged when it does not beat its baselines), and under it one row per
    baseline fitted on that set."""
    from rich.table import Table

    table = Table("set", "n train", *metrics, title="mean ± sd over seeds")
    for name, res in results["sets"].items():
        verdict = res.get("vs_baselines")
        flag = "" if verdict is None or verdict["beats_all"] else " (does NOT beat baselines)"
        table.add_row(name + flag, str(res["n_train"]), *_cells(res["summary"], metrics))
        for base, scores in (res.get("baselines") or {}).items():
            table.add_row(f"  {name}: {base}", "", *_cells(scores["summary"], metrics), style="dim")
    return table


def _flag_lines(results: dict[str, Any]) -> list[str]:
    """``warning:`` lines for the sets whose model does not beat a baseline."""
    return [
        f"warning: {name}: the fine-tuned model does not beat its baselines: "
        + "; ".join(res["vs_baselines"]["failures"])
        for name, res in results["sets"].items()
        if res.get("vs_baselines") and not res["vs_baselines"]["beats_all"]
    ]


def _write(path: Path, report: dict[str, Any]) -> None:
    backbone = report.get("backbone") or {}
    if backbone.get("fell_back"):
        console.print(
            f"[bold yellow]warning: backbone {backbone.get('requested')!r} unavailable offline; "
            f"FELL BACK to {backbone.get('path_or_name')} — not comparable with BioBERT[/]",
            highlight=False,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
