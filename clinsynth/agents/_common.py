"""Small helpers shared by the nodes: state ↔ model conversion and usage bookkeeping."""

from __future__ import annotations

from typing import Any

from clinsynth.schemas import ItemState, SourceChunk, Task, Usage


def task_of(state: ItemState) -> Task:
    return Task.model_validate(state["task"])


def chunks_of(state: ItemState) -> list[SourceChunk]:
    return [SourceChunk.model_validate(c) for c in state.get("chunks", [])]


def add_usage(state: ItemState, usage: Usage) -> dict[str, Any]:
    """The state's usage plus ``usage``, as a state update value."""
    total = Usage.model_validate(state.get("usage") or {}) + usage
    return total.model_dump()
