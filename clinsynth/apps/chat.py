"""The chat agent: a tool-calling LangGraph graph with thread memory over the clinsynth core.

``agent`` (a chat model with tools bound) ⇄ ``tools`` (a ``ToolNode``). The tools retrieve,
generate through the critic loop and export; besides the messages, the graph state keeps
the session's topic, difficulty target, the last batch's *measured* difficulty and its run
directories, so "make them harder" escalates above what the critic measured last time and
"more about dosing" narrows the topic. With a checkpointer (SQLite, see :func:`open_chat`)
a conversation continues across restarts under the same thread id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from clinsynth.apps.chat_session import ChatState, system_prompt
from clinsynth.apps.chat_tools import chat_tools
from clinsynth.config import ConfigError, EndpointSettings, Settings
from clinsynth.tools.toolkit import ClinsynthToolkit


def build_chat_graph(
    model: BaseChatModel,
    toolkit: ClinsynthToolkit,
    *,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the chat agent; ``model`` must support tool calling (``bind_tools``)."""
    tools = chat_tools(toolkit)
    bound = model.bind_tools(tools)

    async def agent(state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        messages = [SystemMessage(system_prompt(state)), *state["messages"]]
        reply = await bound.ainvoke(messages, config)
        assert isinstance(reply, AIMessage)
        return {"messages": [reply]}

    g: StateGraph[Any] = StateGraph(ChatState)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode(tools))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=checkpointer, name="clinsynth-chat")


def chat_model(
    settings: Settings, endpoints: dict[str, EndpointSettings] | None = None
) -> BaseChatModel:
    """The chat agent's model: the generator endpoint, which must be OpenAI-compatible (the
    in-process local model has no tool calling). Builds a client only; no network."""
    from clinsynth.graphs.factory import endpoint_config
    from clinsynth.llm import build_chat_model

    ep = (endpoints or settings.endpoints())["generator"]
    if ep.provider != "openai":
        raise ConfigError(
            "the chat agent needs a tool-calling model at an OpenAI-compatible endpoint; "
            "set CLINSYNTH_BASE_URL (and CLINSYNTH_MODEL)"
        )
    return build_chat_model(endpoint_config(ep))


@asynccontextmanager
async def open_chat(
    toolkit: ClinsynthToolkit, model: BaseChatModel | None = None
) -> AsyncIterator[CompiledStateGraph[Any, Any, Any, Any]]:
    """The chat graph with its SQLite thread memory at ``<data_dir>/chat.sqlite``."""
    from clinsynth.runtime.checkpoint import open_checkpointer

    model = model or chat_model(toolkit.settings, toolkit.endpoints)
    async with open_checkpointer(toolkit.data_dir / "chat.sqlite") as saver:
        yield build_chat_graph(model, toolkit, checkpointer=saver)


__all__ = ["build_chat_graph", "chat_model", "open_chat"]
