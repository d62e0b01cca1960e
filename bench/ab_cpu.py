"""CPU per accepted item before and after each hot-path change, measured side by side now.

Usage: python bench/ab_cpu.py [--runs 3] [--concurrency 128] [--items-per-slot 4]
                              [--change NAME BEFORE AFTER ...] [--out FILE]

Each change is a pair of git revisions. Every revision is checked out once in a temporary
worktree, and each run imports clinsynth from that worktree while the workload, the stub
server and the measurement stay this tree's (``bench/profile_item.py``'s plain run: the
``bench/peers.py`` qa workload, three structured calls per item, the stub in its own
process, process CPU around ``runner.run()`` only). Runs alternate before/after, ``--runs``
times, so drifting machine load falls on both sides. The figure per change is the mean of
the after/before differences and ratios. Writes bench/results/ab_cpu.json with every run's
figures, the revisions, the path clinsynth was imported from and the load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHANGES = [
    (
        "PHI results kept for the record writer; requests over 8 httpcore pools",
        "eaa9c98^",
        "eaa9c98",
    ),
    (
        "structured calls straight through the OpenAI SDK client (no runnable, callback, "
        "executor layers); 16 pools",
        "a21b8eb^",
        "a21b8eb",
    ),
    ("HTTP over aiohttp instead of httpx/httpcore/h11/anyio", "065d66b^", "065d66b"),
    ("answer location caches the per-character fold", "5d7fea8^", "5d7fea8"),
]
"""(what changed, before, after): the hot-path changes made for the CPU-per-item issue."""


def run_one(tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One plain run of the profile_item workload with clinsynth imported from ``tree``."""
    code = (
        "import sys, json, argparse, tempfile\n"
        f"sys.path.insert(0, {str(tree)!r})\n"
        f"sys.path.insert(1, {str(REPO / 'bench')!r})\n"
        "import clinsynth, peers, profile_item\n"
        "from pathlib import Path\n"
        f"a = argparse.Namespace(concurrency={args.concurrency}, checkpoint={args.checkpoint!r},"
        f" latency={args.latency})\n"
        f"spec = peers.workload({args.items_per_slot * args.concurrency})\n"
        "with tempfile.TemporaryDirectory() as tmp:\n"
        "    store = Path(tmp) / 'store'\n"
        "    peers.build_store(store, spec['documents'])\n"
        "    row = profile_item.one_run(spec, a, store, profile=False)\n"
        "row['clinsynth_from'] = clinsynth.__file__\n"
        "print('RESULT ' + json.dumps(row))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tree, timeout=900
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            row: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            if not row["clinsynth_from"].startswith(str(tree)):
                raise SystemExit(f"clinsynth came from {row['clinsynth_from']}, not {tree}")
            row["loadavg"] = [round(x, 2) for x in os.getloadavg()]
            return row
    raise SystemExit(f"run in {tree} failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=128)
    p.add_argument("--items-per-slot", type=int, default=4)
    p.add_argument("--checkpoint", choices=("item", "step"), default="item")
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--change", nargs=3, action="append", metavar=("NAME", "BEFORE", "AFTER"))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ab_cpu.json")
    args = p.parse_args()
    changes = [tuple(c) for c in args.change] if args.change else CHANGES
    load_start = [round(x, 2) for x in os.getloadavg()]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        trees: dict[str, Path] = {}

        def git(*argv: str) -> str:
            proc = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True)
            if proc.returncode:
                why = proc.stderr.strip() or "no such commit"
                raise SystemExit(f"error: git {' '.join(argv)}: {why}")
            return proc.stdout.strip()

        def tree_of(rev: str) -> tuple[str, Path]:
            sha = git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
            if sha not in trees:
                path = Path(tmp) / sha[:12]
                git("worktree", "add", "--detach", str(path), sha)
                trees[sha] = path
            return sha, trees[sha]

        try:
            for name, before, after in changes:
                (sha_b, tree_b), (sha_a, tree_a) = tree_of(before), tree_of(after)
                rows: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
                for i in range(args.runs):
                    for side, tree in (("before", tree_b), ("after", tree_a)):
                        rows[side].append(run_one(tree, args))
                        print(f"{name[:50]:50s} run {i + 1} {side}: {rows[side][-1]}", flush=True)
                ms_b = [r["cpu_ms_per_item"] for r in rows["before"]]
                ms_a = [r["cpu_ms_per_item"] for r in rows["after"]]
                results.append(
                    {
                        "change": name,
                        "before": {"rev": before, "sha": sha_b, "runs": rows["before"]},
                        "after": {"rev": after, "sha": sha_a, "runs": rows["after"]},
                        "cpu_ms_per_item_before": round(statistics.mean(ms_b), 2),
                        "cpu_ms_per_item_after": round(statistics.mean(ms_a), 2),
                        "saved_ms_per_item": round(
                            statistics.mean(b - a for b, a in zip(ms_b, ms_a, strict=True)), 2
                        ),
                        "ratio_after_to_before": round(
                            statistics.mean(a / b for b, a in zip(ms_b, ms_a, strict=True)), 3
                        ),
                    }
                )
                print(f"  → saved {results[-1]['saved_ms_per_item']} ms/item", flush=True)
        finally:
            for path in trees.values():
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(path)],
                    cwd=REPO, capture_output=True,
                )  # fmt: skip
    report = {
        "benchmark": "ab_cpu",
        "what": "process CPU ms per accepted item before/after each hot-path change",
        "workload": {
            "source": "bench/profile_item.py plain run (bench/peers.py qa workload, stub process)",
            "concurrency": args.concurrency,
            "items": args.items_per_slot * args.concurrency,
            "checkpoint": args.checkpoint,
            "latency_s": args.latency,
            "runs_per_side": args.runs,
            "order": "alternating before, after",
        },
        "data": "synthetic notes from bench/peers.py workload(); no split applies",
        "results": results,
        "machine": {
            "loadavg_start": load_start,
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
