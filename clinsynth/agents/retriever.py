"""Retriever node: fetch the passages a task is grounded in from the vector store."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from clinsynth.agents._common import task_of
from clinsynth.agents.deps import Deps
from clinsynth.memory.store import EmptyStoreError
from clinsynth.recipes.base import RetrievalRequest
from clinsynth.schemas import ItemState, SourceChunk, Task


def make_retriever(deps: Deps) -> Callable[[ItemState], Awaitable[dict[str, Any]]]:
    """Build the retriever node."""

    def fetch(task: Task, req: RetrievalRequest) -> list[SourceChunk]:
        if req.query:
            return deps.store.query(req.query, k=req.k, where=req.where)
        if req.sample_seed is not None:
            ids = deps.store.ids(where=req.where)
            if not ids:
                raise EmptyStoreError(f"no chunks match {req.where} for task {task.id}")
            picked = random.Random(req.sample_seed).sample(ids, min(req.k, len(ids)))
            return deps.store.get(picked)
        return [deps.store.chunk_at(req.offset or 0, where=req.where)]

    async def retriever(state: ItemState) -> dict[str, Any]:
        task = task_of(state)
        req = deps.recipe.retrieval(task, deps.run)
        if req.query:
            chunks = await deps.off_loop(fetch, task, req)  # embeds the query: model work
        else:
            # A lookup by id takes well under a millisecond; a thread hop costs more than that
            # under load (the worker waits for the GIL), so it runs on the loop.
            chunks = fetch(task, req)
        return {"chunks": [c.model_dump(mode="json") for c in chunks]}

    return retriever
