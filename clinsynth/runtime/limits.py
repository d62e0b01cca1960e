"""Concurrency, requests- and tokens-per-minute limits shared by every LLM call of a run.

Concurrency is a set of request slots per event loop (:class:`Slots`): it caps requests in
flight, not items, so the batch runner can keep more items in flight than there are slots. For
OpenAI-compatible endpoints the HTTP client takes a slot and the rate limits' turns for each
HTTP exchange, an SDK retry included (retry back-off holds no slot; see
``clinsynth.llm.transport``); other models take them around the whole call.

Requests per minute use LangChain's token-bucket ``InMemoryRateLimiter`` (bucket of one: calls
are spaced evenly, no burst). Tokens per minute have no counterpart in the stack — a call's size
is known only after it returns — so :class:`TokenWindow` is written here: a call reserves its
prompt estimate in a rolling window before it is sent and is charged its real usage after.

The rate limiters keep no event-loop state (a thread lock and ``asyncio.sleep`` polling) and the
slots are per loop, so one instance serves any number of ``asyncio.run`` calls; build
them per run, never at import.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass

from langchain_core.rate_limiters import InMemoryRateLimiter


@dataclass
class _Charge:
    at: float
    tokens: int


class TokenWindow:
    """At most ``limit`` tokens in any rolling ``window_s`` (a call larger than the limit still
    runs, alone in the window)."""

    def __init__(
        self,
        limit: int,
        *,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("TokenWindow needs limit ≥ 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._charges: deque[_Charge] = deque()

    def used(self) -> int:
        """Tokens charged in the current window."""
        with self._lock:
            self._expire(self._clock())
            return sum(c.tokens for c in self._charges)

    def _expire(self, now: float) -> None:
        while self._charges and self._charges[0].at <= now - self.window_s:
            self._charges.popleft()

    def _try_reserve(self, tokens: int) -> _Charge | float:
        """The reservation, or the seconds to wait before enough tokens expire."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            used = sum(c.tokens for c in self._charges)
            if not self._charges or used + tokens <= self.limit:
                charge = _Charge(now, tokens)
                self._charges.append(charge)
                return charge
            excess = used + tokens - self.limit
            for old in self._charges:
                excess -= old.tokens
                if excess <= 0:
                    return max(old.at + self.window_s - now, 0.001)
            return max(self._charges[-1].at + self.window_s - now, 0.001)

    async def reserve(self, tokens: int) -> _Charge:
        """Wait until ``tokens`` fit in the window, then charge them."""
        while True:
            outcome = self._try_reserve(max(tokens, 0))
            if isinstance(outcome, _Charge):
                return outcome
            # Another call's settle() may free tokens early: re-check at least twice a second.
            await asyncio.sleep(min(outcome, 0.5))

    def settle(self, charge: _Charge, tokens: int) -> None:
        """Replace a reservation's estimate by the tokens the call really used."""
        with self._lock:
            charge.tokens = max(tokens, 0)


call_rank: ContextVar[int] = ContextVar("clinsynth_call_rank", default=0)
"""Launch order of the item whose LLM calls run in this context (set by the batch runner)."""


class Slots:
    """``n`` request slots; waiters are served in arrival order, or newest item first.

    Written here because ``asyncio.Semaphore`` serves only in arrival order. At the end of a
    run the items in flight finish their last calls and nothing replaces them; the newest
    items have the most calls left, and serving them first lets the last calls end together
    instead of the newest items waiting a turn behind older ones for each of theirs.
    """

    def __init__(self, n: int) -> None:
        self._free = n
        self._newest_first = False
        self._arrival = itertools.count()
        # (priority, arrival, item rank, future): a heap, first entry served first.
        self._waiters: list[tuple[int, int, int, asyncio.Future[None]]] = []

    def serve_newest_first(self, newest_first: bool) -> None:
        """Serve waiters newest item first (True) or in arrival order (False) from now on."""
        if newest_first != self._newest_first:
            self._newest_first = newest_first
            self._waiters = [
                (-rank if newest_first else 0, n, rank, fut) for _, n, rank, fut in self._waiters
            ]
            heapq.heapify(self._waiters)

    async def __aenter__(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        rank = call_rank.get()
        priority = -rank if self._newest_first else 0
        heapq.heappush(self._waiters, (priority, next(self._arrival), rank, fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # handed a slot just before the cancel
                self._release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        while self._waiters:
            fut = heapq.heappop(self._waiters)[3]
            if not fut.done():  # cancelled waiters are skipped
                fut.set_result(None)
                return
        self._free += 1


class CallLimits:
    """The per-run limits around every LLM call (see ``StructuredLLM``): at most
    ``concurrency`` calls at once, ``rpm`` requests and ``tpm`` tokens per minute."""

    def __init__(
        self, rpm: int | None = None, tpm: int | None = None, *, concurrency: int | None = None
    ) -> None:
        if concurrency is not None and concurrency < 1:
            raise ValueError("CallLimits needs concurrency ≥ 1")
        self.rpm = rpm
        self.tpm = tpm
        self.concurrency = concurrency
        # Slots per event loop (their futures belong to one loop); entries of closed loops are
        # dropped when a new loop arrives.
        self._slots: dict[int, tuple[asyncio.AbstractEventLoop, Slots]] = {}
        self._slots_lock = threading.Lock()
        self.requests = (
            InMemoryRateLimiter(
                requests_per_second=rpm / 60,
                check_every_n_seconds=min(0.1, 15 / rpm),
                max_bucket_size=1,
            )
            if rpm
            else None
        )
        self.tokens = TokenWindow(tpm) if tpm else None

    def slot(self) -> Slots | None:
        """The running loop's ``concurrency`` request slots (None: no cap)."""
        if self.concurrency is None:
            return None
        loop = asyncio.get_running_loop()
        with self._slots_lock:
            entry = self._slots.get(id(loop))
            if entry is None or entry[0] is not loop:
                self._slots = {k: v for k, v in self._slots.items() if not v[0].is_closed()}
                entry = self._slots[id(loop)] = (loop, Slots(self.concurrency))
            return entry[1]

    def serve_newest_first(self, newest_first: bool) -> None:
        """Order the running loop's queued calls newest item first (the end of a run, when
        no item replaces a finished one) or by arrival (otherwise: no item waits forever)."""
        slots = self.slot()
        if slots is not None:
            slots.serve_newest_first(newest_first)

    @asynccontextmanager
    async def call(self, prompt_tokens: int) -> AsyncIterator[Callable[[int], None]]:
        """Hold one request's place (a slot, a turn of the requests per minute, its prompt
        estimate in the token window); the yielded function settles the estimate with the
        real usage (a request that fails keeps its estimate charged)."""
        async with self.slot() or nullcontext(), self._rated(prompt_tokens) as report:
            yield report

    @asynccontextmanager
    async def _rated(self, prompt_tokens: int) -> AsyncIterator[Callable[[int], None]]:
        """Wait for the request and token windows."""
        if self.requests is not None:
            await self.requests.aacquire()
        charge = await self.tokens.reserve(prompt_tokens) if self.tokens is not None else None

        def report(tokens: int) -> None:
            if charge is not None and self.tokens is not None:
                self.tokens.settle(charge, tokens)

        yield report


def approx_tokens(text: str) -> int:
    """A rough token count for reserving budget before a call (about 4 characters a token)."""
    return (len(text) + 3) // 4
