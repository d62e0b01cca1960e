"""Generator node: ask for one item, with the critic's reasons when this is a revision.

When the recipe has a refinement step (e.g. answer distillation against the document), a
parsed draft is refined by a second structured call before the critic sees it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from clinsynth.agents._common import add_usage, chunks_of, task_of
from clinsynth.agents.deps import Deps
from clinsynth.schemas import Attempt, CriticReport, ItemState


def feedback_of(state: ItemState) -> list[str]:
    """The reasons the critic gave for the previous attempt (empty on the first)."""
    report = state.get("report")
    return list(CriticReport.model_validate(report).reasons) if report else []


def make_generator(deps: Deps) -> Callable[[ItemState], Awaitable[dict[str, Any]]]:
    """Build the generator node. Malformed output is not an error: the attempt keeps the raw
    text and the parse error, and the critic sends it back like any other flaw. The same holds
    for the refinement call; its failed attempt also keeps the unrefined draft as ``item``."""
    recipe = deps.recipe
    temperature = (
        deps.run.temperature if deps.run.temperature is not None else recipe.default_temperature
    )

    async def generator(state: ItemState) -> dict[str, Any]:
        task, chunks = task_of(state), chunks_of(state)
        reasoning = state.get("reasoning")
        if reasoning and "error" in reasoning:
            reasoning = None
        messages = recipe.generator_messages(task, chunks, reasoning, feedback_of(state))
        result = await deps.llm.for_role("generator").ainvoke(
            messages, recipe.item_model, temperature=temperature
        )
        usage = result.usage
        attempts = list(state.get("attempts") or [])
        number = len(attempts) + 1
        candidate: dict[str, Any] | None = None
        if result.parsed is None:
            attempt = Attempt(number=number, raw_output=result.raw, error=result.error)
        else:
            candidate = recipe.finalize(task, result.parsed, chunks)
            attempt = Attempt(number=number, item=candidate)
            refine = recipe.refine_messages(task, chunks, candidate)
            if refine is not None and recipe.refine_model is not None:
                refined = await deps.llm.for_role(recipe.refine_role).ainvoke(
                    refine, recipe.refine_model, temperature=recipe.refine_temperature
                )
                usage = usage + refined.usage
                if refined.parsed is None:
                    error = f"{recipe.refine_role} step: {refined.error or 'no output'}"
                    attempt = Attempt(
                        number=number, item=candidate, raw_output=refined.raw, error=error
                    )
                    candidate = None
                else:
                    candidate = recipe.apply_refinement(task, chunks, candidate, refined.parsed)
                    attempt = Attempt(number=number, item=candidate)
        attempts.append(attempt.model_dump(mode="json"))
        return {
            "candidate": candidate,
            "attempts": attempts,
            "report": None,
            "usage": add_usage(state, usage),
        }

    return generator
