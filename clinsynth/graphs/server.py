"""Graph factories named in ``langgraph.json`` for ``langgraph dev`` / LangGraph server.

Importing this module builds nothing; the server calls the factory, which reads settings
from the environment (``CLINSYNTH_*``) and the run from ``configurable.run``.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from clinsynth.config import RunConfig, Settings


def generation_graph(config: RunnableConfig) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The per-item generation graph; the server supplies its own checkpointer."""
    from clinsynth.graphs.factory import build_deps
    from clinsynth.graphs.generation import build_item_graph

    run = RunConfig.model_validate((config.get("configurable") or {}).get("run") or {})
    deps, _ = build_deps(Settings(), run)
    return build_item_graph(deps)
