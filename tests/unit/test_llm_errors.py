"""What an endpoint failure says: request errors, capability verdicts, protocol errors."""

from __future__ import annotations

import asyncio
import importlib
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.exceptions import ContextOverflowError
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, Field

from clinsynth.llm import LLMEndpointError, LLMRequestError, StructuredLLM, UsageMeter
from clinsynth.llm.errors import (
    LLMConfigError,
    LLMProtocolError,
    LocalModelError,
    Unsupported,
    completion_problem,
    is_capability_error,
    is_fatal,
    one_line,
    translate,
)
from clinsynth.llm.methods import REFUSALS_WITHOUT_ANSWER
from clinsynth.schemas import Usage
from tests.support.fakes import FakeChat, fake_chat


class Finding(BaseModel):
    label: str
    confidence: int = Field(ge=0, le=100)


GOOD = '{"label": "positive", "confidence": 80}'
ASK = [HumanMessage("Classify: no fever.")]


class ScriptedChat(FakeChat):
    """FakeChat whose script may also hold exceptions (raised in turn) and whose
    ``bind_tools`` may refuse like a model without tool support."""

    script: list[Any] = Field(default_factory=list)
    tools_supported: bool = True

    def bind_tools(self, tools: Any, **kwargs: Any) -> FakeChat:
        if not self.tools_supported:
            raise NotImplementedError("this model has no tool calling")
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append(list(messages))
        self.call_kwargs.append(dict(kwargs))
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return ChatResult(generations=[ChatGeneration(message=step)])


def scripted(*steps: str | BaseException, **kwargs: Any) -> ScriptedChat:
    """A model answering ``steps`` in order: text as replies (10 + 5 tokens), errors raised."""
    script = [s if isinstance(s, BaseException) else next(fake_chat([s]).messages) for s in steps]
    return ScriptedChat(messages=iter([]), script=script, **kwargs)


def ask(llm: StructuredLLM) -> Any:
    return asyncio.run(llm.ainvoke(ASK, Finding))


def test_a_refused_first_call_is_no_capability_verdict() -> None:
    model = scripted(ContextOverflowError("too long"), GOOD)
    llm = StructuredLLM(model, name="m")
    with pytest.raises(LLMRequestError) as info:
        ask(llm)
    assert str(info.value) == (
        "endpoint refused this request (the prompt exceeds the model's context window)"
    )
    assert llm.working_method is None
    result = ask(llm)
    assert result.parsed is not None and result.method == "json_schema"
    assert llm.working_method == "json_schema"
    assert len(model.calls) == 2  # no fallback request was made


def test_a_method_that_worked_never_becomes_unsupported() -> None:
    model = scripted(GOOD, NotImplementedError("json_schema unsupported"), GOOD)
    llm = StructuredLLM(model, name="m")
    assert ask(llm).method == "json_schema"
    with pytest.raises(LLMRequestError, match=r"refused this request \(json_schema unsupported"):
        ask(llm)
    assert llm.working_method == "json_schema"
    assert ask(llm).method == "json_schema"
    assert [kw["response_format"]["type"] for kw in model.call_kwargs] == ["json_schema"] * 3


def test_a_fixed_method_that_worked_is_not_unsupported_either() -> None:
    model = scripted(GOOD, NotImplementedError("unsupported"))
    llm = StructuredLLM(model, name="m", method="json_mode")
    assert ask(llm).method == "json_mode"
    with pytest.raises(LLMRequestError):
        ask(llm)


def test_bind_tools_not_implemented_falls_back_to_json_mode() -> None:
    model = scripted(NotImplementedError("no response_format"), GOOD, tools_supported=False)
    llm = StructuredLLM(model, name="m")
    result = ask(llm)
    assert result.parsed == Finding(label="positive", confidence=80)
    assert result.method == llm.working_method == "json_mode"
    assert [kw["response_format"]["type"] for kw in model.call_kwargs] == [
        "json_schema",
        "json_object",
    ]


def test_every_method_unsupported_is_an_endpoint_error() -> None:
    model = scripted(NotImplementedError("a"), NotImplementedError("b"), tools_supported=False)
    with pytest.raises(LLMEndpointError, match=r"rejected every structured-output method"):
        ask(StructuredLLM(model, name="m"))
    assert len(model.calls) == 2  # json_schema and json_mode; tools never bound


def test_usage_of_attempts_before_a_refusal_stays_metered() -> None:
    meter = UsageMeter()
    model = scripted("not json at all", ContextOverflowError("too long"))
    llm = StructuredLLM(model, name="m", meter=meter)
    with pytest.raises(LLMRequestError):
        ask(llm)
    assert meter.total() == Usage(input_tokens=10, output_tokens=5, calls=1)
    assert llm.working_method is None  # a reply that fails the schema proves nothing


