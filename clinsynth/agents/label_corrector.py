"""Label-corrector node: apply the critic's relabel request or the recipe's label check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from clinsynth.agents._common import task_of
from clinsynth.agents.deps import Deps
from clinsynth.schemas import CriticReport, ItemState


def make_label_corrector(deps: Deps) -> Callable[[ItemState], Awaitable[dict[str, Any]]]:
    """Build the label-corrector node; every change is recorded on the item."""
    recipe = deps.recipe

    async def label_corrector(state: ItemState) -> dict[str, Any]:
        task, item = task_of(state), state["candidate"]
        assert item is not None, "label_corrector reached without a candidate"
        report = CriticReport.model_validate(state["report"])
        if report.verdict == "relabel":
            outcome = await deps.off_loop(recipe.relabel, task, item, report)
        else:  # a classifier may score the item: model work
            outcome = await deps.off_loop(recipe.correct_label, task, item)
        changes = list(state.get("label_changes") or [])
        if outcome.change is not None:
            changes.append(outcome.change.model_dump(mode="json"))
        if outcome.item is None:
            reason = f"label_corrector: {outcome.reason or 'label could not be corrected'}"
            return {"status": "rejected", "reasons": [reason], "label_changes": changes}
        return {"candidate": outcome.item, "label_changes": changes}

    return label_corrector
