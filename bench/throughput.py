"""Throughput of the batch runner against the stub server, compared with its ideal limit.

With C LLM requests in flight (``--concurrency``; the runner keeps 2 × C items in flight so
that requests do not wait for items between calls), every call taking ``latency`` seconds and
k calls per accepted item, no runner can accept more than C / (k × latency) items per second.
This runs the ``qa`` recipe on the CLI's event loop (``clinsynth.runtime.aio``: uvloop where
installed)
end to end (batch runner → LangGraph item graph checkpointed in SQLite → Chroma → LangChain →
OpenAI SDK → HTTP) at C = 1, 8 and 32 and reports accepted items/s as a ratio of that limit,
plus LLM calls and tokens per accepted item. The stub server runs in its own process so its
threads do not compete with the runner for the GIL. By default each case runs twice, with the
runner's garbage-collector setting (``BatchRunner(gc_tuning=True)``, as the CLI runs) and with
Python's default, and reports the time spent in the collector. Every case reports the longest
event-loop stall (a heartbeat task on the run's loop, ``clinsynth.runtime.aio.LoopStalls``).

The ``reader`` case puts a real extractive-QA reader in the critic (``TrainedReader`` over a
BERT built here with random weights, ``--reader-size``: no model hub, no training), so every
item runs reader inference, which must stay off the event loop (goal: longest stall < 50 ms).
Writes bench/results/throughput.json; a run of only some case kinds keeps the other kinds'
results already in the file.

    python bench/throughput.py [--latency 0.2] [--quick] [--cases plain reader]
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clinsynth.config import RunConfig, Settings  # noqa: E402
from clinsynth.graphs.batch import (  # noqa: E402
    BatchRunner,
    RunSummary,
    package_versions,
    pool_size,
)
from clinsynth.graphs.factory import build_deps  # noqa: E402
from clinsynth.memory.embeddings import HashingEmbedder  # noqa: E402
from clinsynth.memory.store import VectorStore  # noqa: E402
from clinsynth.runtime import aio  # noqa: E402
from clinsynth.schemas import SourceChunk  # noqa: E402

WORDS = (
    "dyspnoea oedema troponin creatinine lactate sepsis wheeze crackles bradycardia tachycardia "
    "hypoxia fever cough rash nausea syncope anaemia ascites jaundice pruritus ataxia tremor "
    "vertigo myalgia arthralgia haematuria proteinuria hyperkalaemia hyponatraemia"
)


@contextmanager
def stub_process(latency: float) -> Iterator[str]:
    """The stub server (scripted qa replies) in a separate process; yields its base URL."""
    cmd = [sys.executable, "-m", "clinsynth.testing.stub_server", "--latency", str(latency)]
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


async def with_heartbeat(runner: BatchRunner) -> tuple[RunSummary, aio.LoopStalls]:
    """The run, with a heartbeat on its event loop (5 ms sleeps; their longest lateness)."""
    async with aio.LoopStalls(0.005, record_over_s=0.0) as stalls:
        summary = await runner.run()
    return summary, stalls


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank; 0 when empty)."""
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0


def random_reader(directory: Path, hidden: int, layers: int) -> Path:
    """A saved extractive-QA reader over a BERT with random weights (``layers`` × ``hidden``,
    WordPiece vocabulary: the corpus words), as ``clinsynth train`` would save a trained one."""
    from transformers import BertConfig, BertForQuestionAnswering, BertTokenizerFast

    from clinsynth.finetune import QAConfig, Reader

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = "patient was seen on ward with the team reviewed chart and adjusted therapy day"
    vocab = [*special, ".", ",", "?", *dict.fromkeys([*WORDS.split(), *words.split()])]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(directory / "vocab.txt"))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(hidden // 64, 1),
        intermediate_size=4 * hidden,
        max_position_embeddings=512,
    )
    reader = Reader(BertForQuestionAnswering(config).eval(), tokenizer, QAConfig())
    reader.save(directory / "reader")
    return directory / "reader"


