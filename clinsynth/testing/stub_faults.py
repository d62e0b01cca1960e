"""What the stub server injects and counts: fault kinds and rates, received requests, stats."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

FaultKind = Literal[
    "429",
    "500",
    "timeout",
    "truncated",
    "malformed_json",
    "drop",
    "html",
    "not_json",
    "empty",
    "no_choices",
    "oversized",
]
Responder = Callable[[dict[str, Any]], "str | dict[str, Any]"]

RATE_FIELDS: tuple[tuple[FaultKind, str], ...] = (
    ("429", "rate_429"),
    ("500", "rate_500"),
    ("timeout", "rate_timeout"),
    ("truncated", "rate_truncated"),
    ("malformed_json", "rate_malformed_json"),
    ("drop", "rate_drop"),
    ("html", "rate_html"),
    ("not_json", "rate_not_json"),
    ("empty", "rate_empty"),
    ("no_choices", "rate_no_choices"),
    ("oversized", "rate_oversized"),
)


class FaultConfig(BaseModel):
    """Fault injection: per-request probabilities, plus a fixed sequence applied first."""

    rate_429: float = Field(default=0.0, ge=0, le=1)
    rate_500: float = Field(default=0.0, ge=0, le=1)
    rate_timeout: float = Field(default=0.0, ge=0, le=1)
    rate_truncated: float = Field(default=0.0, ge=0, le=1)
    rate_malformed_json: float = Field(default=0.0, ge=0, le=1)
    rate_drop: float = Field(default=0.0, ge=0, le=1)
    rate_html: float = Field(default=0.0, ge=0, le=1)
    rate_not_json: float = Field(default=0.0, ge=0, le=1)
    rate_empty: float = Field(default=0.0, ge=0, le=1)
    rate_no_choices: float = Field(default=0.0, ge=0, le=1)
    rate_oversized: float = Field(default=0.0, ge=0, le=1)
    oversized_bytes: int = Field(default=20_000_000, ge=1)
    """Size of the body an ``oversized`` fault sends (a valid completion padded out)."""
    refuse_marker: str | None = None
    """Requests whose messages contain this text are answered 400 with ``refuse_message``
    (a hosted API's content filter or a bad parameter for one prompt), never a capability."""
    refuse_message: str = "the prompt was flagged by the content filter (stub)"
    retry_after_s: float = Field(default=0.05, ge=0)
    timeout_sleep_s: float = Field(default=2.0, ge=0)
    sequence: list[FaultKind | None] = Field(default_factory=list)
    """Faults for the first completion requests, in order (``None`` = no fault)."""

    @model_validator(mode="after")
    def _rates_sum_to_at_most_one(self) -> FaultConfig:
        total = sum(getattr(self, name) for _, name in RATE_FIELDS)
        if total > 1:
            raise ValueError(f"fault rates sum to {total:.3f} > 1")
        return self


@dataclass
class Received:
    """One request as the server saw it."""

    at: float
    path: str
    body: dict[str, Any]
    fault: FaultKind | None = None


@dataclass
class StubStats:
    """Thread-safe counters of what the server did."""

    requests: int = 0
    completions: int = 0
    rejected: int = 0
    refused: int = 0
    """Requests answered 400 for their prompt (``refuse_marker``)."""
    in_flight: int = 0
    peak_in_flight: int = 0
    """Most chat-completion requests the server was handling at once."""
    faults: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bump(self, name: Literal["requests", "completions", "rejected", "refused"]) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def bump_fault(self, kind: FaultKind) -> None:
        with self._lock:
            self.faults[kind] += 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "completions": self.completions,
                "rejected": self.rejected,
                "refused": self.refused,
                "peak_in_flight": self.peak_in_flight,
                "faults": dict(self.faults),
            }
