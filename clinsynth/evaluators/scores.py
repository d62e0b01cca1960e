"""What each critic score means: which direction is good, what the gate was, and its spread.

Shared by ``inspect``, the report and the dataset card, so that every place that shows a
score says the same thing about it. Gates are read from the critic reports stored on the
records (each check's ``threshold`` and ``on_fail``), not assumed.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel

Direction = Literal["lower", "higher", "band"]

DIRECTIONS: dict[str, tuple[Direction, str]] = {
    "output_format": ("higher", "0 = the reply did not parse into the item's schema"),
    "question_form": ("higher", "1 = a question of the allowed length ending with '?'"),
    "lexical_overlap": ("lower", "share of the question's content stems found in the passage"),
    "answer_validity": ("higher", "1 = the answer is an exact quote of the passage"),
    "difficulty": (
        "band",
        "higher = harder (with a reader: question words missing from the sentence of its answer;"
        " else the lexical proxy, not graded); gate: the asked band",
    ),
    "privacy": ("lower", "PHI findings in the generated fields"),
    "injection": ("lower", "instruction or system-prompt findings in the generated fields"),
    "near_duplicate": ("lower", "cosine similarity to the nearest accepted item"),
    "schema_completeness": ("higher", "share of required trial fields filled"),
    "intervention_named": ("higher", "1 = the target intervention is named"),
    "memorisation": ("lower", "largest share of n-grams copied from one real trial"),
    "copied_ids": ("lower", "real trial ids repeated in the text"),
    "realism": ("band", "embedding distance to real trials: too low is a copy, too high unreal"),
    "length": ("band", "words; gate: the recipe's min and max"),
    "format": ("lower", "format problems (markup, preamble, placeholders)"),
    "label_leak": ("lower", "times the text names its own class"),
    "copied_from_example": ("lower", "longest run of words copied from a few-shot example"),
}
"""Check name → (which direction is good, what the score measures)."""

FAILS_AT_THRESHOLD = frozenset({"near_duplicate"})
"""Lower-is-better checks that fail at the threshold itself (the others pass at it)."""

GOOD = {"lower": "lower is better", "higher": "higher is better", "band": "inside the band"}


class ScoreInfo(BaseModel):
    """One critic score over a set of records."""

    name: str
    direction: Direction | None
    good: str
    meaning: str
    gate: str
    """The thresholds the critic applied, and what a failure led to (e.g. ``> 0.5 → revise``)."""
    n: int
    min: float | None = None
    median: float | None = None
    mean: float | None = None
    max: float | None = None


def direction_of(name: str) -> Direction | None:
    """Which direction of score ``name`` is good (None: not known for this check)."""
    entry = DIRECTIONS.get(name)
    return entry[0] if entry else None


def better(name: str, a: float, b: float) -> bool:
    """Whether score ``a`` is better than ``b`` for check ``name`` (band: higher)."""
    return a < b if direction_of(name) == "lower" else a > b


def _checks(records: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Every check of every attempt's critic report on ``records`` (JSON rows)."""
    for rec in records:
        for attempt in rec.get("history") or []:
            report = (attempt or {}).get("report") or {}
            yield from report.get("checks") or []


def gates(records: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Check name → how it was gated in this run, read from the stored critic reports."""
    seen: dict[str, dict[str, Any]] = {}
    for check in _checks(records):
        name = str(check.get("name"))
        entry = seen.setdefault(name, {"thresholds": set(), "on_fail": set(), "ungated": False})
        if check.get("threshold") is not None:
            entry["thresholds"].add(float(check["threshold"]))
        entry["on_fail"].add(str(check.get("on_fail") or "revise"))
        if str(check.get("reason") or "").startswith("measured, not gated"):
            entry["ungated"] = True
    out: dict[str, str] = {}
    for name, entry in seen.items():
        if entry["ungated"]:
            out[name] = "measured, not gated"
            continue
        limits = sorted(entry["thresholds"])
        direction = direction_of(name)
        if not limits:
            text = "no threshold"
        elif direction == "lower":
            at = "at or above" if name in FAILS_AT_THRESHOLD else "above"
            text = f"fails {at} {_num(limits[-1])}"
        elif direction == "higher":
            text = f"fails below {_num(limits[0])}"
        elif direction == "band" and len(limits) > 1:
            text = f"fails outside {_num(limits[0])}–{_num(limits[-1])}"
        else:
            text = "threshold " + ", ".join(_num(t) for t in limits)
        out[name] = f"{text} → {'/'.join(sorted(entry['on_fail']))}"
    return out


def _num(value: float) -> str:
    return f"{value:g}"


def score_table(
    records: list[dict[str, Any]], gate_records: list[dict[str, Any]] | None = None
) -> list[ScoreInfo]:
    """Each critic score stored on ``records`` (final attempt's scores), with its direction,
    gate (read from ``gate_records``, default ``records``) and min / median / mean / max."""
    values: dict[str, list[float]] = {}
    for rec in records:
        for name, value in ((rec.get("provenance") or {}).get("critic_scores") or {}).items():
            if isinstance(value, int | float):
                values.setdefault(name, []).append(float(value))
    gated = gates(gate_records if gate_records is not None else records)
    table = []
    for name, vs in values.items():
        direction, meaning = DIRECTIONS.get(name, (None, ""))
        table.append(
            ScoreInfo(
                name=name,
                direction=direction,
                good=GOOD[direction] if direction else "not stated for this check",
                meaning=meaning,
                gate=gated.get(name, "not recorded"),
                n=len(vs),
                min=round(min(vs), 4),
                median=round(statistics.median(vs), 4),
                mean=round(statistics.fmean(vs), 4),
                max=round(max(vs), 4),
            )
        )
    return table
