"""Several base URLs for one model (replicas of one vLLM deployment, say): which one each
HTTP request goes to, and each one's own requests-per-minute limit.

An endpoint's ``base_url`` may list replicas separated by commas; the chat model is built on
the first and its HTTP transport (``llm.transport``) sends each request to the replica that
:class:`Replicas` picks: ``least-loaded`` (fewest requests waiting for their reply, then
fewest sent) or ``round-robin``. The run's own limits (concurrency, rpm, tpm) still apply to
all replicas together; ``endpoint_rpm`` caps each replica on top.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from langchain_core.rate_limiters import InMemoryRateLimiter

Routing = Literal["least-loaded", "round-robin"]


def split_base_urls(base_url: str | None) -> list[str]:
    """The replicas named in ``base_url`` (comma-separated), without trailing slashes."""
    if not base_url:
        return []
    return [u.strip().rstrip("/") for u in base_url.split(",") if u.strip()]


class Replicas:
    """Picks a replica per request and counts what each one has in flight and has served."""

    def __init__(
        self, base_urls: list[str], routing: Routing = "least-loaded", rpm: int | None = None
    ) -> None:
        if not base_urls:
            raise ValueError("Replicas needs at least one base URL")
        if routing not in ("least-loaded", "round-robin"):
            raise ValueError(f"unknown routing {routing!r} (use least-loaded or round-robin)")
        self.urls = [u.rstrip("/") for u in base_urls]
        self.routing = routing
        self.in_flight = [0] * len(self.urls)
        self.sent = [0] * len(self.urls)
        self._turn = itertools.count()
        self._rates = [
            InMemoryRateLimiter(
                requests_per_second=rpm / 60,
                check_every_n_seconds=min(0.1, 15 / rpm),
                max_bucket_size=1,
            )
            if rpm
            else None
            for _ in self.urls
        ]

    def choose(self) -> int:
        """The replica for the next request."""
        if self.routing == "round-robin":
            return next(self._turn) % len(self.urls)
        return min(range(len(self.urls)), key=lambda i: (self.in_flight[i], self.sent[i]))

    def rewrite(self, url: str, replica: int) -> str:
        """``url`` (built on the first replica) sent to ``replica`` instead."""
        first = self.urls[0]
        if not url.startswith(first):
            return url
        return self.urls[replica] + url[len(first) :]

    @asynccontextmanager
    async def route(self, url: str) -> AsyncIterator[str]:
        """Hold a place at the chosen replica (after its rate limit's turn) and yield the URL
        to send to; the place is released when the reply's head has arrived."""
        replica = self.choose()
        self.in_flight[replica] += 1
        try:
            rate = self._rates[replica]
            if rate is not None:
                await rate.aacquire()
            self.sent[replica] += 1
            yield self.rewrite(url, replica)
        finally:
            self.in_flight[replica] -= 1

    def stats(self) -> dict[str, int]:
        """Requests sent to each replica."""
        return dict(zip(self.urls, self.sent, strict=True))
