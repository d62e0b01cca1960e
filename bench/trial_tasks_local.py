"""Every `trial-tasks` task type, end to end through the CLI, on the in-process local model.

Usage: python bench/trial_tasks_local.py [--n 2] [--max-attempts 2] [--gguf FILE] [--out FILE]

What a user without an endpoint runs: made-up ClinicalTrials.gov studies (ours,
``clinsynth.testing.trial_tasks_responder``) ingested with ``clinsynth ingest-trials``
(training and eval splits), then ``clinsynth generate --recipe trial-tasks --option task=T``
for each task type with ``--provider local`` (llama-cpp-python and, unless ``--gguf`` names
another, the bundled Gemma 3 270M *base* model, Q4_K_M). It shows the recipe runs on that
path with exact counts, provenance and rejection reasons; it says nothing about the quality of
a 270M base model's tasks. Records per task: the run's counts, the rejection reasons by check,
the accepted items' provenance keys, the wall time. Writes bench/results/trial_tasks_local.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clinsynth.recipes.trial_tasks.schema import TASK_TYPES  # noqa: E402
from clinsynth.runtime.runfiles import iter_jsonl  # noqa: E402
from clinsynth.testing.trial_tasks_responder import write_ctgov_studies  # noqa: E402

CLI = [sys.executable, "-m", "clinsynth.cli"]
RESULTS = REPO / "bench" / "results"


def cli(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2)
    p.add_argument("--max-attempts", type=int, default=2)
    p.add_argument("--gguf", default=None)
    p.add_argument("--timeout-s", type=float, default=900.0, help="per task")
    p.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "trial_tasks_local.json"
    )
    args = p.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINSYNTH_")}
    env |= {"CLINSYNTH_PROVIDER": "local", "CLINSYNTH_MAX_TOKENS": "384"}
    if args.gguf:
        env["CLINSYNTH_GGUF_PATH"] = args.gguf
    load_start = os.getloadavg()
    started = time.time()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = work / "store"
        train = write_ctgov_studies(work / "train.json", n=24, seed=0)
        held = write_ctgov_studies(work / "eval.json", n=6, seed=1, start=500)
        for path, split in ((train, "train"), (held, "eval")):
            res = cli(
                ["ingest-trials", str(path), "--store", str(store), "--collection", "ttasks",
                 "--split", split, "--embedder", "hashing"],
                env,
                300,
            )  # fmt: skip
            if res.returncode != 0:
                raise SystemExit(f"ingest-trials failed: {res.stderr.strip()[-500:]}")
        for task in TASK_TYPES:
            out = work / f"run-{task}"
            t0 = time.time()
            res = cli(
                ["generate", "--recipe", "trial-tasks", "--option", f"task={task}",
                 "-n", str(args.n), "--max-attempts", str(args.max_attempts),
                 "--concurrency", "1", "--store", str(store), "--collection", "ttasks",
                 "--embedder", "hashing", "--out", str(out), "--no-progress"],
                env,
                args.timeout_s,
            )  # fmt: skip
            accepted = list(iter_jsonl(out / "accepted.jsonl"))
            rejected = list(iter_jsonl(out / "rejected.jsonl"))
            reasons: Counter[str] = Counter()
            for r in rejected:
                report = (r.get("history") or [{}])[-1].get("report") or {}
                for check in report.get("checks") or []:
                    if not check.get("passed", True):
                        reasons[check.get("name", "?")] += 1
                if not report:
                    reasons[str(r.get("reason") or r.get("status") or "?")[:80]] += 1
            manifest = out / "manifest.json"
            results[task] = {
                "returncode": res.returncode,
                "accepted": len(accepted),
                "rejected": len(rejected),
                "failed_checks": dict(reasons.most_common()),
                "provenance_keys": sorted((accepted[0].get("provenance") or {}).keys())
                if accepted
                else [],
                "summary_line": (res.stdout.strip().splitlines() or [""])[-1][:300],
                "stderr_tail": res.stderr.strip()[-300:] if res.returncode else "",
                "manifest": json.loads(manifest.read_text()) if manifest.is_file() else None,
                "wall_s": round(time.time() - t0, 1),
            }
            print(task, {k: v for k, v in results[task].items() if k != "manifest"}, flush=True)
    result = {
        "benchmark": "trial-tasks, every task type through the CLI on the local in-process model",
        "model": args.gguf or "bundled gemma3-270m Q4_K_M (base model)",
        "data": "made-up CT.gov studies (ours): 24 train, 6 eval",
        "settings": {"n": args.n, "max_attempts": args.max_attempts, "concurrency": 1},
        "tasks": results,
        "seconds": round(time.time() - started, 1),
        "machine": {
            "loadavg_start": load_start,
            "loadavg_end": os.getloadavg(),
            "cpu_count": os.cpu_count(),
        },
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
