"""Form checks of a generated trial: every field filled, and the requested intervention named."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clinsynth.evaluators.text import tokens
from clinsynth.schemas import CheckResult

REQUIRED_FIELDS = (
    "title",
    "phase",
    "conditions",
    "interventions",
    "eligibility_criteria",
    "outcome_measures",
    "summary",
)


def _filled(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple):
        return any(isinstance(v, str) and v.strip() for v in value)
    return value is not None


def completeness_check(
    item: Mapping[str, Any],
    fields: Sequence[str] = REQUIRED_FIELDS,
    *,
    need_criteria_blocks: bool = True,
) -> CheckResult:
    """Pass when every field in ``fields`` is non-empty and, if asked, the eligibility text has
    both an inclusion and an exclusion block. Score: share of requirements met."""
    missing = [f for f in fields if not _filled(item.get(f))]
    problems = [f"'{f}' is empty" for f in missing]
    total = len(fields)
    if need_criteria_blocks:
        total += 2
        criteria = str(item.get("eligibility_criteria") or "").lower()
        for block in ("inclusion", "exclusion"):
            if block not in criteria:
                problems.append(f"the eligibility criteria have no {block} block")
    score = (total - len(problems)) / total if total else 1.0
    passed = not problems
    return CheckResult(
        name="schema_completeness",
        score=score,
        passed=passed,
        reason="every field is filled" if passed else "; ".join(problems),
        threshold=1.0,
        on_fail="revise",
        details={"missing": missing},
    )


def names_intervention(requested: str, named: Sequence[str]) -> bool:
    """True when some name in ``named`` contains every word of ``requested`` (case-blind)."""
    want = set(tokens(requested))
    return bool(want) and any(want <= set(tokens(name)) for name in named)


def intervention_check(requested: str, named: Sequence[str]) -> CheckResult:
    """Pass when the trial's interventions include the requested one."""
    passed = names_intervention(requested, named)
    listed = ", ".join(named) or "none"
    return CheckResult(
        name="intervention_named",
        score=1.0 if passed else 0.0,
        passed=passed,
        reason=(
            f"the interventions ({listed}) include '{requested}'"
            if passed
            else f"the trial must test '{requested}', but its interventions are: {listed}"
        ),
        threshold=1.0,
        on_fail="revise",
        details={"requested": requested},
    )
