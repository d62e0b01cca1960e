"""Structured output: a pydantic object from a chat model, with method fallback and repair.

``StructuredLLM`` asks for a schema with the best method the endpoint accepts (json_schema →
function_calling → json_mode), parses tolerantly, retries bad output with a corrective message,
and never raises for model-output problems (see ``clinsynth.llm.errors`` for what it raises).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable
from pydantic import BaseModel, ValidationError

from clinsynth.llm.endpoint import endpoint_name
from clinsynth.llm.errors import LLMEndpointError, LLMRequestError, Unsupported, translate
from clinsynth.llm.metering import UsageMeter
from clinsynth.llm.methods import MethodChoice
from clinsynth.llm.parsing import content_text, extract_json, validation_summary
from clinsynth.llm.transport import charged_requests, direct_call, is_openai_client
from clinsynth.runtime.limits import CallLimits, approx_tokens
from clinsynth.schemas import Usage

T = TypeVar("T", bound=BaseModel)


class StructuredResult(BaseModel, Generic[T]):
    """Outcome of one structured call: the parsed object or the error, plus the raw text."""

    parsed: T | None
    raw: str
    usage: Usage
    method: str
    error: str | None = None
    attempts: int


def _usage_of(message: AIMessage) -> Usage:
    meta: dict[str, Any] = dict(message.usage_metadata or {})
    return Usage(
        input_tokens=meta.get("input_tokens", 0),
        output_tokens=meta.get("output_tokens", 0),
        calls=1,
    )


async def _invoke(
    runnable: Runnable[LanguageModelInput, BaseMessage], history: list[BaseMessage]
) -> BaseMessage:
    """``runnable.ainvoke(history)``, straight through the OpenAI SDK where that applies."""
    reply = await direct_call(runnable, history)
    return reply if reply is not None else await runnable.ainvoke(history)


@functools.cache
def json_schema_of(schema: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of a pydantic model, built once per class (pydantic rebuilds it on
    every call; at high concurrency that showed up as ~1 ms per LLM call)."""
    return schema.model_json_schema()


def _schema_name(schema: type[BaseModel]) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]", "_", schema.__name__)[:64]


def _with_json_instruction(
    messages: list[BaseMessage], schema: type[BaseModel]
) -> list[BaseMessage]:
    instruction = (
        "Respond with a single JSON object, and nothing else, that conforms to this JSON "
        f"schema:\n{json.dumps(json_schema_of(schema))}"
    )
    if messages and isinstance(messages[0], SystemMessage) and isinstance(messages[0].content, str):
        return [SystemMessage(f"{messages[0].content}\n\n{instruction}"), *messages[1:]]
    return [SystemMessage(instruction), *messages]


