"""Label correction of the termination type the model reads from a free-text stop reason.

The completion outcome comes from the registry status (never from a model). The termination
type is the model's reading of ``why_stop``; keyword rules read the same text, and where they
are sure and disagree, the label corrector relabels (or rejects) with an audit entry.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from clinsynth.schemas import LabelChange

_RULES: tuple[tuple[str, str], ...] = (
    ("poor_enrollment", r"accru|enrol|recruit|participants? (were|was) (not )?(available|found)"),
    ("safety", r"safety|adverse|toxicit|side effect|death"),
    ("efficacy", r"futil|efficacy|ineffective|interim analysis|benefit"),
    ("business", r"fund|sponsor|business|strategic|financ|commercial|company|drug supply"),
)


def termination_type_of(why_stop: str) -> str | None:
    """The termination type keyword rules find in ``why_stop``; None when no rule or more
    than one rule matches (the rules are not sure)."""
    text = why_stop.lower()
    hits = [name for name, pattern in _RULES if re.search(pattern, text)]
    return hits[0] if len(hits) == 1 else None


def check_termination(
    item: dict[str, Any],
    why_stop: str,
    *,
    on_disagreement: Literal["relabel", "reject"],
) -> tuple[dict[str, Any] | None, LabelChange | None, str | None]:
    """Compare the model's termination type with the rules; returns the (possibly relabelled)
    item or None (rejected), the change made, and why."""
    labels = dict(item.get("labels") or {})
    given = labels.get("terminate_type")
    if labels.get("outcome") != "terminated":
        return item, None, None
    rule = termination_type_of(why_stop) if why_stop else None
    if rule is None and given == "none":
        rule = "other"  # a terminated trial has some type; the rules cannot tell which
    check = {"method": "why_stop-rules", "model_type": given, "rule_type": rule}
    if rule is None or rule == given:
        decision = "kept" if rule is None else "agreed"
        return dict(item, label_check={**check, "decision": decision}), None, None
    why = (
        f"the stop reason '{why_stop[:120]}' reads as '{rule}' by the keyword rules, not '{given}'"
    )
    if on_disagreement == "reject":
        change = LabelChange(
            field="labels.terminate_type",
            old=given,
            new=None,
            method="why_stop-rules-reject",
            reason=why,
        )
        return None, change, why
    change = LabelChange(
        field="labels.terminate_type", old=given, new=rule, method="why_stop-rules", reason=why
    )
    labels["terminate_type"] = rule
    new = dict(item, labels=labels, label_check={**check, "decision": "relabelled"})
    return new, change, None
