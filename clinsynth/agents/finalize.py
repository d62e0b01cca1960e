"""Terminal nodes: accept (with a last near-duplicate check at commit) and reject."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from clinsynth.agents._common import task_of
from clinsynth.agents.deps import Deps
from clinsynth.evaluators.similarity import near_duplicate_check
from clinsynth.schemas import CriticReport, ItemState


def make_accept(deps: Deps) -> Callable[[ItemState], Awaitable[dict[str, Any]]]:
    """Build the accept node. Items in flight at the same time cannot see each other in the
    critic, so the registry is checked again here, where adding is atomic."""
    recipe = deps.recipe
    threshold = recipe.options.near_duplicate_threshold

    async def accept(state: ItemState) -> dict[str, Any]:
        item = state["candidate"]
        assert item is not None, "accept reached without a candidate"
        text = recipe.text_for_similarity(item)
        # The critic embedded this text moments ago: usually a cache hit, no thread needed.
        vector = deps.registry.cached_embedding(text)
        if vector is None:
            vector = await deps.off_loop(deps.registry.embed_one, text)
        task_id = task_of(state).id
        check = near_duplicate_check(deps.registry.nearest_vector(vector), threshold=threshold)
        if not check.passed and task_id not in deps.registry:
            return {"status": "rejected", "reasons": [f"near_duplicate at commit: {check.reason}"]}
        deps.registry.add_vector(task_id, vector)
        return {"status": "accepted", "reasons": []}

    return accept


def make_reject(deps: Deps) -> Callable[[ItemState], Awaitable[dict[str, Any]]]:
    """Build the reject node: keep the critic's reasons and say why the loop stopped."""

    async def reject(state: ItemState) -> dict[str, Any]:
        if state.get("status") == "rejected":
            return {}
        report = CriticReport.model_validate(state["report"]) if state.get("report") else None
        reasons = list(report.reasons) if report else []
        if report is not None and report.verdict == "revise":
            reasons.append(f"gave up after {len(state.get('attempts') or [])} attempts")
        return {"status": "rejected", "reasons": reasons or ["rejected by critic"]}

    return reject
