"""Graphs: the per-item generation graph, the batch runner and the chat agent.

Builders for host apps (imported lazily, so ``import clinsynth.graphs`` stays cheap):

- :func:`build_generation_graph` — the generation graph from settings, usable as a subgraph
  (state :class:`~clinsynth.schemas.ItemState`; start an item with :func:`item_input`);
- :func:`build_item_graph` / :func:`initial_state` — the same from a ready ``Deps`` bundle;
- :func:`build_chat_graph` / :func:`open_chat` — the tool-calling chat agent.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clinsynth.graphs.chat import ChatState, build_chat_graph, chat_model, open_chat
    from clinsynth.graphs.factory import build_deps
    from clinsynth.graphs.generation import build_item_graph, initial_state
    from clinsynth.graphs.server import build_generation_graph, item_input

_EXPORTS = {
    "ChatState": "clinsynth.graphs.chat",
    "build_chat_graph": "clinsynth.graphs.chat",
    "chat_model": "clinsynth.graphs.chat",
    "open_chat": "clinsynth.graphs.chat",
    "build_deps": "clinsynth.graphs.factory",
    "build_item_graph": "clinsynth.graphs.generation",
    "initial_state": "clinsynth.graphs.generation",
    "build_generation_graph": "clinsynth.graphs.server",
    "item_input": "clinsynth.graphs.server",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clinsynth.graphs' has no attribute {name!r}")


__all__ = [
    "ChatState",
    "build_chat_graph",
    "build_deps",
    "build_generation_graph",
    "build_item_graph",
    "chat_model",
    "initial_state",
    "item_input",
    "open_chat",
]
