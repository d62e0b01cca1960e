"""Reasoner node: the recipe's reasoning step (e.g. a schema summary), cached when it allows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from clinsynth.agents._common import add_usage, chunks_of, task_of
from clinsynth.agents.deps import Deps
from clinsynth.schemas import ItemState


def make_reasoner(deps: Deps) -> Callable[[ItemState], Awaitable[dict[str, Any]]]:
    """Build the reasoner node. A failed reasoning step leaves ``reasoning`` empty; the
    generator still runs, and the failure is kept in ``reasoning['error']``."""
    recipe = deps.recipe

    async def reasoner(state: ItemState) -> dict[str, Any]:
        task, chunks = task_of(state), chunks_of(state)
        messages = recipe.reasoner_messages(task, chunks)
        if messages is None or recipe.reasoning_model is None:
            return {"reasoning": None}
        key = recipe.reasoning_cache_key(task, chunks)
        if key is not None and deps.cache is not None:
            cached = deps.cache.get(key)
            if cached is not None:
                return {"reasoning": cached}
        result = await deps.llm.for_role("reasoner").ainvoke(messages, recipe.reasoning_model)
        update: dict[str, Any] = {"usage": add_usage(state, result.usage)}
        if result.parsed is None:
            update["reasoning"] = {"error": result.error or "no reasoning returned"}
            return update
        reasoning = result.parsed.model_dump(mode="json")
        if key is not None and deps.cache is not None:
            deps.cache.put(key, reasoning)
        update["reasoning"] = reasoning
        return update

    return reasoner
