"""Accepted items/s and CPU per item for 1 and 2 Ray workers, against one process without Ray.

Each case makes the same job: the qa recipe with scripted 'accept' replies from the stub server
in its own process (``--latency`` seconds per call), the hashing embedder, a synthetic corpus
of distinct notes, ``near_duplicate_threshold`` 1.0 (no near-duplicate retries), C =
``--concurrency`` LLM requests in flight per worker. At C = 64 and 0.05 s per call the
endpoint allows ~400 items/s per worker, so a worker is CPU-bound (one event loop manages
~50-60/s): that is the case where a second worker process should pay.

Cases, in one run (the machine is shared and noisy, so they are compared within a run):
- ``single``: the usual ``BatchRunner`` in this process, no Ray (the trivial baseline);
- ``workers=1`` and ``workers=2``: ``clinsynth.scale`` on a local Ray instance of 2 CPUs.

Per case: items/s over the driver's wall time (Ray actors' start included), over the
workers' own wall time (from building their run to their last item) and over their item loops
alone (no start-up); CPU seconds per accepted item (workers + coordinator + driver, and the
workers' item loops alone); the stub server's CPU seconds and how many of the machine's cores
were busy on average (all processes, ``/proc/stat``), to tell whether a case had cores to
spare; the load average before and after each case.
Writes bench/results/scale.json.

    python bench/scale.py [--items 600] [--latency 0.05] [--concurrency 64] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from throughput import machine, stub_process, synthetic_corpus  # noqa: E402

from clinsynth.config import RunConfig, Settings  # noqa: E402
from clinsynth.generate_options import ResolvedRun  # noqa: E402
from clinsynth.graphs.batch import BatchRunner  # noqa: E402
from clinsynth.graphs.factory import build_deps  # noqa: E402
from clinsynth.memory.embeddings import HashingEmbedder  # noqa: E402
from clinsynth.runtime import aio  # noqa: E402


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_busy_s() -> float:
    """CPU seconds all processes of the machine have spent busy (``/proc/stat``: every state
    but idle and iowait), to tell how many of the cores a case kept busy."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(v) for v in fields]
    idle = ticks[3] + ticks[4]
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def stub_cpu_s() -> float:
    """CPU seconds of the stub server process (found by its command line among this
    process's children), 0.0 where there is no ``/proc``."""
    me = str(os.getpid())
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parts = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if parts[1] == me and b"clinsynth.testing.stub_server" in cmdline:
            total += (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_single(settings: Settings, run: RunConfig, out: Path) -> dict[str, Any]:
    deps, meter = build_deps(settings, run, embedder=HashingEmbedder())
    t0, cpu0 = time.perf_counter(), time.process_time()
    summary = aio.run(BatchRunner(deps, out, meter=meter).run())
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "case": "single",
        "workers": 0,
        "accepted": summary.accepted,
        "candidates": summary.candidates,
        "wall_s": round(wall, 3),
        "items_per_s": round(summary.accepted / wall, 2),
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_item": round(1000 * cpu / summary.accepted, 2),
    }


