"""Embed clinsynth in your own LangGraph app: its tools in your agent, its graph as a subgraph.

Needs a corpus in the store (``clinsynth ingest``) and an OpenAI-compatible endpoint with
tool calling (``CLINSYNTH_BASE_URL``, ``CLINSYNTH_API_KEY``, ``CLINSYNTH_MODEL``):

    python examples/host_app.py --topic "anticoagulation in atrial fibrillation"
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from clinsynth.apps import chat_model
from clinsynth.config import Settings
from clinsynth.graphs import build_generation_graph, item_input
from clinsynth.schemas import ItemState
from clinsynth.tools import ClinsynthToolkit, as_tools


class HostState(ItemState, total=False):
    """The host's own state: the item graph's keys plus whatever the host adds."""

    summary: str


def summarize(state: HostState) -> dict[str, Any]:
    """A host node that runs after the clinsynth subgraph."""
    item = state.get("candidate") or {}
    scores = {
        c["name"]: round(c["score"], 2) for c in (state.get("report") or {}).get("checks", [])
    }
    return {"summary": f"{state.get('status')}: {item.get('question')} {scores}"}


async def subgraph_demo(settings: Settings, topic: str) -> str:
    """The generation graph as a node of a host graph: one item from task to verdict."""
    run = {"topic": topic, "difficulty": "hard", "n": 1}
    host = StateGraph(HostState)
    host.add_node("clinsynth", build_generation_graph(settings, run))
    host.add_node("summarize", summarize)
    host.add_edge(START, "clinsynth")
    host.add_edge("clinsynth", "summarize")
    host.add_edge("summarize", END)
    final = await host.compile().ainvoke(HostState(**item_input(run, 0)), {"recursion_limit": 50})
    return str(final["summary"])


async def agent_demo(settings: Settings, topic: str, n: int) -> str:
    """A host agent whose model calls clinsynth's LangChain tools."""
    toolkit = ClinsynthToolkit(settings, data_dir=".clinsynth")
    tools = as_tools(toolkit, include=["search_corpus", "generate_items", "critique_item"])
    model = chat_model(settings).bind_tools(tools)

    async def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    ask = f"give me {n} hard questions about {topic}"
    final = await graph.compile().ainvoke({"messages": [HumanMessage(ask)]})
    return str(final["messages"][-1].content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--topic", default="anticoagulation in atrial fibrillation")
    parser.add_argument("-n", type=int, default=2, help="items the agent asks for")
    args = parser.parse_args()
    settings = Settings()
    tools = as_tools(ClinsynthToolkit(settings))
    print("tools:", json.dumps({t.name: sorted(t.args) for t in tools}))
    print("subgraph:", asyncio.run(subgraph_demo(settings, args.topic)))
    print("agent:", asyncio.run(agent_demo(settings, args.topic, args.n)))


if __name__ == "__main__":
    main()
