"""How requests reach an OpenAI-compatible endpoint: the HTTP client and the ChatOpenAI class.

The HTTP client under the OpenAI SDK keeps a pool per event loop, counts every request against
the run's limits and caps every reply's size.

Each HTTP request, an SDK retry included, takes a request slot until the response head arrives
(back-off between retries holds none), a turn of the requests-per-minute limit, and a
reservation of its body's size in tokens in the tokens-per-minute window. ``StructuredLLM``
settles the last request of a call with the reply's real usage (``charged_requests``); a
request that failed keeps its estimate. A reply body over ``MAX_RESPONSE_BYTES`` raises
``LLMProtocolError`` as soon as that many bytes have arrived.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable, RunnableBinding

from clinsynth.llm.errors import LLMProtocolError, completion_problem
from clinsynth.llm.replicas import Replicas
from clinsynth.runtime.limits import CallLimits

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
"""Largest reply body read from an endpoint (a chat completion is a few kilobytes)."""

SHARDS = 16
"""Connection pools per event loop. httpcore's pool scans every one of its connections, and
polls each idle one's socket, on every request and every reply (quadratic in concurrency: ~3
ms an item at 128 requests in flight); sixteen smaller pools scan a sixteenth each."""

_reports: ContextVar[list[Callable[[int], None]] | None] = ContextVar(
    "clinsynth_http_reports", default=None
)


@contextmanager
def charged_requests() -> Iterator[list[Callable[[int], None]]]:
    """Collect, for each HTTP request sent in this context, the function that settles its
    token reservation with the real usage."""
    reports: list[Callable[[int], None]] = []
    token = _reports.set(reports)
    try:
        yield reports
    finally:
        _reports.reset(token)


def _too_large(url: Any, limit: int) -> LLMProtocolError:
    return LLMProtocolError(
        f"{url}: the reply is larger than {limit:,} bytes, not an OpenAI chat completion"
    )


def loop_safe_async_client(
    limits: CallLimits | None = None, replicas: Replicas | None = None
) -> Any:
    """An async HTTP client for the OpenAI SDK with one connection pool per event loop.

    langchain-openai caches one async client per base URL, and pooled connections belong to the
    loop that opened them: a second ``asyncio.run`` with the same model then fails with "Event
    loop is closed". Here each running loop gets its own pools (``SHARDS`` of them, each request
    to the one with the fewest requests in flight); pools of closed loops are dropped.
    ``replicas``: send each request to the replica it picks (``llm.replicas``).
    """
    import openai

    max_bytes = MAX_RESPONSE_BYTES
    # The SDK is built on httpx (openai<3) or httpx2 (openai>=3); use the one it uses.
    httpx: Any = importlib.import_module(
        openai.DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0]
    )

    class CappedStream(httpx.AsyncByteStream):
        def __init__(self, inner: Any, url: Any, done: Callable[[], None]) -> None:
            self._inner = inner
            self._url = url
            self._done: Callable[[], None] | None = done

        async def __aiter__(self) -> AsyncIterator[bytes]:
            seen = 0
            async for chunk in self._inner:
                seen += len(chunk)
                if seen > max_bytes:
                    raise _too_large(self._url, max_bytes)
                yield chunk

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                if self._done is not None:
                    self._done()
                    self._done = None

    class Shards:
        """``SHARDS`` connection pools of one loop; a request goes to the least busy one."""

        def __init__(self, loop: asyncio.AbstractEventLoop, ssl_context: Any) -> None:
            self.loop = loop
            self.pools = [
                httpx.AsyncHTTPTransport(
                    verify=ssl_context, limits=openai.DEFAULT_CONNECTION_LIMITS
                )
                for _ in range(SHARDS)
            ]
            self.busy = [0] * SHARDS

        def take(self) -> tuple[Any, Callable[[], None]]:
            busy = self.busy
            index = busy.index(min(busy))
            busy[index] += 1
            return self.pools[index], functools.partial(self.release, index)

        def release(self, index: int) -> None:
            self.busy[index] -= 1

    class LoopLocalTransport(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self._lock = threading.Lock()
            self._pools: dict[int, Shards] = {}
            self._ssl_context: Any = None

        def _shards(self) -> Shards:
            loop = asyncio.get_running_loop()
            entry = self._pools.get(id(loop))
            if entry is not None and entry.loop is loop:
                return entry
            with self._lock:
                self._pools = {k: v for k, v in self._pools.items() if not v.loop.is_closed()}
                if id(loop) not in self._pools:
                    if self._ssl_context is None:  # loading the CA bundle takes ~50 ms
                        self._ssl_context = httpx.create_ssl_context()
                    self._pools[id(loop)] = Shards(loop, self._ssl_context)
                return self._pools[id(loop)]

        async def handle_async_request(self, request: Any) -> Any:
            if replicas is not None:
                async with replicas.route(str(request.url)) as url:
                    target = httpx.URL(url)
                    headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"host"]
                    headers.insert(0, (b"Host", target.netloc))
                    routed = httpx.Request(
                        request.method,
                        target,
                        headers=headers,
                        stream=request.stream,
                        extensions=request.extensions,
                    )
                    return await self._send(routed)
            return await self._send(request)

        async def _send(self, request: Any) -> Any:
            pool, release = self._shards().take()
            try:
                if limits is None:
                    response = await pool.handle_async_request(request)
                else:
                    size = int(request.headers.get("content-length") or 0)
                    async with limits.call((size + 3) // 4) as report:
                        response = await pool.handle_async_request(request)
                    reports = _reports.get()
                    if reports is not None:
                        reports.append(report)
                length = response.headers.get("content-length")
                if length is not None and length.isdigit() and int(length) > max_bytes:
                    await response.aclose()
                    raise _too_large(request.url, max_bytes)
            except BaseException:
                release()
                raise
            response.stream = CappedStream(response.stream, request.url, release)
            return response

        async def aclose(self) -> None:
            for pool in self._shards().pools:
                await pool.aclose()

    return openai.DefaultAsyncHttpxClient(transport=LoopLocalTransport())


def is_openai_client(model: BaseChatModel) -> bool:
    """Whether ``model`` talks to an OpenAI-compatible endpoint through the OpenAI SDK."""
    return any(cls.__module__.startswith("langchain_openai") for cls in type(model).__mro__)


@functools.cache
def chat_openai_class() -> type[BaseChatModel]:
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


def _callbacks_wanted() -> bool:
    """Whether the current run has callback handlers or tracing that a chat model call must
    report to (a host's tracer, LangGraph's message streaming)."""
    from langchain_core.runnables.config import var_child_runnable_config
    from langchain_core.tracers.context import _tracing_v2_is_enabled

    if _tracing_v2_is_enabled():
        return True
    callbacks = (var_child_runnable_config.get() or {}).get("callbacks")
    if callbacks is None:
        return False
    return bool(callbacks if isinstance(callbacks, list) else callbacks.handlers)


async def direct_call(
    runnable: Runnable[LanguageModelInput, BaseMessage], history: list[BaseMessage]
) -> BaseMessage | None:
    """One chat completion through the model's OpenAI SDK client, without LangChain's runnable,
    callback and executor layers (~1 ms a call: a callback manager, a run tree and a thread
    hop to build the result); None when this path does not apply and ``runnable`` should be
    invoked as usual: a model that is no OpenAI-SDK ChatOpenAI bound with ``bind``, a
    streaming model, the Responses API, a pydantic ``response_format`` (the SDK's parse
    path), or callbacks or tracing to report to. The request payload, the SDK's retries and
    error classes, and the reply's conversion to a message are LangChain's and the SDK's own.
    """
    if not isinstance(runnable, RunnableBinding) or not isinstance(runnable.bound, BaseChatModel):
        return None
    model: Any = runnable.bound
    if not is_openai_client(model):
        return None
    if model.streaming or _callbacks_wanted():
        return None
    payload = model._get_request_payload(history, **runnable.kwargs)
    if "response_format" in payload or payload.get("stream") or model._use_responses_api(payload):
        return None
    import openai
    from langchain_openai.chat_models import base as lc_openai

    try:
        raw = await model.async_client.with_raw_response.create(**payload)
    except openai.BadRequestError as exc:
        lc_openai._handle_openai_bad_request(exc)
        raise
    except openai.APIError as exc:
        lc_openai._handle_openai_api_error(exc)
        raise
    # The SDK's own reading of a reply (``LegacyAPIResponse._parse``), less building its typed
    # ChatCompletion, which LangChain would dump back into this dict.
    http = raw.http_response
    if http.headers.get("content-type", "*").split(";")[0].endswith("json"):
        data: Any = http.json()
    else:
        try:
            data = http.json()
        except ValueError:
            data = http.text
    result: ChatResult = model._create_chat_result(data, {})
    return result.generations[0].message
