"""Graph builders for host apps: the per-item generation graph from settings, and its input.

Importing this module builds nothing and touches no network.
"""

from __future__ import annotations

import random
import time
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from clinsynth.config import RunConfig, Settings
from clinsynth.schemas import ItemState


def build_generation_graph(
    settings: Settings | None = None,
    run: RunConfig | dict[str, Any] | None = None,
    **deps_options: Any,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The per-item generation graph (retriever → … → accept/reject) built from settings.

    Add it to another LangGraph app as a node (a subgraph over :class:`ItemState`) or invoke
    it directly with :func:`item_input`. ``deps_options`` go to ``build_deps`` (``endpoints``,
    ``store_path``, ``embedder``, ``recipe`` …). Compiled without a checkpointer: as a
    subgraph it uses its parent's.
    """
    from clinsynth.graphs.factory import build_deps
    from clinsynth.graphs.generation import build_item_graph

    run_cfg = run if isinstance(run, RunConfig) else RunConfig.model_validate(run or {})
    deps, _ = build_deps(settings or Settings(), run_cfg, **deps_options)
    return build_item_graph(deps)


def item_input(run: RunConfig | dict[str, Any], index: int) -> ItemState:
    """The input state of item ``index`` of ``run`` (the same task the batch runner makes)."""
    from clinsynth.graphs.generation import initial_state
    from clinsynth.recipes import get_recipe

    cfg = run if isinstance(run, RunConfig) else RunConfig.model_validate(run)
    recipe = get_recipe(cfg.recipe, cfg.recipe_options)
    task = recipe.make_task(index, cfg, random.Random(f"{cfg.seed}:{index}"))
    return initial_state(task, cfg.max_attempts, time.time())
