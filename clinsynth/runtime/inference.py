"""Model inference off the event loop: the run's worker threads and its model loading.

Reader, classifier and embedding calls take milliseconds to seconds of CPU; on the event loop
they would stall every request in flight. A run owns one :class:`InferencePool` (a thread
pool of ``Settings.inference_workers`` threads): :func:`inference_for_run` loads every model
the run uses in one of its threads before any item starts, the nodes send their model work
to it through ``Deps.off_loop``, and the pool is shut down when the run ends.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    from clinsynth.agents.deps import Deps

P = ParamSpec("P")
T = TypeVar("T")


class InferencePool:
    """Worker threads for model inference; calls keep the caller's context variables."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"inference workers must be at least 1, got {workers}")
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="clinsynth-inference")

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in a worker thread; the event loop stays free meanwhile."""
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def close(self) -> None:
        """Shut the threads down once the calls running in them end (without blocking the loop)."""
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)


def load_models(deps: Deps) -> None:
    """Load every model the run uses (the recipe's reader or classifier, the embedders) and
    what its safety checks use."""
    deps.recipe.load_models()
    deps.recipe.load_checks()
    embedders = {id(e): e for e in (deps.registry.embedder, deps.store.embedder)}
    for embedder in embedders.values():
        load = getattr(embedder, "load", None)
        if callable(load):
            load()


@asynccontextmanager
async def inference_for_run(deps: Deps) -> AsyncIterator[InferencePool]:
    """A pool of ``deps.inference_workers`` threads set as ``deps.inference`` for the block,
    with the run's models loaded in it before the block starts."""
    pool = InferencePool(deps.inference_workers)
    deps.inference = pool
    try:
        await pool.run(load_models, deps)
        yield pool
    finally:
        if deps.inference is pool:
            deps.inference = None
        await pool.close()
