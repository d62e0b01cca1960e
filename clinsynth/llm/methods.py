"""What one (endpoint, model) has shown: which structured-output method it accepts, and
whether it answers at all.

A method is proven by schema-valid output and is then used for every call, for good; it is
unsupported only on an explicit capability error (``errors.Unsupported``) that arrives
while it has never worked. Any other failure says nothing about the method. An endpoint that
refuses its first ``REFUSALS_WITHOUT_ANSWER`` requests without answering any is set up wrongly
(a parameter it rejects for every prompt), not troubled by a few prompts.
"""

from __future__ import annotations

import threading

from clinsynth.llm.errors import LLMConfigError

METHODS: tuple[str, ...] = ("json_schema", "function_calling", "json_mode")
"""The structured-output methods, best first."""
REFUSALS_WITHOUT_ANSWER = 8


class MethodChoice:
    """The methods still to try for one (endpoint, model); thread-safe, shared by every
    ``StructuredLLM`` on that pair. ``method`` other than "auto" fixes the method."""

    def __init__(self, method: str = "auto") -> None:
        if method != "auto" and method not in METHODS:
            raise LLMConfigError(f"unknown structured method {method!r}; use auto or {METHODS}")
        self._lock = threading.Lock()
        self._working: str | None = None if method == "auto" else method
        self._proven: set[str] = set()
        self._rejected: set[str] = set()
        self._answered = False
        self.refusals = 0
        """Requests refused so far."""

    @property
    def working(self) -> str | None:
        """The method in use: fixed, or the first one proven."""
        return self._working

    def candidates(self) -> list[str]:
        """The methods to try for the next call, in order."""
        with self._lock:
            if self._working is not None:
                return [self._working]
            return [m for m in METHODS if m not in self._rejected]

    def prove(self, method: str) -> None:
        """``method`` gave schema-valid output: it works here, for good."""
        with self._lock:
            self._proven.add(method)
            if self._working is None:
                self._working = method

    def reject(self, method: str) -> bool:
        """Take an explicit capability error as ``method``'s verdict unless it has worked;
        whether it was taken."""
        with self._lock:
            if method in self._proven:
                return False
            self._rejected.add(method)
            return True

    def answered(self) -> None:
        """The endpoint answered a request."""
        self._answered = True

    def refused(self) -> bool:
        """Count a refused request; whether the endpoint has now refused
        ``REFUSALS_WITHOUT_ANSWER`` requests without ever answering one."""
        with self._lock:
            self.refusals += 1
            return not self._answered and self.refusals >= REFUSALS_WITHOUT_ANSWER
