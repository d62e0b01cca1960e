"""The lean per-call path: the direct OpenAI SDK call, the sharded HTTP pools, the PHI cache."""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any, Literal

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableLambda
from pydantic import BaseModel

from clinsynth.evaluators.privacy import find_phi
from clinsynth.llm import EndpointConfig, StructuredLLM, build_chat_model
from clinsynth.llm.transport import direct_call
from clinsynth.testing.stub_server import StubServer, schema_echo_responder

MESSAGES = [SystemMessage("You are a careful clinician."), HumanMessage("Classify: no fever.")]


class Finding(BaseModel):
    label: Literal["positive", "negative"]
    evidence: list[str]


def model_for(server: StubServer) -> Any:
    cfg = EndpointConfig(base_url=server.base_url, model="stub-model", max_tokens=64)
    return build_chat_model(cfg)


def test_direct_call_gives_the_message_langchain_gives() -> None:
    """Same request body on the wire and the same content and usage back as LangChain's path."""
    with StubServer(schema_echo_responder) as server:
        model = model_for(server)
        bound = model.bind(temperature=0.3)

        async def both() -> tuple[Any, Any]:
            fast = await direct_call(bound, MESSAGES)
            slow = await bound.ainvoke(MESSAGES)
            return fast, slow

        fast, slow = asyncio.run(both())
        first, second = (r.body for r in server.received)
    assert isinstance(fast, AIMessage) and isinstance(slow, AIMessage)
    assert first == second
    assert fast.content == slow.content
    assert fast.usage_metadata == slow.usage_metadata


def test_direct_call_steps_aside_for_callbacks_and_other_models() -> None:
    """Inside a run with a callback handler (a host's tracer, LangGraph's message stream) the
    handler still sees the model call; without one it is not called; a model that is not the
    OpenAI SDK's goes through LangChain."""
    seen: list[str] = []

    class Recorder(AsyncCallbackHandler):
        async def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
            seen.append("start")

    fake = GenericFakeChatModel(messages=iter([AIMessage('{"label": "negative", "evidence": []}')]))
    assert asyncio.run(direct_call(fake.bind(temperature=0.1), MESSAGES)) is None
    with StubServer(schema_echo_responder) as server:
        llm = StructuredLLM(model_for(server), name="stub")

        async def call(_: Any) -> Any:
            return await llm.ainvoke(MESSAGES, Finding)

        step = RunnableLambda(call)
        plain = asyncio.run(step.ainvoke(None))
        assert seen == []
        traced = asyncio.run(step.ainvoke(None, config={"callbacks": [Recorder()]}))
    assert seen == ["start"]
    assert plain.parsed == traced.parsed == Finding(label="positive", evidence=["x"])


def test_requests_share_one_aiohttp_session_per_loop_closed_at_loop_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with StubServer(schema_echo_responder, latency_s=0.05) as server:
        llm = StructuredLLM(model_for(server), name="stub")
        transport: Any = llm.model.async_client._client._client._transport

        async def many() -> tuple[list[Any], Any]:
            results = await asyncio.gather(*(llm.ainvoke(MESSAGES, Finding) for _ in range(24)))
            (entry,) = transport._sessions.values()
            return results, entry.session

        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            first, session = asyncio.run(many())
            again, other = asyncio.run(many())  # a second loop gets its own session
            gc.collect()
    assert all(r.parsed is not None for r in first + again)
    assert session is not other
    assert session.closed and other.closed  # closed when asyncio.run shut its loop down
    assert "Unclosed" not in caplog.text


def test_find_phi_results_are_kept_and_cannot_be_changed_by_a_caller() -> None:
    text = "Call 617-555-0199 or write to jo@example.org about the visit."
    first = find_phi(text)
    first.clear()
    again = find_phi(text)
    assert [h.kind for h in again] == ["phone", "email"]
    assert find_phi(text) == again and find_phi(text) is not again
