"""Critic node: measure the candidate with pure evaluators and return a report, never an edit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from clinsynth.agents._common import chunks_of, task_of
from clinsynth.agents.deps import Deps
from clinsynth.evaluators.similarity import near_duplicate_check
from clinsynth.schemas import Attempt, CheckResult, CriticReport, ItemState


def malformed_report(error: str | None) -> CriticReport:
    """The report for an attempt whose output could not be parsed into the item schema."""
    check = CheckResult(
        name="output_format",
        score=0.0,
        passed=False,
        reason=f"the output did not match the schema ({error or 'no output'}); return valid JSON",
        on_fail="revise",
    )
    return CriticReport.from_checks([check])


def make_critic(deps: Deps) -> Callable[[ItemState], Awaitable[dict[str, Any]]]:
    """Build the critic node: recipe checks + privacy and injection over every generated field +
    near-duplicate against accepted items."""
    recipe = deps.recipe
    threshold = recipe.options.near_duplicate_threshold

    def judge(state: ItemState) -> CriticReport:
        item = state.get("candidate")
        if item is None:
            last = Attempt.model_validate(state["attempts"][-1])
            return malformed_report(last.error)
        checks = recipe.checks(task_of(state), item, chunks_of(state))
        checks.extend(recipe.safety_checks(item))
        text = recipe.text_for_similarity(item)
        checks.append(near_duplicate_check(deps.registry.nearest(text), threshold=threshold))
        return CriticReport.from_checks(checks)

    async def critic(state: ItemState) -> dict[str, Any]:
        report = await deps.off_loop(judge, state)  # reader, embedding: model work
        attempts = list(state["attempts"])
        attempts[-1] = dict(attempts[-1], report=report.model_dump(mode="json"))
        return {"report": report.model_dump(mode="json"), "attempts": attempts}

    return critic
