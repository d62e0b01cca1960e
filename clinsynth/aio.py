"""Running clinsynth's coroutines from synchronous entry points (CLI commands, sync tools).

``run`` uses uvloop's event loop where it is installed (a dependency on Linux and macOS) and
asyncio's otherwise. At 32 requests in flight the event loop is the busiest thing in the
process; uvloop's cut its CPU time by about a sixth in ``bench/throughput.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
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
