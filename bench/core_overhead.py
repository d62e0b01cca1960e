"""Per-item framework overhead of the generation core against the local stub server.

For each (latency, concurrency) the same job runs twice in one process:
- ``clinsynth``: the batch runner → LangGraph item graph (checkpointed in SQLite) → retriever
  (Chroma) → reasoner / generator (LangChain → OpenAI SDK → HTTP) → critic → JSONL;
- ``raw``: the same number of chat-completion calls with the bare OpenAI SDK at the same
  concurrency, with no graph, store, checks or files.
Overhead per item = (clinsynth wall − raw wall) / items. Ratios are measured in one run because
these machines are noisy. Writes bench/results/core_overhead.json.

    python bench/core_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clinsynth.config import RunConfig, Settings  # noqa: E402
from clinsynth.graphs.batch import BatchRunner, package_versions  # noqa: E402
from clinsynth.graphs.factory import build_deps  # noqa: E402
from clinsynth.memory.embeddings import HashingEmbedder  # noqa: E402
from clinsynth.memory.ingest import ingest  # noqa: E402
from clinsynth.memory.store import VectorStore  # noqa: E402
from clinsynth.runtime import aio  # noqa: E402
from clinsynth.testing.qa_responder import make_responder  # noqa: E402
from clinsynth.testing.stub_server import StubServer  # noqa: E402

CORPUS = REPO / "clinsynth" / "data" / "demo_corpus"


async def raw_calls(base_url: str, bodies: list[dict[str, Any]], concurrency: int) -> float:
    """Wall time of sending ``bodies`` with the bare OpenAI SDK, ``concurrency`` at a time."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
    sem = asyncio.Semaphore(concurrency)

    async def one(body: dict[str, Any]) -> None:
        async with sem:
            await client.chat.completions.create(**body)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(b) for b in bodies))
    wall = time.perf_counter() - t0
    await client.close()
    return wall


def run_case(store: Path, latency: float, concurrency: int, items: int) -> dict[str, Any]:
    emb = HashingEmbedder()
    with StubServer(make_responder("accept"), latency_s=latency) as stub:
        settings = Settings(
            base_url=stub.base_url, api_key="bench", model="stub", embedder="hashing", max_retries=0
        )
        run = RunConfig(
            n=items,
            max_concurrency=concurrency,
            recipe_options={"unanswerable_share": 0.0, "near_duplicate_threshold": 1.0},
        )
        deps, meter = build_deps(settings, run, store_path=store, embedder=emb)
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            summary = aio.run(BatchRunner(deps, Path(out) / "run", meter=meter).run())
            wall = time.perf_counter() - t0
        bodies = [dict(r.body) for r in stub.received if r.path.endswith("/chat/completions")]
        calls = len(bodies)
        for body in bodies:
            body.pop("stream", None)
        raw_wall = aio.run(raw_calls(stub.base_url, bodies, concurrency))
    assert summary.accepted == items, summary
    ideal = calls * latency / concurrency
    return {
        "latency_s": latency,
        "concurrency": concurrency,
        "items": items,
        "llm_calls": calls,
        "clinsynth_wall_s": round(wall, 3),
        "raw_sdk_wall_s": round(raw_wall, 3),
        "ideal_wall_s": round(ideal, 3),
        "clinsynth_per_item_ms": round(1000 * wall / items, 2),
        "overhead_per_item_ms": round(1000 * (wall - raw_wall) / items, 2),
        "ratio_clinsynth_to_raw": round(wall / raw_wall, 3) if raw_wall else None,
        "items_per_s": round(items / wall, 2),
        "tokens": summary.usage.total_tokens,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few items (smoke test)")
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "core_overhead.json"
    )
    args = parser.parse_args()
    sizes = {(0.0, 1): 60, (0.0, 8): 120, (0.2, 1): 12, (0.2, 8): 48}
    if args.quick:
        sizes = {k: max(4, v // 12) for k, v in sizes.items()}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        # Small chunks so every item gets its own passage (no near-duplicate retries).
        ingest(CORPUS, VectorStore(store, HashingEmbedder()), chunk_size=300, chunk_overlap=0)
        results = []
        for (latency, concurrency), items in sizes.items():
            res = run_case(store, latency, concurrency, items)
            results.append(res)
            print(
                f"latency {latency:.1f}s C={concurrency}: {items} items, {res['llm_calls']} calls, "
                f"clinsynth {res['clinsynth_wall_s']}s vs raw SDK {res['raw_sdk_wall_s']}s "
                f"(ideal {res['ideal_wall_s']}s) → overhead {res['overhead_per_item_ms']} ms/item, "
                f"ratio {res['ratio_clinsynth_to_raw']}"
            )
    report = {
        "benchmark": "core_overhead",
        "what": "per-item framework overhead vs the bare OpenAI SDK making the same calls",
        "quick": args.quick,
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "versions": package_versions(),
        "embedder": "hashing (so embedding cost does not hide the framework's)",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