class StructuredLLM:
    """Structured output from one chat model, with per-endpoint method discovery."""

    def __init__(
        self,
        model: BaseChatModel,
        *,
        name: str,
        method: str = "auto",
        meter: UsageMeter | None = None,
        parse_retries: int = 1,
        limits: CallLimits | None = None,
        transport_slots: bool = False,
        methods: MethodChoice | None = None,
    ) -> None:
        """``transport_slots``: the model's HTTP client already counts each of its requests
        against ``limits`` (``build_chat_model(cfg, limits)``), so calls here only settle
        their token reservations. ``methods``: the method choice of this (endpoint, model),
        shared with other instances on it (default: this instance's own, from ``method``)."""
        self.methods = methods or MethodChoice(method)
        self.model = model
        self.name = name
        self.method = method
        self.meter = meter
        self.parse_retries = parse_retries
        self.limits = limits
        self.transport_slots = transport_slots
        self.endpoint = endpoint_name(model)
        self._bound: dict[
            tuple[str, type[BaseModel], float | None], Runnable[LanguageModelInput, BaseMessage]
        ] = {}

    @property
    def working_method(self) -> str | None:
        """The method this endpoint is known to accept, once discovered."""
        return self.methods.working

    async def ainvoke(
        self,
        messages: Sequence[BaseMessage],
        schema: type[T],
        *,
        temperature: float | None = None,
    ) -> StructuredResult[T]:
        """Ask for ``schema``; model-output problems come back in ``error``, never raised. A
        request the endpoint refuses raises ``LLMRequestError`` (the endpoint may still serve
        other requests), an endpoint failure ``LLMEndpointError`` (as does a refusal when the
        endpoint has refused every request so far: then the setup is wrong, not a prompt)."""
        try:
            return await self._ainvoke(messages, schema, temperature)
        except LLMRequestError as exc:
            if self.methods.refused():
                raise LLMEndpointError(
                    f"{self.endpoint}: refused each of its first {self.methods.refusals} "
                    f"requests and answered none (last: {exc})"
                ) from exc
            raise

    async def _ainvoke(
        self, messages: Sequence[BaseMessage], schema: type[T], temperature: float | None
    ) -> StructuredResult[T]:
        last: Unsupported | None = None
        for method in self.methods.candidates():
            try:
                return await self._run(method, messages, schema, temperature)
            except Unsupported as exc:
                if not self.methods.reject(method):
                    raise LLMRequestError(str(exc)) from exc
                last = exc
        detail = f" (last: {last})" if last else ""
        raise LLMEndpointError(f"{self.endpoint}: rejected every structured-output method{detail}")

    def _bind(
        self, method: str, schema: type[BaseModel], temperature: float | None
    ) -> Runnable[LanguageModelInput, BaseMessage]:
        """The model bound for ``method``; built once per (method, schema, temperature)."""
        key = (method, schema, temperature)
        runnable = self._bound.get(key)
        if runnable is None:
            runnable = self._bind_new(method, schema)
            if temperature is not None:
                runnable = runnable.bind(temperature=temperature)
            self._bound[key] = runnable
        return runnable

    def _bind_new(
        self, method: str, schema: type[BaseModel]
    ) -> Runnable[LanguageModelInput, BaseMessage]:
        if method == "function_calling":
            return self.model.bind_tools([schema], tool_choice=schema.__name__)
        fmt: dict[str, Any] = {"type": "json_object"}
        if method == "json_schema":
            fmt = {
                "type": "json_schema",
                "json_schema": {
                    "name": _schema_name(schema),
                    "schema": json_schema_of(schema),
                    "strict": False,
                },
            }
        if is_openai_client(self.model):
            # Sent as raw body: the SDK would otherwise walk the whole schema on every call
            # (~2.5 ms each, the largest cost per call at concurrency 32) and switch to its
            # parse() path; we parse and validate the reply ourselves.
            extra = dict(getattr(self.model, "extra_body", None) or {})
            return self.model.bind(extra_body={**extra, "response_format": fmt})
        return self.model.bind(response_format=fmt)

    async def _run(
        self,
        method: str,
        messages: Sequence[BaseMessage],
        schema: type[T],
        temperature: float | None,
    ) -> StructuredResult[T]:
        try:
            runnable = self._bind(method, schema, temperature)
        except NotImplementedError as exc:  # e.g. bind_tools on a model without tool support
            raise Unsupported(str(exc) or type(exc).__name__) from exc
        history = list(messages)
        if method == "json_mode":
            history = _with_json_instruction(history, schema)
        usage = Usage()
        raw, error = "", None
        for attempt in range(1, self.parse_retries + 2):
            reply = await self._call(runnable, history)
            self.methods.answered()
            spent = _usage_of(reply)
            usage = usage + spent
            if self.meter is not None:  # now: a later attempt may raise
                self.meter.add(self.name, spent)
            raw, candidate = self._reply_payload(reply)
            try:
                parsed = schema.model_validate(
                    candidate if candidate is not None else extract_json(raw)
                )
            except ValueError as exc:  # includes pydantic.ValidationError
                error = validation_summary(exc) if isinstance(exc, ValidationError) else str(exc)
                history = [
                    *history,
                    AIMessage(raw),
                    HumanMessage(
                        f"Your reply could not be used: {error}. Reply again with only a JSON "
                        "object that matches the schema."
                    ),
                ]
                continue
            self.methods.prove(method)
            return StructuredResult(
                parsed=parsed, raw=raw, usage=usage, method=method, attempts=attempt
            )
        return StructuredResult(
            parsed=None,
            raw=raw,
            usage=usage,
            method=method,
            error=error,
            attempts=self.parse_retries + 1,
        )

    @staticmethod
    def _reply_payload(reply: AIMessage) -> tuple[str, dict[str, Any] | None]:
        """(raw text, already-parsed tool arguments or None)."""
        if reply.tool_calls:
            args = reply.tool_calls[0]["args"]
            return json.dumps(args), args
        if reply.invalid_tool_calls:
            return str(reply.invalid_tool_calls[0].get("args") or ""), None
        return content_text(reply), None

    async def _call(
        self, runnable: Runnable[LanguageModelInput, BaseMessage], history: list[BaseMessage]
    ) -> AIMessage:
        """One model call, its failures translated by ``errors.translate``."""
        try:
            if self.limits is None:
                reply = await _invoke(runnable, history)
            elif self.transport_slots:
                with charged_requests() as reports:
                    reply = await _invoke(runnable, history)
                if reports and isinstance(reply, AIMessage):
                    reports[-1](_usage_of(reply).total_tokens)
            else:
                prompt = 0
                if self.limits.tokens is not None:
                    prompt = approx_tokens("".join(content_text(m) for m in history))
                async with self.limits.call(prompt) as report:
                    reply = await _invoke(runnable, history)
                    if isinstance(reply, AIMessage):
                        report(_usage_of(reply).total_tokens)
        except Exception as exc:
            translated = translate(exc, self.endpoint)
            if translated is None:
                raise
            raise translated from exc
        if not isinstance(reply, AIMessage):
            raise LLMEndpointError(f"{self.endpoint}: unexpected reply type {type(reply).__name__}")
        return reply
