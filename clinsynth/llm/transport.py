"""How requests reach an OpenAI-compatible endpoint: the HTTP client and the ChatOpenAI class.

The HTTP client under the OpenAI SDK sends over aiohttp with one session per event loop, counts
every request against the run's limits and caps every reply's size.

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
from collections.abc import AsyncGenerator, Callable, Iterator
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
    """An async HTTP client for the OpenAI SDK that sends over aiohttp, one session per loop.

    The SDK keeps its own request building, retries and error types (this is an httpx
    transport, so the SDK sees httpx requests, responses and exceptions); the bytes go over
    aiohttp, whose C-accelerated HTTP/1.1 client costs about half the CPU per request of the
    httpx / httpcore / h11 / anyio stack (bench/results/http_clients.json) — that stack was
    about half of clinsynth's CPU per item (bench/results/profile_item.json).

    Connections belong to the loop that opened them (langchain-openai caches one client per
    base URL, and a second ``asyncio.run`` must still work), so each running loop gets its own
    session, closed when that loop shuts down its async generators (``asyncio.run`` and
    ``asyncio.Runner`` do). ``replicas``: send each request to the replica it picks.
    """
    import aiohttp
    import openai

    max_bytes = MAX_RESPONSE_BYTES
    # The SDK is built on httpx (openai<3) or httpx2 (openai>=3); use the one it uses.
    httpx: Any = importlib.import_module(
        openai.DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0]
    )
    skip = {b"host", b"content-length", b"transfer-encoding", b"connection"}

    async def keep_open(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
        """Suspended for the loop's lifetime; its ``finally`` runs at loop shutdown."""
        try:
            yield
        finally:
            await session.close()

    class LoopSession:
        def __init__(self, loop: asyncio.AbstractEventLoop, ssl_context: Any) -> None:
            self.loop = loop
            connector = aiohttp.TCPConnector(limit=0, ssl=ssl_context, enable_cleanup_closed=False)
            self.session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # httpx decodes by Content-Encoding, as it would
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self.keeper = keep_open(self.session)

    def timeouts(request: Any) -> aiohttp.ClientTimeout:
        t = request.extensions.get("timeout") or {}
        return aiohttp.ClientTimeout(
            total=None,
            connect=t.get("pool"),
            sock_connect=t.get("connect"),
            sock_read=t.get("read"),
        )

    class AiohttpTransport(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self._lock = threading.Lock()
            self._sessions: dict[int, LoopSession] = {}
            self._ssl_context: Any = None

        async def _session(self) -> aiohttp.ClientSession:
            loop = asyncio.get_running_loop()
            entry = self._sessions.get(id(loop))
            if entry is not None and entry.loop is loop:
                return entry.session
            with self._lock:
                self._sessions = {k: v for k, v in self._sessions.items() if not v.loop.is_closed()}
                if self._ssl_context is None:  # loading the CA bundle takes ~50 ms
                    self._ssl_context = httpx.create_ssl_context()
                entry = LoopSession(loop, self._ssl_context)
                self._sessions[id(loop)] = entry
            await entry.keeper.__anext__()  # registered with the loop's async generators
            return entry.session

        async def handle_async_request(self, request: Any) -> Any:
            if replicas is not None:
                async with replicas.route(str(request.url)) as url:
                    return await self._send(request, url)
            return await self._send(request, str(request.url))

        async def _send(self, request: Any, url: str) -> Any:
            session = await self._session()
            body = b"".join([chunk async for chunk in request.stream])
            headers = [
                (k.decode("latin-1"), v.decode("latin-1"))
                for k, v in request.headers.raw
                if k.lower() not in skip
            ]
            size = len(body)
            try:
                if limits is None:
                    return await self._exchange(session, request, url, headers, body)
                async with limits.call((size + 3) // 4) as report:
                    response = await self._exchange(session, request, url, headers, body)
                reports = _reports.get()
                if reports is not None:
                    reports.append(report)
                return response
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise _as_httpx(httpx, exc, request) from exc

        async def _exchange(
            self, session: aiohttp.ClientSession, request: Any, url: str, headers: Any, body: bytes
        ) -> Any:
            async with session.request(
                request.method,
                url,
                headers=headers,
                data=body or None,
                allow_redirects=False,  # the httpx client follows redirects itself
                timeout=timeouts(request),
            ) as resp:
                length = resp.content_length
                if length is not None and length > max_bytes:
                    raise _too_large(request.url, max_bytes)
                chunks, seen = [], 0
                async for chunk in resp.content.iter_chunked(65536):
                    seen += len(chunk)
                    if seen > max_bytes:
                        raise _too_large(request.url, max_bytes)
                    chunks.append(chunk)
                return httpx.Response(
                    resp.status,
                    headers=list(resp.raw_headers),
                    content=b"".join(chunks),
                    request=request,
                    extensions={"http_version": b"HTTP/1.1"},
                )

        async def aclose(self) -> None:
            entry = self._sessions.pop(id(asyncio.get_running_loop()), None)
            if entry is not None:
                await entry.keeper.aclose()

    return openai.DefaultAsyncHttpxClient(transport=AiohttpTransport())


def _as_httpx(httpx: Any, exc: BaseException, request: Any) -> Exception:
    """The httpx exception the SDK expects for an aiohttp failure (so its retries and error
    types stay as they were)."""
    import aiohttp

    text = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text, request=request)
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(text, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(text, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(text, request=request)
    return httpx.ReadError(text, request=request)


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
