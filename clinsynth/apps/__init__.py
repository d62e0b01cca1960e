"""Apps over the tools: the chat agent, the MCP server and the LangGraph server factories.

This is the top layer: it imports ``tools`` and ``graphs``, nothing below imports it. The
chat agent's builders are imported lazily, so ``import clinsynth.apps`` stays cheap:

- :func:`build_chat_graph` / :func:`open_chat` — the tool-calling chat agent
  (:class:`ChatState`, its model from :func:`chat_model`);
- ``clinsynth.apps.mcp_server.build_server`` — the MCP server over the host tools;
- ``clinsynth.apps.server`` — the graphs named in ``langgraph.json``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clinsynth.apps.chat import build_chat_graph, chat_model, open_chat
    from clinsynth.apps.chat_session import ChatState

_EXPORTS = {
    "ChatState": "clinsynth.apps.chat_session",
    "build_chat_graph": "clinsynth.apps.chat",
    "chat_model": "clinsynth.apps.chat",
    "open_chat": "clinsynth.apps.chat",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clinsynth.apps' has no attribute {name!r}")


__all__ = ["ChatState", "build_chat_graph", "chat_model", "open_chat"]