@pytest.mark.parametrize(
    ("param", "message", "capability"),
    [
        ("response_format", "Invalid value", True),
        ("tools", "bad", True),
        (None, "This model does not support json_schema", True),
        (None, "Tool calling is not supported", True),
        (None, "grammar compilation failed", True),
        (None, "Your request was flagged by the content filter", False),
        ("messages", "prompt too long", False),
    ],
)
def test_capability_errors_are_explicit(param: str | None, message: str, capability: bool) -> None:
    assert is_capability_error(SimpleNamespace(param=param, message=message)) is capability


def _status_error(code: int, message: str, param: str | None = None) -> Any:
    import openai

    httpx: Any = importlib.import_module(
        openai.DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0]
    )
    request = httpx.Request("POST", "http://x/v1/chat/completions")
    body = {"error": {"message": message, "param": param}}
    response = httpx.Response(code, request=request, json=body)
    kinds = {400: openai.BadRequestError, 404: openai.NotFoundError, 413: openai.APIStatusError}
    kinds |= {422: openai.UnprocessableEntityError, 500: openai.InternalServerError}
    return kinds[code](body["error"]["message"], response=response, body=body["error"])


@pytest.mark.parametrize(
    ("code", "message", "param", "kind", "text"),
    [
        (400, "flagged by the content filter", None, LLMRequestError, "HTTP 400: flagged"),
        (413, "payload too large", None, LLMRequestError, "HTTP 413: payload too large"),
        (422, "bad value for this prompt", None, LLMRequestError, "HTTP 422: bad value"),
        (400, "invalid schema", "response_format", Unsupported, "HTTP 400: invalid schema"),
        (500, "json_schema not supported", None, Unsupported, "HTTP 500: json_schema"),
        (404, "model 'x' not found", None, LLMEndpointError, "W: HTTP 404: model 'x' not"),
        (500, "boom", None, LLMEndpointError, "W: server error after retries (HTTP 500: boom)"),
    ],
)
def test_status_errors_are_translated(
    code: int, message: str, param: str | None, kind: type[BaseException], text: str
) -> None:
    translated = translate(_status_error(code, message, param), "W")
    assert type(translated) is kind
    assert text in str(translated)


@pytest.mark.parametrize(
    ("exc", "fatal"),
    [
        (LLMEndpointError("W: cannot connect"), True),
        (LLMProtocolError("W: the reply is not an OpenAI chat completion"), True),
        (LocalModelError("GGUF model file not found"), True),
        (LLMRequestError("HTTP 400: flagged"), False),
        (Unsupported("HTTP 400: invalid schema"), False),
        (LLMConfigError("no LLM endpoint configured"), False),
        (ValueError("bug"), False),
    ],
)
def test_only_endpoint_errors_stop_a_run(exc: BaseException, fatal: bool) -> None:
    assert is_fatal(exc) is fatal


@pytest.mark.parametrize(
    ("code", "fatal"), [(400, False), (413, False), (422, False), (404, True), (500, True)]
)
def test_translated_status_errors_are_fatal_only_for_the_endpoint(code: int, fatal: bool) -> None:
    translated = translate(_status_error(code, "boom"), "W")
    assert translated is not None
    assert is_fatal(translated) is fatal


def test_translate_leaves_other_errors_alone() -> None:
    assert translate(ValueError("bug"), "W") is None
    assert translate(LLMProtocolError("W: x"), "W") is None


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (
            "<html><body>Sign in</body></html>",
            "got a text body: '<html><body>Sign in</body></html>'",
        ),
        ({}, "no 'choices' list"),
        ({"choices": []}, "no choices"),
        ({"choices": [{"index": 0}]}, "the first choice has no message"),
        ({"choices": [{"message": {"content": "x"}}]}, None),
        (
            SimpleNamespace(choices=[SimpleNamespace(message=None)]),
            "the first choice has no message",
        ),
    ],
)
def test_completion_problem(reply: Any, problem: str | None) -> None:
    assert completion_problem(reply) == problem


def test_one_line_flattens_and_clips() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    assert one_line("x" * 500, 10) == "x" * 9 + "…"


def test_an_endpoint_refusing_every_request_is_an_endpoint_error() -> None:
    model = scripted(*(ContextOverflowError("too long") for _ in range(REFUSALS_WITHOUT_ANSWER)))
    llm = StructuredLLM(model, name="m")
    for _ in range(REFUSALS_WITHOUT_ANSWER - 1):
        with pytest.raises(LLMRequestError):
            ask(llm)
    with pytest.raises(LLMEndpointError) as info:
        ask(llm)
    assert str(info.value) == (
        f"ScriptedChat: refused each of its first {REFUSALS_WITHOUT_ANSWER} requests and answered "
        "none (last: endpoint refused this request (the prompt exceeds the model's context "
        "window))"
    )


def test_refusals_after_an_answer_stay_per_request() -> None:
    refusals = [ContextOverflowError("too long")] * (REFUSALS_WITHOUT_ANSWER + 2)
    llm = StructuredLLM(scripted("not json", *refusals), name="m", parse_retries=0)
    assert ask(llm).parsed is None  # answered, if uselessly
    for _ in refusals:
        with pytest.raises(LLMRequestError):
            ask(llm)
