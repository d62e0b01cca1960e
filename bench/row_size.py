"""Bytes per JSONL row of a qa run: as written (passage stored once in passages.jsonl) against
the same rows with the passage inline on the item and on each attempt (the layout before).

One stub run (scripted replies, mixed: accepted, revised, relabelled, rejected items) over the
demo corpus at ingest's default chunking (1,200 characters). The baseline is the inline
layout of the same rows. Writes bench/results/row_size.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "clinsynth" / "data" / "demo_corpus"


def measure(run_dir: Path) -> dict[str, object]:
    from clinsynth.runtime.passages import read_passages, restore_row

    passages = read_passages(run_dir / "accepted.jsonl")
    out: dict[str, object] = {}
    written_total = inline_total = 0
    for name in ("accepted", "rejected", "surplus"):
        lines = (run_dir / f"{name}.jsonl").read_bytes().splitlines()
        inline = [
            len(json.dumps(restore_row(json.loads(x), passages), ensure_ascii=False).encode())
            for x in lines
        ]
        written_total += sum(map(len, lines))
        inline_total += sum(inline)
        out[name] = {
            "rows": len(lines),
            "mean_bytes_written": round(sum(map(len, lines)) / len(lines), 1) if lines else None,
            "mean_bytes_inline_baseline": round(sum(inline) / len(inline), 1) if inline else None,
        }
    passages_bytes = (run_dir / "passages.jsonl").stat().st_size
    out["passages_file_bytes"] = passages_bytes
    out["passages"] = len(passages)
    out["all_rows_bytes_written_plus_passages_file"] = written_total + passages_bytes
    out["all_rows_bytes_inline_baseline"] = inline_total
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=12, help="accepted items")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "row_size.json")
    args = parser.parse_args()
    from clinsynth.testing.qa_responder import make_responder
    from clinsynth.testing.stub_server import StubServer

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, StubServer(make_responder("mixed")) as stub:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLINSYNTH_")}
        env.update(
            CLINSYNTH_BASE_URL=stub.base_url,
            CLINSYNTH_API_KEY="stub",
            CLINSYNTH_MODEL="stub-model",
            CLINSYNTH_EMBEDDER="hashing",
            CLINSYNTH_STORE=str(Path(tmp) / "store"),
        )
        cli = [sys.executable, "-m", "clinsynth.cli"]
        subprocess.run([*cli, "ingest", str(CORPUS)], env=env, check=True, capture_output=True)
        run_dir = Path(tmp) / "run"
        args_run = ["generate", "-n", str(args.n), "--max-attempts", "2", "--seed", "0"]
        subprocess.run(
            [*cli, *args_run, "--out", str(run_dir), "--no-progress"],
            env=env,
            check=True,
            capture_output=True,
        )
        result = measure(run_dir)
    report = {
        "benchmark": "row_size",
        "what": " ".join((__doc__ or "").split("\n\n")[0].split()),
        "data": "clinsynth/data/demo_corpus, ingest defaults (chunk 1200, overlap 150)",
        "run": {"recipe": "qa", "n": args.n, "max_attempts": 2, "seed": 0, "replies": "mixed"},
        "baseline": "the same rows with the passage inline (item and every attempt)",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "results": result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
