"""Where clinsynth's CPU per item goes: the peers workload under cProfile, by package.

Usage: python bench/profile_item.py [--concurrency 128] [--items-per-slot 4]
                                    [--checkpoint item|step] [--latency 0.2] [--out FILE]

The workload is bench/peers.py's (the ``qa`` recipe's three structured calls per item over
distinct notes, the stub server in its own process, ``latency`` s a call). Two runs in one
invocation, each against a fresh stub:

1. **plain**: no profiler; process CPU (user + system) per accepted item, measured around the
   batch run only (imports and the store are built before);
2. **profiled**: the same run under cProfile (main thread: the event loop and everything it
   runs inline; work in other threads is not seen, and the JSON gives the share of process CPU
   the profile did not see). The profiler slows Python calls, so the figures to compare are
   each package's *share* of profiled time, and per-item ms scaled to the plain run's CPU.

Functions are grouped by where their code lives: clinsynth's subpackages, each third-party
package (langgraph, langchain_core, openai, httpx, httpcore, pydantic, chromadb, …), the
standard library by module (asyncio, json, sqlite3, ssl, …), and C built-ins by the type they
belong to. Writes bench/results/profile_item.json (with the 30 functions of most own time).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import peers  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
SITE = [
    Path(p).resolve() for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
]


def group_of(filename: str, name: str) -> str:
    """The package (or clinsynth subpackage, or stdlib module) a profiled function lives in."""
    if filename == "~" or filename.startswith("<"):
        owner = name.split(" of ")[-1] if " of " in name else "'builtins'"
        return "C:" + owner.split("'")[1].split(".")[0] if "'" in owner else "C:" + owner
    path = Path(filename).resolve()
    if path.is_relative_to(REPO / "clinsynth"):
        parts = path.relative_to(REPO / "clinsynth").parts
        return "clinsynth." + (parts[0].removesuffix(".py") if len(parts) > 1 else "(top)")
    for site in SITE:
        if path.is_relative_to(site):
            return path.relative_to(site).parts[0].removesuffix(".py")
    if path.is_relative_to(STDLIB):
        return "stdlib:" + path.relative_to(STDLIB).parts[0].removesuffix(".py")
    return "other"


def start_stub(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "peers.py"), "serve", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"stub did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


def stop_stub(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.communicate(timeout=30)


def one_run(
    spec: dict[str, Any], args: argparse.Namespace, store: Path, profile: bool
) -> dict[str, Any]:
    """One batch run against a fresh stub; CPU and the profile cover ``runner.run()`` only
    (the deps, clients and store are built before, as a long-lived service would have them)."""
    from clinsynth.config import RunConfig, Settings
    from clinsynth.graphs.batch import BatchRunner
    from clinsynth.graphs.factory import build_deps
    from clinsynth.memory.embeddings import HashingEmbedder
    from clinsynth.runtime import aio

    proc, url = start_stub(args.latency)
    prof = cProfile.Profile() if profile else None
    try:
        settings = Settings(
            base_url=url, api_key="bench", model="stub", embedder="hashing", max_retries=0
        )
        run = RunConfig(
            n=len(spec["documents"]),
            max_concurrency=args.concurrency,
            checkpoint=args.checkpoint,
            recipe_options={"unanswerable_share": 0.0, "near_duplicate_threshold": 1.0},
        )
        deps, meter = build_deps(settings, run, store_path=store, embedder=HashingEmbedder())
        with tempfile.TemporaryDirectory() as out:
            runner = BatchRunner(deps, Path(out) / "run", meter=meter, gc_tuning=True)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if prof is not None:
                prof.enable()
            summary = aio.run(runner.run())
            if prof is not None:
                prof.disable()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        stop_stub(proc)
    out_row: dict[str, Any] = {
        "accepted": summary.accepted,
        "rejected": summary.rejected,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "cpu_ms_per_item": round(1000 * cpu / max(1, summary.accepted), 2),
    }
    if prof is not None:
        out_row["stats"] = prof
    return out_row


def summarise(prof: cProfile.Profile, accepted: int, plain_ms: float, top: int) -> dict[str, Any]:
    stats = pstats.Stats(prof)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())  # own time of every function
    groups: dict[str, float] = defaultdict(float)
    rows = []
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        g = group_of(filename, name)
        groups[g] += tottime
        rows.append((tottime, cumtime, ncalls, f"{g} {Path(filename).name}:{line} {name}"))
    scale = plain_ms / (1000 * total / max(1, accepted))  # profiled ms -> plain-run ms

    def ms(t: float) -> float:
        return round(1000 * t / max(1, accepted) * scale, 3)

    by_group = sorted(groups.items(), key=lambda kv: -kv[1])
    return {
        "profiled_own_time_s": round(total, 3),
        "scale_to_plain": round(scale, 3),
        "by_group": [
            {"group": g, "share": round(t / total, 4), "ms_per_item": ms(t)} for g, t in by_group
        ],
        "top_functions": [
            {
                "function": where,
                "calls_per_item": round(n / max(1, accepted), 2),
                "own_ms_per_item": ms(tt),
                "cum_ms_per_item": ms(ct),
            }
            for tt, ct, n, where in sorted(rows, reverse=True)[:top]
        ],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--concurrency", type=int, default=128)
    p.add_argument("--items-per-slot", type=int, default=4)
    p.add_argument("--checkpoint", choices=("item", "step"), default="item")
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "profile_item.json")
    args = p.parse_args()
    n = args.items_per_slot * args.concurrency
    spec = peers.workload(n)
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        peers.build_store(store, spec["documents"])
        plain = one_run(spec, args, store, profile=False)
        print(f"plain: {plain}")
        profiled = one_run(spec, args, store, profile=True)
    prof = profiled.pop("stats")
    summary = summarise(prof, profiled["accepted"], plain["cpu_ms_per_item"], args.top)
    seen = summary["profiled_own_time_s"] / max(1e-9, profiled["cpu_s"])
    result = {
        "benchmark": "CPU per accepted item of the qa workload (bench/peers.py), by package",
        "settings": {
            "concurrency": args.concurrency,
            "items": n,
            "checkpoint": args.checkpoint,
            "latency_s": args.latency,
            "stub": "own process (bench/peers.py serve)",
        },
        "plain": plain,
        "profiled": profiled,
        "profile_saw_share_of_process_cpu": round(seen, 3),
        **summary,
        "machine": {
            "loadavg_start": load_start,
            "loadavg_end": os.getloadavg(),
            "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0],
        },
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"plain {plain['cpu_ms_per_item']} ms/item; profile saw {seen:.0%} of process CPU")
    for row in summary["by_group"][:20]:
        print(f"  {row['group']:32s} {row['share']:6.1%} {row['ms_per_item']:7.3f} ms/item")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
