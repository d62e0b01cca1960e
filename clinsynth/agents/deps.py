"""The live objects a generation graph needs, injected by the caller (never built at import)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from clinsynth.config import RunConfig
from clinsynth.recipes.base import Recipe

if TYPE_CHECKING:
    from clinsynth.llm import LLMRouter
    from clinsynth.memory.cache import ReasoningCache
    from clinsynth.memory.registry import AcceptedRegistry
    from clinsynth.memory.store import VectorStore
    from clinsynth.runtime.inference import InferencePool

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Deps:
    """Everything the nodes use: models per role, the corpus, memory and the recipe."""

    llm: LLMRouter
    store: VectorStore
    registry: AcceptedRegistry
    recipe: Recipe
    run: RunConfig
    cache: ReasoningCache | None = None
    extra: dict[str, object] = field(default_factory=dict)
    inference_workers: int = 2
    """Threads of a batch run's inference pool (``Settings.inference_workers``)."""
    inference: InferencePool | None = None
    """The running batch's inference pool (set by the runner for the run)."""

    async def off_loop(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Model work (reader, classifier, embeddings) in the run's inference pool, or in a
        worker thread where the graph runs outside a batch run (a LangGraph server)."""
        if self.inference is not None:
            return await self.inference.run(fn, *args, **kwargs)
        return await asyncio.to_thread(fn, *args, **kwargs)