def run_case(
    store: Path,
    base_url: str,
    latency: float,
    concurrency: int,
    items: int,
    checkpoint: str,
    gc_mode: str = "quiet",
    reader: Path | None = None,
) -> dict[str, Any]:
    settings = Settings(
        base_url=base_url, api_key="bench", model="stub", embedder="hashing", max_retries=0
    )
    run = RunConfig(
        n=items,
        max_concurrency=concurrency,
        checkpoint=checkpoint,
        recipe_options={
            "unanswerable_share": 0.0,
            "near_duplicate_threshold": 1.0,
            **({"reader_path": str(reader)} if reader else {}),
        },
    )
    deps, meter = build_deps(settings, run, store_path=store, embedder=HashingEmbedder())
    with tempfile.TemporaryDirectory() as out:
        t0, cpu0 = time.perf_counter(), time.process_time()
        marks: list[tuple[float, int]] = []
        # "default" runs without the runner's collector setting (aio.quiet_gc), to compare.
        runner = BatchRunner(deps, Path(out) / "run", meter=meter, gc_tuning=gc_mode == "quiet")
        runner.on_progress = lambda p: marks.append((time.perf_counter(), p.accepted))
        with gc_pauses() as pauses:
            summary, stalls = aio.run(with_heartbeat(runner))
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
        "loop_stall_longest_ms": round(1000 * stalls.longest_s, 1),
        # After the first accepted item: the run's one-off start (graph, files, HTTP pool) is over.
        "loop_stall_longest_after_first_accept_ms": round(
            1000 * max((late for at, late in stalls.stalls if at > marks[0][0]), default=0.0), 1
        ),
        "loop_stalls_over_50ms": sum(late > 0.05 for _, late in stalls.stalls),
        "loop_stall_p99_ms": round(1000 * percentile([late for _, late in stalls.stalls], 0.99), 1),
        "raw_sdk_ratio": round(raw_calls_per_s / raw_limit_calls, 3),
        "ratio_vs_raw_sdk": round((rate * calls_per_item) / raw_calls_per_s, 3),
        "llm_calls_per_accepted": round(calls_per_item, 3),
        "tokens_per_accepted": round(summary.usage.total_tokens / items, 1),
    }


def describe(res: dict[str, Any]) -> str:
    """One line on a case's result."""
    return (
        f"C={res['concurrency']} checkpoint={res['checkpoint']} gc={res['gc']}: "
        f"{res['items']} accepted in {res['wall_s']}s → "
        f"{res['accepted_per_s']}/s vs limit {res['limit_per_s']}/s "
        f"(ratio {res['ratio']}, steady state {res['steady_state_ratio']}; "
        f"bare SDK ratio {res['raw_sdk_ratio']}); "
        f"{res['llm_calls_per_accepted']} calls, "
        f"{res['tokens_per_accepted']} tokens per accepted item; "
        f"{res['gc_collections']} collections, {res['gc_total_s']}s in the collector; "
        f"longest event-loop stall {res['loop_stall_longest_ms']} ms "
        f"({res['loop_stall_longest_after_first_accept_ms']} ms after the first accepted item, "
        f"{res['loop_stalls_over_50ms']} over 50 ms, p99 {res['loop_stall_p99_ms']} ms)"
    )


def reader_ms_per_call(path: Path, calls: int = 20) -> float:
    """Mean wall time of one answer of the saved reader (a passage of the synthetic corpus)."""
    from clinsynth.recipes.qa import TrainedReader

    reader = TrainedReader(path)
    reader.load()
    context = "Patient 3 was seen on ward 3 with fever cough rash. The team reviewed the chart."
    reader.answer("what was seen on ward 3 ?", context)  # warm-up
    t0 = time.perf_counter()
    for _ in range(calls):
        reader.answer("what was seen on ward 3 ?", context)
    return 1000 * (time.perf_counter() - t0) / calls


