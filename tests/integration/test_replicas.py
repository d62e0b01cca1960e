"""Several base URLs for one role: requests spread round-robin or to the least-loaded replica,
each replica under its own requests-per-minute limit."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from clinsynth.config import RunConfig, Settings
from clinsynth.graphs.batch import BatchRunner
from clinsynth.graphs.factory import build_deps
from clinsynth.llm.replicas import Replicas, split_base_urls
from clinsynth.memory.embeddings import HashingEmbedder
from clinsynth.testing.qa_responder import make_responder
from clinsynth.testing.stub_server import StubServer


def chat_requests(stub: StubServer) -> int:
    return sum(1 for r in stub.received if r.path.endswith("/chat/completions"))


def run_against(urls: str, routing: str, store: Path, out: Path) -> int:
    settings = Settings(
        base_url=urls, api_key="k", model="stub", embedder="hashing", max_retries=0,
        routing=routing,
    )  # fmt: skip
    run = RunConfig(n=8, max_concurrency=4, recipe_options={"unanswerable_share": 0.0})
    deps, meter = build_deps(settings, run, store_path=store, embedder=HashingEmbedder())
    summary = asyncio.run(BatchRunner(deps, out, meter=meter).run())
    return summary.accepted


def test_round_robin_spreads_requests_evenly(demo_store_path: Path, tmp_path: Path) -> None:
    with (
        StubServer(make_responder("accept")) as a,
        StubServer(make_responder("accept"), latency_s=0.05) as b,
    ):
        urls = f"{a.base_url}, {b.base_url}/"
        assert run_against(urls, "round-robin", demo_store_path, tmp_path / "run") == 8
        sent = (chat_requests(a), chat_requests(b))
    assert sum(sent) >= 24 and abs(sent[0] - sent[1]) <= 1, sent


def test_least_loaded_favours_the_faster_replica(demo_store_path: Path, tmp_path: Path) -> None:
    with (
        StubServer(make_responder("accept")) as fast,
        StubServer(make_responder("accept"), latency_s=0.3) as slow,
    ):
        urls = f"{slow.base_url},{fast.base_url}"
        assert run_against(urls, "least-loaded", demo_store_path, tmp_path / "run") == 8
        sent = (chat_requests(fast), chat_requests(slow))
    # Round-robin would split them evenly (the test above); the slow one answers 0.3 s late.
    assert sent[0] > sent[1] > 0, sent


def test_each_replica_keeps_its_own_rate_limit() -> None:
    def routed(replicas: Replicas, count: int) -> tuple[float, list[str]]:
        async def go() -> list[str]:
            out = []
            for _ in range(count):
                async with replicas.route("http://a/v1/chat/completions") as url:
                    out.append(url)
            return out

        t0 = time.monotonic()
        urls = asyncio.run(go())
        return time.monotonic() - t0, urls

    one, _ = routed(Replicas(["http://a/v1"], "round-robin", rpm=600), 6)
    two, urls = routed(Replicas(["http://a/v1", "http://b/v1"], "round-robin", rpm=600), 6)
    assert one >= 0.45  # 6 requests, one every 0.1 s after the first
    assert urls == ["http://a/v1/chat/completions", "http://b/v1/chat/completions"] * 3
    assert split_base_urls(" http://a/v1/ ,http://b/v1") == ["http://a/v1", "http://b/v1"]
    assert two < one
