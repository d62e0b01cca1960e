"""Throughput of the batch runner against the stub server, compared with its ideal limit.

With C LLM requests in flight (``--concurrency``; the runner keeps 2 × C items in flight so
that requests do not wait for items between calls), every call taking ``latency`` seconds and
k calls per accepted item, no runner can accept more than C / (k × latency) items per second.
This runs the ``qa`` recipe on the CLI's event loop (``clinsynth.aio``: uvloop where installed)
end to end (batch runner → LangGraph item graph checkpointed in SQLite → Chroma → LangChain →
OpenAI SDK → HTTP) at C = 1, 8 and 32 and reports accepted items/s as a ratio of that limit,
plus LLM calls and tokens per accepted item. The stub server runs in its own process so its
threads do not compete with the runner for the GIL. By default each case runs twice, with the
runner's garbage-collector setting (``clinsynth.aio.quiet_gc``) and with Python's default, and
reports the time spent in the collector. Writes bench/results/throughput.json.

    python bench/throughput.py [--latency 0.2] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any
from unittest.mock import patch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clinsynth import aio  # noqa: E402
from clinsynth.config import RunConfig, Settings  # noqa: E402
from clinsynth.graphs.batch import BatchRunner, package_versions, pool_size  # noqa: E402
from clinsynth.graphs.factory import build_deps  # noqa: E402
from clinsynth.memory.embeddings import HashingEmbedder  # noqa: E402
from clinsynth.memory.store import VectorStore  # noqa: E402
from clinsynth.schemas import SourceChunk  # noqa: E402

WORDS = (
    "dyspnoea oedema troponin creatinine lactate sepsis wheeze crackles bradycardia tachycardia "
    "hypoxia fever cough rash nausea syncope anaemia ascites jaundice pruritus ataxia tremor "
    "vertigo myalgia arthralgia haematuria proteinuria hyperkalaemia hyponatraemia"
)


@contextmanager
def stub_process(latency: float) -> Iterator[str]:
    """The stub server (scripted qa replies) in a separate process; yields its base URL."""
    cmd = [sys.executable, "-m", "tests.support.stub_server", "--latency", str(latency)]
    proc = subprocess.Popen(
        [*cmd, "--qa-mode", "accept"], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"stub server did not start: {line!r}")
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def synthetic_corpus(store: Path, docs: int) -> None:
    """``docs`` distinct short notes, so every item gets its own passage (no duplicates)."""
    rng = random.Random(0)
    vocabulary = WORDS.split()
    chunks = []
    for i in range(docs):
        words = " ".join(rng.sample(vocabulary, 8))
        text = (
            f"Patient {i} was seen on ward {i % 17} with {words}. "
            f"The team reviewed the chart and adjusted therapy on day {i % 9 + 1}."
        )
        chunks.append(SourceChunk(id=f"note-{i:05d}", text=text))
    VectorStore(store, HashingEmbedder()).add(chunks)


async def raw_sdk_rate(base_url: str, calls: int, concurrency: int) -> float:
    """Calls/s of the bare OpenAI SDK against the same stub: the ceiling of stub + machine."""
    from openai import AsyncOpenAI

    from clinsynth.recipes.qa import QADraft, prompts

    messages = prompts.question_messages(
        "Patient 1 was seen on ward 1 with fever and cough.",
        "{}",
        answerable=True,
        topic=None,
        difficulty=None,
        feedback=[],
    )
    body: dict[str, Any] = {
        "model": "stub",
        "messages": [
            {"role": "system" if m.type == "system" else "user", "content": m.content}
            for m in messages
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "QADraft",
                "schema": QADraft.model_json_schema(),
                "strict": False,
            },
        },
    }
    client = AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            await client.chat.completions.create(**body)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(calls)))
    wall = time.perf_counter() - t0
    await client.close()
    return calls / wall


@contextmanager
def gc_pauses() -> Iterator[list[float]]:
    """Yields a list that collects the duration of every garbage collection in the block."""
    pauses: list[float] = []
    started: list[float] = []

    def timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            pauses.append(time.perf_counter() - started.pop())

    gc.callbacks.append(timer)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(timer)


def run_case(
    store: Path,
    base_url: str,
    latency: float,
    concurrency: int,
    items: int,
    checkpoint: str,
    gc_mode: str = "quiet",
) -> dict[str, Any]:
    settings = Settings(
        base_url=base_url, api_key="bench", model="stub", embedder="hashing", max_retries=0
    )
    run = RunConfig(
        n=items,
        max_concurrency=concurrency,
        checkpoint=checkpoint,
        recipe_options={"unanswerable_share": 0.0, "near_duplicate_threshold": 1.0},
    )
    deps, meter = build_deps(settings, run, store_path=store, embedder=HashingEmbedder())
    with tempfile.TemporaryDirectory() as out:
        t0, cpu0 = time.perf_counter(), time.process_time()
        marks: list[tuple[float, int]] = []
        runner = BatchRunner(deps, Path(out) / "run", meter=meter)
        runner.on_progress = lambda p: marks.append((time.perf_counter(), p.accepted))
        # "default" runs without the runner's collector setting (aio.quiet_gc), to compare.
        setting = nullcontext if gc_mode == "default" else aio.quiet_gc
        with gc_pauses() as pauses, patch("clinsynth.graphs.batch.aio.quiet_gc", setting):
            summary = aio.run(runner.run())
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert summary.accepted == items, summary
    calls = summary.usage.calls
    calls_per_item = calls / items
    limit = concurrency / (calls_per_item * latency)
    rate = items / wall
    # Steady state: between the 10th and 90th percentile of accepted items (no ramp-up, and
    # no end of run, where a fixed target leaves slots idle while the last items finish).
    t10, a10 = next((t, a) for t, a in marks if a >= 0.1 * items)
    t90, a90 = next((t, a) for t, a in marks if a >= 0.9 * items)
    steady = (a90 - a10) / (t90 - t10) if t90 > t10 else float("nan")
    raw_calls_per_s = aio.run(raw_sdk_rate(base_url, calls, concurrency))
    raw_limit_calls = concurrency / latency
    return {
        "concurrency": concurrency,
        "items_in_flight": pool_size(concurrency, deps.llm.request_cap()),
        "checkpoint": checkpoint,
        "gc": gc_mode,
        "items": items,
        "rejected": summary.rejected,
        "surplus": summary.surplus,
        "wall_s": round(wall, 3),
        "accepted_per_s": round(rate, 2),
        "limit_per_s": round(limit, 2),
        "ratio": round(rate / limit, 3),
        "steady_state_ratio": round(steady / limit, 3),
        "first_accept_s": round(marks[0][0] - t0, 3),
        "cpu_ms_per_item": round(1000 * cpu / items, 2),
        "cpu_share_of_one_core": round(cpu / wall, 3),
        "gc_collections": len(pauses),
        "gc_total_s": round(sum(pauses), 3),
        "gc_longest_ms": round(1000 * max(pauses, default=0.0), 1),
        "raw_sdk_ratio": round(raw_calls_per_s / raw_limit_calls, 3),
        "ratio_vs_raw_sdk": round((rate * calls_per_item) / raw_calls_per_s, 3),
        "llm_calls_per_accepted": round(calls_per_item, 3),
        "tokens_per_accepted": round(summary.usage.total_tokens / items, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="stub seconds per call")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--checkpoint", nargs="+", default=["step", "item"], help="checkpoint modes to compare"
    )
    parser.add_argument(
        "--gc",
        nargs="+",
        choices=["quiet", "default"],
        default=["quiet", "default"],
        help="the runner's collector setting (aio.quiet_gc) or Python's default, to compare",
    )
    parser.add_argument(
        "--items-per-slot",
        type=int,
        default=48,
        help="items = this × C (a run's fixed start, ~0.2 s to its first request, weighs less)",
    )
    parser.add_argument("--quick", action="store_true", help="4 items per slot (smoke test)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "throughput.json")
    args = parser.parse_args()
    per_slot = 4 if args.quick else args.items_per_slot
    sizes = {c: max(per_slot * c, 16) for c in args.concurrency}
    results = []
    with tempfile.TemporaryDirectory() as tmp, stub_process(args.latency) as base_url:
        store = Path(tmp) / "store"
        synthetic_corpus(store, max(sizes.values()) + 16)
        cases = itertools.product(sizes.items(), args.checkpoint, args.gc)
        for (concurrency, items), mode, gc_mode in cases:
            res = run_case(store, base_url, args.latency, concurrency, items, mode, gc_mode)
            results.append(res)
            print(
                f"C={concurrency} checkpoint={mode} gc={gc_mode}: "
                f"{items} accepted in {res['wall_s']}s → "
                f"{res['accepted_per_s']}/s vs limit {res['limit_per_s']}/s "
                f"(ratio {res['ratio']}, steady state {res['steady_state_ratio']}; "
                f"bare SDK ratio {res['raw_sdk_ratio']}); "
                f"{res['llm_calls_per_accepted']} calls, "
                f"{res['tokens_per_accepted']} tokens per accepted item; "
                f"{res['gc_collections']} collections, {res['gc_total_s']}s in the collector",
                flush=True,
            )
    report = {
        "benchmark": "throughput",
        "what": "accepted items/s vs the limit C / (LLM calls per accepted item × latency)",
        "latency_s": args.latency,
        "quick": args.quick,
        "items_per_slot": per_slot,
        "target": "ratio ≥ 0.9 at C = 8 and 32",
        "setup": (
            "qa recipe, scripted 'accept' replies from the stub server in its own process, "
            "hashing embedder, near_duplicate_threshold 1.0, synthetic corpus of distinct notes"
        ),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "event_loop": "uvloop" if aio.loop_factory() else "asyncio",
        "versions": package_versions(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