def machine() -> dict[str, Any]:
    return {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1_5_15": os.getloadavg(),
        },
        "event_loop": "uvloop" if aio.loop_factory() else "asyncio",
        "versions": package_versions(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=["plain", "reader"],
        default=["plain", "reader"],
        help="plain: the C × checkpoint × gc matrix; reader: a real reader in the critic",
    )
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
    parser.add_argument("--reader-concurrency", type=int, default=8, help="C of the reader case")
    parser.add_argument("--reader-items", type=int, default=128, help="items of the reader case")
    parser.add_argument(
        "--reader-size",
        default="256x4",
        help="HIDDENxLAYERS of the random BERT under the reader (BERT-base is 768x12)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch intra-op threads of this process for the reader case (default: torch's)",
    )
    parser.add_argument("--quick", action="store_true", help="4 items per slot (smoke test)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "throughput.json")
    args = parser.parse_args()
    per_slot = 4 if args.quick else args.items_per_slot
    sizes = {c: max(per_slot * c, 16) for c in args.concurrency} if "plain" in args.cases else {}
    reader_items = 16 if args.quick else args.reader_items
    hidden, layers = (int(v) for v in args.reader_size.lower().split("x"))
    results = []
    reader_case: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory() as tmp, stub_process(args.latency) as base_url:
        store = Path(tmp) / "store"
        synthetic_corpus(store, max([*sizes.values(), reader_items]) + 16)
        cases = itertools.product(sizes.items(), args.checkpoint, args.gc)
        for (concurrency, items), mode, gc_mode in cases:
            res = run_case(store, base_url, args.latency, concurrency, items, mode, gc_mode)
            results.append(res)
            print(describe(res), flush=True)
        if "reader" in args.cases:
            import torch

            if args.torch_threads:
                torch.set_num_threads(args.torch_threads)  # this benchmark's own process
            reader = random_reader(Path(tmp) / "bert", hidden, layers)
            ms_per_call = reader_ms_per_call(reader)
            res = run_case(
                store,
                base_url,
                args.latency,
                args.reader_concurrency,
                reader_items,
                "item",
                "quiet",
                reader=reader,
            )
            print(f"reader ({args.reader_size}, {ms_per_call:.1f} ms a call): {describe(res)}")
            reader_case = {
                "what": "the longest event-loop stall with reader inference in every item",
                "target": "loop_stall_longest_ms < 50",
                "reader": (
                    f"TrainedReader over a BERT with random weights built locally, "
                    f"hidden {hidden} × {layers} layers, windows of 384 tokens (no trained "
                    "reader cached; BERT-base is 768 × 12)"
                ),
                "reader_ms_per_call": round(ms_per_call, 1),
                "inference_workers": Settings().inference_workers,
                "torch_threads": torch.get_num_threads(),
                "setup": (
                    "as the plain cases, with the qa recipe's reader_path: the critic scores "
                    "each item's difficulty with the reader (in the run's inference threads)"
                ),
                **machine(),
                "result": res,
            }
    # A run of some case kinds keeps the other kinds' results already in the file.
    report: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    report["benchmark"] = "throughput"
    if "plain" in args.cases:
        report.update(
            {
                "what": "accepted items/s vs the limit C / (LLM calls per accepted item × latency)",
                "latency_s": args.latency,
                "quick": args.quick,
                "items_per_slot": per_slot,
                "target": "ratio ≥ 0.9 at C = 8 and 32",
                "setup": (
                    "qa recipe, scripted 'accept' replies from the stub server in its own "
                    "process, hashing embedder, near_duplicate_threshold 1.0, synthetic corpus "
                    "of distinct notes"
                ),
                **machine(),
                "results": results,
            }
        )
    if reader_case is not None:
        report["reader_in_the_loop"] = {
            "latency_s": args.latency,
            "quick": args.quick,
            **reader_case,
        }
    report["load_avg_1_5_15_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
