"""Graphs: the per-item generation graph and the batch runner.

Builders for host apps (imported lazily, so ``import clinsynth.graphs`` stays cheap):

- :func:`build_generation_graph` — the generation graph from settings, usable as a subgraph
  (state :class:`~clinsynth.schemas.ItemState`; start an item with :func:`item_input`);
- :func:`build_item_graph` / :func:`initial_state` — the same from a ready ``Deps`` bundle.

The chat agent, which drives these graphs through the host tools, lives in
:mod:`clinsynth.apps`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clinsynth.graphs.builders import build_generation_graph, item_input
    from clinsynth.graphs.factory import build_deps
    from clinsynth.graphs.generation import build_item_graph, initial_state

_EXPORTS = {
    "build_deps": "clinsynth.graphs.factory",
    "build_item_graph": "clinsynth.graphs.generation",
    "initial_state": "clinsynth.graphs.generation",
    "build_generation_graph": "clinsynth.graphs.builders",
    "item_input": "clinsynth.graphs.builders",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clinsynth.graphs' has no attribute {name!r}")


__all__ = [
    "build_deps",
    "build_generation_graph",
    "build_item_graph",
    "initial_state",
    "item_input",
]
