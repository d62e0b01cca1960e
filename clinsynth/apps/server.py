"""The factories named in ``langgraph.json`` for ``langgraph dev`` / the LangGraph server.

Importing this module builds nothing and touches no network. The factories read settings
from the environment (``CLINSYNTH_*``) and, from ``configurable``, the run (``run``) and the
chat's data directory (``data_dir``); the server supplies its own checkpointer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from clinsynth.config import Settings
from clinsynth.graphs.builders import build_generation_graph


def generation_graph(config: RunnableConfig) -> CompiledStateGraph[Any, Any, Any, Any]:
    """``langgraph.json`` factory: the per-item generation graph for ``configurable.run``."""
    run = (config.get("configurable") or {}).get("run") or {}
    return build_generation_graph(Settings(), run)


def chat_graph(config: RunnableConfig) -> CompiledStateGraph[Any, Any, Any, Any]:
    """``langgraph.json`` factory: the chat agent (threads are kept by the server)."""
    from clinsynth.apps.chat import build_chat_graph, chat_model
    from clinsynth.tools.toolkit import DEFAULT_DATA_DIR, ClinsynthToolkit

    data_dir = (config.get("configurable") or {}).get("data_dir") or DEFAULT_DATA_DIR
    settings = Settings()
    toolkit = ClinsynthToolkit(settings, data_dir=Path(data_dir))
    return build_chat_graph(chat_model(settings), toolkit)
