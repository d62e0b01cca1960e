"""``max_concurrency`` caps requests at the endpoint, while the runner keeps more items going."""

from __future__ import annotations

import asyncio
from pathlib import Path

from clinsynth.config import RunConfig, Settings
from clinsynth.graphs.batch import BatchRunner, Progress
from clinsynth.graphs.factory import build_deps
from clinsynth.memory.embeddings import HashingEmbedder
from clinsynth.testing.qa_responder import make_responder
from clinsynth.testing.stub_server import StubServer


def test_requests_at_the_endpoint_never_exceed_the_concurrency(
    demo_store_path: Path, tmp_path: Path
) -> None:
    with StubServer(make_responder("accept"), latency_s=0.05) as stub:
        settings = Settings(
            base_url=stub.base_url, api_key="k", model="stub", embedder="hashing", max_retries=0
        )
        run = RunConfig(n=16, max_concurrency=4, recipe_options={"unanswerable_share": 0.0})
        deps, meter = build_deps(
            settings, run, store_path=demo_store_path, embedder=HashingEmbedder()
        )
        items_in_flight: list[int] = []

        def note(p: Progress) -> None:
            items_in_flight.append(p.in_flight)

        runner = BatchRunner(deps, tmp_path / "run", on_progress=note, meter=meter)
        summary = asyncio.run(runner.run())
        peak = stub.stats.peak_in_flight
    assert summary.accepted == 16
    assert peak == 4, f"the endpoint saw {peak} requests at once"
    # More items than request slots were in flight (8 = 2 × 4), so slots never idled
    # while an item was between calls.
    assert max(items_in_flight) > 4
