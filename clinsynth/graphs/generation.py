"""The generation graph: retriever → reasoner → generator → critic → label_corrector → accept.

The critic sends a candidate back to the generator with its reasons (revise) until
``max_attempts``; then, or on a reject verdict, the item ends in ``reject``.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from clinsynth.agents.critic import make_critic
from clinsynth.agents.deps import Deps
from clinsynth.agents.finalize import make_accept, make_reject
from clinsynth.agents.generator import make_generator
from clinsynth.agents.label_corrector import make_label_corrector
from clinsynth.agents.reasoner import make_reasoner
from clinsynth.agents.retriever import make_retriever
from clinsynth.graphs.routing import route_after_critic, route_after_label_corrector
from clinsynth.schemas import ItemState, Task


def build_item_graph(
    deps: Deps, checkpointer: BaseCheckpointSaver[Any] | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the per-item graph; ``checkpointer`` makes every step resumable."""
    g: StateGraph[Any] = StateGraph(ItemState)
    nodes: dict[str, Any] = {
        "retriever": make_retriever(deps),
        "reasoner": make_reasoner(deps),
        "generator": make_generator(deps),
        "critic": make_critic(deps),
        "label_corrector": make_label_corrector(deps),
        "accept": make_accept(deps),
        "reject": make_reject(deps),
    }
    for name, node in nodes.items():
        g.add_node(name, node)
    g.add_edge(START, "retriever")
    g.add_edge("retriever", "reasoner")
    g.add_edge("reasoner", "generator")
    g.add_edge("generator", "critic")
    g.add_conditional_edges("critic", route_after_critic)
    g.add_conditional_edges("label_corrector", route_after_label_corrector)
    g.add_edge("accept", END)
    g.add_edge("reject", END)
    return g.compile(checkpointer=checkpointer, name="clinsynth-item")


def initial_state(task: Task, max_attempts: int, started_at: float) -> ItemState:
    """The input state of one item."""
    return ItemState(
        task=task.model_dump(mode="json"),
        max_attempts=max_attempts,
        attempts=[],
        label_changes=[],
        usage={},
        status=None,
        reasons=[],
        started_at=started_at,
    )


def recursion_limit(max_attempts: int) -> int:
    """Enough LangGraph steps for every attempt plus the fixed nodes."""
    return 10 + 2 * max_attempts
