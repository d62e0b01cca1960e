"""The OpenAI-compatible stub server, seen through the real openai client."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Literal

import openai
import pytest
from pydantic import BaseModel, Field, ValidationError

from clinsynth.testing.stub_server import (
    FaultConfig,
    StubServer,
    minimal_instance,
    schema_echo_responder,
)

ROOT = Path(__file__).resolve().parents[2]
USER: list[Any] = [{"role": "user", "content": "12345678"}]
TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": "Pick", "parameters": {"type": "object", "properties": {}}},
}


def constant(reply: str | dict[str, Any]) -> Any:
    return lambda body: reply


def client(server: StubServer, *, retries: int = 0, timeout: float = 5.0) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.base_url, api_key="x", max_retries=retries, timeout=timeout
    )


def chat(server: StubServer, **kwargs: Any) -> Any:
    c = client(server, retries=kwargs.pop("retries", 0), timeout=kwargs.pop("timeout", 5.0))
    return c.chat.completions.create(model="m", messages=USER, **kwargs)


def test_completion_models_and_usage() -> None:
    with StubServer(constant('{"a": 1}'), model_ids=("one", "two")) as server:
        reply = chat(server)
        assert reply.choices[0].message.content == '{"a": 1}'
        assert reply.choices[0].finish_reason == "stop"
        assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (2, 2)
        assert reply.usage.total_tokens == 4
        assert [m.id for m in client(server).models.list()] == ["one", "two"]
        assert server.stats.as_dict() == {
            "requests": 2,
            "completions": 1,
            "rejected": 0,
            "refused": 0,
            "peak_in_flight": 1,
            "faults": {},
        }
        assert server.received[0].body["messages"] == USER


@pytest.mark.parametrize(
    "tool_kwargs",
    [
        {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "Pick"}}},
        {"tools": [TOOL]},
        {
            "tools": [TOOL, {**TOOL, "function": {**TOOL["function"], "name": "Other"}}],
            "tool_choice": "required",
        },
    ],
)
def test_string_reply_becomes_a_call_of_the_forced_or_only_tool(tool_kwargs: dict) -> None:
    with StubServer(constant('{"x": 1}')) as server:
        message = chat(server, **tool_kwargs).choices[0].message
        assert message.content is None
        assert message.tool_calls[0].function.name == "Pick"
        assert message.tool_calls[0].function.arguments == '{"x": 1}'


def test_tool_choice_none_and_explicit_tool_calls() -> None:
    with StubServer(constant("plain")) as server:
        message = chat(server, tools=[TOOL], tool_choice="none").choices[0].message
        assert message.content == "plain" and not message.tool_calls
    scripted = {"content": None, "tool_calls": [{"name": "Pick", "args": {"k": [1]}}]}
    with StubServer(constant(scripted)) as server:
        reply = chat(server, tools=[TOOL, TOOL])
        assert reply.choices[0].finish_reason == "tool_calls"
        assert json.loads(reply.choices[0].message.tool_calls[0].function.arguments) == {"k": [1]}


def test_capability_rejections_are_openai_style_400s() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "S", "schema": {"type": "object"}}}
    with StubServer(constant("{}"), reject_json_schema=True, reject_tools=True) as server:
        with pytest.raises(openai.BadRequestError, match="json_schema not supported"):
            chat(server, response_format=fmt)
        with pytest.raises(openai.BadRequestError, match="tools not supported"):
            chat(server, tools=[TOOL])
        assert chat(server, response_format={"type": "json_object"}).choices[0].message.content
        assert server.stats.rejected == 2 and server.stats.completions == 1


def test_429_carries_retry_after_headers() -> None:
    faults = FaultConfig(sequence=["429"], retry_after_s=0.25)
    with StubServer(constant("{}"), faults=faults) as server:
        with pytest.raises(openai.RateLimitError) as info:
            chat(server)
        assert info.value.response.headers["retry-after"] == "0.25"
        assert info.value.response.headers["retry-after-ms"] == "250"
        assert server.stats.faults == {"429": 1}


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("500", openai.InternalServerError),
        ("timeout", openai.APITimeoutError),
        ("truncated", openai.APIConnectionError),
        ("drop", openai.APIConnectionError),
    ],
)
def test_each_fault_is_seen_by_the_client_and_retried(kind: Any, error: type) -> None:
    faults = FaultConfig(sequence=[kind], timeout_sleep_s=1.0)
    with StubServer(constant('{"ok": true}'), faults=faults) as server:
        with pytest.raises(error):
            chat(server, timeout=0.3)
        assert chat(server, timeout=0.3).choices[0].message.content == '{"ok": true}'
        assert server.stats.faults == {kind: 1}
        assert [r.fault for r in server.received] == [kind, None]


def test_malformed_json_fault_breaks_the_content() -> None:
    faults = FaultConfig(sequence=["malformed_json"] * 6)
    with StubServer(constant('{"a": {"b": 1}}'), faults=faults, seed=3) as server:
        for _ in range(6):
            content = chat(server).choices[0].message.content
            with pytest.raises(json.JSONDecodeError):
                json.loads(content)
        assert server.stats.faults == {"malformed_json": 6}


def test_rates_are_seeded_and_validated() -> None:
    def kinds(seed: int) -> list[Any]:
        with StubServer(constant("{}"), faults=FaultConfig(rate_500=0.5), seed=seed) as server:
            for _ in range(12):
                with contextlib.suppress(openai.InternalServerError):
                    chat(server)
            return [r.fault for r in server.received]

    first = kinds(7)
    assert first == kinds(7)
    assert 0 < first.count("500") < 12
    with pytest.raises(ValidationError, match="sum"):
        FaultConfig(rate_500=0.6, rate_429=0.6)


def test_latency_is_applied_per_request() -> None:
    with StubServer(constant("{}"), latency_s=0.3) as server:
        start = time.monotonic()
        chat(server)
        chat(server)
        assert time.monotonic() - start >= 0.6


def test_streaming_returns_sse_chunks() -> None:
    with StubServer(constant("hello there")) as server:
        stream = chat(server, stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "hello there"
        assert chunks[-1].usage.completion_tokens == 3


class Inner(BaseModel):
    kind: Literal["a", "b"]
    n: int = Field(ge=3)


class Outer(BaseModel):
    name: str = Field(min_length=4)
    inner: Inner
    items: list[Inner]
    maybe: float | None
    flag: bool


def test_minimal_instance_is_valid_for_pydantic_schemas() -> None:
    instance = minimal_instance(Outer.model_json_schema())
    parsed = Outer.model_validate(instance)
    assert parsed.name == "xxxx" and parsed.inner == Inner(kind="a", n=3)
    assert len(parsed.items) == 1


def test_echo_responder_reads_schema_from_response_format_and_tools() -> None:
    schema = Inner.model_json_schema()
    fmt = {"type": "json_schema", "json_schema": {"name": "Inner", "schema": schema}}
    assert json.loads(schema_echo_responder({"response_format": fmt})) == {"kind": "a", "n": 3}
    tool = {"type": "function", "function": {"name": "Inner", "parameters": schema}}
    assert json.loads(schema_echo_responder({"tools": [tool]})) == {"kind": "a", "n": 3}
    assert schema_echo_responder({"messages": USER}) == "stub reply"


def test_runs_standalone_with_echo_schema() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "clinsynth.testing.stub_server", "--echo-schema", "--latency", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        base_url = line.strip().rsplit(" ", 1)[-1]
        assert base_url.startswith("http://127.0.0.1:")
        schema = Inner.model_json_schema()
        body = {
            "model": "m",
            "messages": USER,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "Inner", "schema": schema},
            },
        }
        request = urllib.request.Request(
            base_url + "/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            reply = json.load(response)
        assert json.loads(reply["choices"][0]["message"]["content"]) == {"kind": "a", "n": 3}
    finally:
        proc.terminate()
        proc.wait(timeout=5)