def run_workers(settings: Settings, run: RunConfig, out: Path, workers: int) -> dict[str, Any]:
    from clinsynth.scale.driver import DistributedRun

    resolved = ResolvedRun(run, settings, settings.endpoints(), out)
    deps, _ = build_deps(settings, run, endpoints=resolved.endpoints, embedder=HashingEmbedder())
    t0, cpu0 = time.perf_counter(), time.process_time()
    summary = DistributedRun(resolved, deps, workers).run()
    wall, driver_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    manifest = json.loads((out / "manifest.json").read_text())
    info = manifest["distributed"]
    per_worker = info["per_worker"]
    worker_wall = max(w["wall_s"] for w in per_worker.values())
    worker_cpu = sum(w["cpu_s"] for w in per_worker.values())
    loop_wall = max(w["last"]["loop_wall_s"] for w in per_worker.values())
    loop_cpu = sum(w["last"]["loop_cpu_s"] for w in per_worker.values())
    cpu = worker_cpu + (info.get("coordinator_cpu_s") or 0.0) + driver_cpu
    return {
        "case": f"workers={workers}",
        "workers": workers,
        "accepted": summary.accepted,
        "candidates": summary.candidates,
        "wall_s": round(wall, 3),
        "items_per_s": round(summary.accepted / wall, 2),
        "worker_wall_s": round(worker_wall, 3),
        "items_per_s_worker_wall": round(summary.accepted / worker_wall, 2),
        "item_loop_wall_s": round(loop_wall, 3),
        "items_per_s_item_loop": round(summary.accepted / loop_wall, 2),
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_item": round(1000 * cpu / summary.accepted, 2),
        "item_loop_cpu_ms_per_item": round(1000 * loop_cpu / summary.accepted, 2),
        "cpu_s_by_part": {
            "workers": round(worker_cpu, 3),
            "coordinator": info.get("coordinator_cpu_s"),
            "driver": round(driver_cpu, 3),
        },
        "per_worker": {
            k: {f: w[f] for f in ("accepted", "started", "wall_s", "cpu_s")}
            for k, w in per_worker.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=600, help="accepted items per case")
    parser.add_argument("--latency", type=float, default=0.05, help="stub seconds per call")
    parser.add_argument("--concurrency", type=int, default=64, help="C per worker")
    parser.add_argument("--quick", action="store_true", help="60 items (smoke test)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "scale.json")
    args = parser.parse_args()
    items = 60 if args.quick else args.items
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    results = []
    load_before = load()
    with tempfile.TemporaryDirectory() as tmp, stub_process(args.latency) as base_url:
        store = Path(tmp) / "store"
        synthetic_corpus(store, 4 * items + 64)
        settings = Settings(
            base_url=base_url, api_key="bench", model="stub", embedder="hashing",
            max_retries=0, store=store,
        )  # fmt: skip
        run = RunConfig(
            n=items,
            max_concurrency=args.concurrency,
            checkpoint="step",
            recipe_options={"unanswerable_share": 0.0, "near_duplicate_threshold": 1.0},
        )
        for case in ("single", 1, 2):
            out = Path(tmp) / f"run-{case}"
            before = load()
            busy0, stub0, t0 = machine_busy_s(), stub_cpu_s(), time.perf_counter()
            if case == "single":
                res = run_single(settings, run, out)
            else:
                res = run_workers(settings, run, out, int(case))
            wall = time.perf_counter() - t0
            res["stub_cpu_s"] = round(stub_cpu_s() - stub0, 3)
            res["machine_busy_cores"] = round((machine_busy_s() - busy0) / wall, 3)
            res["load_before"], res["load_after"] = before, load()
            results.append(res)
            print(
                f"{res['case']}: {res['accepted']} accepted in {res['wall_s']}s → "
                f"{res['items_per_s']}/s ({res.get('items_per_s_item_loop', '-')}/s over the "
                f"item loops), {res['cpu_ms_per_item']} ms CPU/item "
                f"({res.get('item_loop_cpu_ms_per_item', '-')} in the loops), "
                f"load {res['load_after']}",
                flush=True,
            )
    ray.shutdown()
    by = {r["case"]: r for r in results}
    one, two = by["workers=1"], by["workers=2"]
    report = {
        "benchmark": "scale",
        "what": "accepted items/s and CPU/item for 1 and 2 Ray workers vs one process (no Ray)",
        "goal": "2 workers ≥ 1.7 × 1 worker when the single worker is CPU-bound",
        "setup": (
            "qa recipe, scripted 'accept' replies from the stub server in its own process, "
            "hashing embedder, near_duplicate_threshold 1.0, synthetic corpus of distinct notes "
            "(seeded), local Ray instance of 2 CPUs; the data are synthetic, no split applies"
        ),
        "latency_s": args.latency,
        "concurrency_per_worker": args.concurrency,
        "items": items,
        "seed": run.seed,
        "quick": args.quick,
        **machine(),
        "load_before": load_before,
        "load_after": load(),
        "results": results,
        "speedup_2_vs_1_workers": round(two["items_per_s"] / one["items_per_s"], 3),
        "speedup_2_vs_1_workers_worker_wall": round(
            two["items_per_s_worker_wall"] / one["items_per_s_worker_wall"], 3
        ),
        "speedup_2_vs_1_workers_item_loop": round(
            two["items_per_s_item_loop"] / one["items_per_s_item_loop"], 3
        ),
        "speedup_2_workers_vs_single_process": round(
            two["items_per_s"] / by["single"]["items_per_s"], 3
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
