"""Running clinsynth's coroutines from synchronous entry points (CLI commands, sync tools).

``run`` uses uvloop's event loop where it is installed (a dependency on Linux and macOS) and
asyncio's otherwise. At 32 requests in flight the event loop is the busiest thing in the
process; uvloop's cut its CPU time by about a sixth in ``bench/throughput.py``.

``quiet_gc`` keeps the cyclic garbage collector from stalling a long run; it changes
process-wide state, so only a process that runs nothing else (the CLI) opts in to it
(``BatchRunner(gc_tuning=True)``). ``LoopStalls`` measures how long the event loop stalls.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None (asyncio's default) where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)`` on the fastest event loop available."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coro)


_gc_lock = threading.Lock()
_gc_blocks = 0
_gc_threshold: tuple[int, int, int] | None = None

#: Allocations between young-generation collections inside ``quiet_gc`` (Python's default: 700).
YOUNG_GC_THRESHOLD = 20_000


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Fewer and shorter pauses of the cyclic garbage collector while the block runs.

    A full collection walks every tracked object: with the embedding model, Chroma and the
    LLM clients loaded that is over 600,000 objects and about 0.35 s on one core, and in a
    batch run the collector ran one every few seconds, stalling the event loop and every
    request in flight. The objects alive when the block starts are frozen (``gc.freeze``),
    so collections skip them, and young collections run every ``YOUNG_GC_THRESHOLD``
    allocations instead of every 700. Over 1,536 items at 32 requests in flight, time in the
    collector fell from about 3 s to under 0.1 s (``bench/throughput.py``). The run's own
    garbage is still collected. Nested or concurrent blocks share one setting, restored when
    the last one ends.
    """
    global _gc_blocks, _gc_threshold
    with _gc_lock:
        if _gc_blocks == 0:
            _gc_threshold = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(_gc_threshold[0], YOUNG_GC_THRESHOLD), *_gc_threshold[1:])
        _gc_blocks += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_blocks -= 1
            if _gc_blocks == 0 and _gc_threshold is not None:
                gc.set_threshold(*_gc_threshold)
                gc.unfreeze()


class LoopStalls:
    """A heartbeat on the running event loop: a task that sleeps ``interval_s`` and records how
    late it wakes. The longest lateness is the longest time the loop could not run a callback;
    ``stalls`` lists (``time.perf_counter()`` at the wake-up, lateness) of those over
    ``record_over_s``.

        async with LoopStalls() as stalls:
            await work()
        stalls.longest_s
    """

    def __init__(self, interval_s: float = 0.005, record_over_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.record_over_s = record_over_s
        self.longest_s = 0.0
        self.beats = 0
        self.stalls: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            now = time.perf_counter()
            late = now - t0 - self.interval_s
            self.longest_s = max(self.longest_s, late)
            if late > self.record_over_s:
                self.stalls.append((now, late))
            self.beats += 1

    async def __aenter__(self) -> LoopStalls:
        self._task = asyncio.create_task(self._beat())
        await asyncio.sleep(0)  # the first beat starts before the measured work
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
