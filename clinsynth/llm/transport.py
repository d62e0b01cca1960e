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
from langchain_core.outputs import ChatResult

from clinsynth.llm.errors import LLMProtocolError, completion_problem
from clinsynth.runtime.limits import CallLimits

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
"""Largest reply body read from an endpoint (a chat completion is a few kilobytes)."""

SHARDS = 8
"""Connection pools per event loop. httpcore's pool scans every one of its connections, and
polls each idle one's socket, on every request and every reply (quadratic in concurrency: ~3
ms an item at 128 requests in flight); eight smaller pools scan an eighth each."""

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


def loop_safe_async_client(limits: CallLimits | None = None) -> Any:
    """An async HTTP client for the OpenAI SDK with one connection pool per event loop.

    langchain-openai caches one async client per base URL, and pooled connections belong to the
    loop that opened them: a second ``asyncio.run`` with the same model then fails with "Event
    loop is closed". Here each running loop gets its own pools (``SHARDS`` of them, each request
    to the one with the fewest requests in flight); pools of closed loops are dropped.
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

        def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
            self.loop = loop
            self.pools = [
                httpx.AsyncHTTPTransport(limits=openai.DEFAULT_CONNECTION_LIMITS)
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

        def _shards(self) -> Shards:
            loop = asyncio.get_running_loop()
            entry = self._pools.get(id(loop))
            if entry is not None and entry.loop is loop:
                return entry
            with self._lock:
                self._pools = {k: v for k, v in self._pools.items() if not v.loop.is_closed()}
                if id(loop) not in self._pools:
                    self._pools[id(loop)] = Shards(loop)
                return self._pools[id(loop)]

        async def handle_async_request(self, request: Any) -> Any:
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
