"""Token accounting: usage per model name and per item in flight."""

from __future__ import annotations

import threading
from contextvars import ContextVar

from clinsynth.schemas import Usage

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
