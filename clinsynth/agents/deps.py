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


def run_stopping_errors() -> tuple[type[BaseException], ...]:
    """The errors that stop a whole batch run instead of rejecting one item: they say that
    every item would fail the same way.

    - ``LLMEndpointError`` and its subclasses: the endpoint is unreachable, refuses the
      credentials, keeps failing after the HTTP client's retries, or answers with something
      that is no chat completion; ``LocalModelError``: the in-process model cannot load or run.
    - ``EmptyStoreError``: the corpus (or the part a task asks for) holds no chunks.

    Not fatal: ``LLMRequestError`` (the endpoint refused one prompt; that item is rejected with
    the server's message) and any other error an item's graph raises (that item is rejected).
    Nodes get no LangGraph ``RetryPolicy``: the HTTP client already retries transient
    failures, and a node retry on top would multiply the requests sent to a failing endpoint.
    """
    from clinsynth.llm import LLMEndpointError, LocalModelError
    from clinsynth.memory.store import EmptyStoreError

    return (LLMEndpointError, LocalModelError, EmptyStoreError)


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
    fatal: tuple[type[BaseException], ...] = field(default_factory=run_stopping_errors)
    """Errors that abort a batch run rather than reject the item (``run_stopping_errors``)."""

    async def off_loop(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Model work (reader, classifier, embeddings) in the run's inference pool, or in a
        worker thread where the graph runs outside a batch run (a LangGraph server)."""
        if self.inference is not None:
            return await self.inference.run(fn, *args, **kwargs)
        return await asyncio.to_thread(fn, *args, **kwargs)
