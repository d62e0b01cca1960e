"""The paper's table shape (arXiv 2403.19511): gold-small + corrected synthetic vs gold-all.

Usage:
  nice -n 10 python bench/notes_paper_table.py            # against the configured endpoint
  nice -n 10 python bench/notes_paper_table.py --stub     # CI-sized, stub server, offline

Steps, all through the real CLI (subprocesses): sample ``--gold-per-label`` training texts
per class (gold-small), ``clinsynth ingest-labelled`` them, ``clinsynth generate --recipe
notes`` with a quota of ``--synthetic-per-label`` per class against the endpoint in
``CLINSYNTH_*`` (or the stub server), then ``clinsynth correct-labels --run`` (gold-small
pooled with the synthetic items). Then a classifier is trained on

- gold-small; gold-small + synthetic as generated; gold-small + corrected synthetic; and
  gold-all (every training row),

and scored (accuracy, macro-F1) on the held-out split of ``bench/label_noise_data.py``'s
``heldout_split``.

Classifier (CPU budget): frozen sentence embeddings + logistic regression
(``clinsynth.finetune.classification.score_embedding_head``); MiniLM embeddings of the
real texts are cached in ``bench/.cache/``. ``--stub`` uses the hashing embedder everywhere
and small sizes; its numbers come from a scripted responder (shuffled words of the few-shot
examples), NOT from a language model, and only show that the pipeline runs end to end.
Budget: ``--stub`` ≤ 2 min on 2 cores; a real run is dominated by the endpoint's generation.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from label_noise_data import LOADERS, Dataset, cached_embeddings, heldout_split  # noqa: E402

from clinsynth.finetune.classification import score_embedding_head  # noqa: E402
from clinsynth.runtime.runfiles import iter_jsonl  # noqa: E402

RESULTS = REPO / "bench" / "results"
CLI = [sys.executable, "-m", "clinsynth.cli"]


def _cli(args: list[str], env: dict[str, str]) -> str:
    res = subprocess.run(CLI + args, env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"clinsynth {args[0]} failed ({res.returncode}): {res.stderr.strip()}")
    print(f"  clinsynth {args[0]}: {res.stdout.strip().splitlines()[-1]}")
    return res.stdout


def gold_small(ds: Dataset, train: np.ndarray, per_label: int, seed: int) -> np.ndarray:
    """``per_label`` training rows of each class (all of a class when it has fewer)."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in range(len(ds.classes)):
        rows = train[ds.y[train] == c]
        picked.extend(rng.choice(rows, size=min(per_label, len(rows)), replace=False).tolist())
    return np.sort(np.array(picked))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stub", action="store_true", help="CI-sized run on the stub server")
    parser.add_argument("--dataset", default="medical_abstracts_tc", choices=sorted(LOADERS))
    parser.add_argument("--gold-per-label", type=int, default=None, help="default 20 (stub 8)")
    parser.add_argument("--synthetic-per-label", type=int, default=None, help="default 20 (stub 6)")
    parser.add_argument("--k", type=int, default=3, help="few-shot examples per prompt")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--method", default="ours", choices=["ours", "cleanlab", "argmax"])
    parser.add_argument("--policy", default="relabel", choices=["relabel", "drop", "flag"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    gold_n = args.gold_per_label or (8 if args.stub else 20)
    synth_n = args.synthetic_per_label or (6 if args.stub else 20)
    embedder = "hashing" if args.stub else "minilm"
    out_path = args.out or RESULTS / (f"notes_paper_table{'.stub' if args.stub else ''}.json")
    started = time.perf_counter()

    ds = LOADERS[args.dataset]()
    train, test = heldout_split(ds)
    labels = ds.classes
    if args.stub:
        from clinsynth.memory.embeddings import HashingEmbedder

        hasher = HashingEmbedder(dim=1024)
        x = hasher.embed(ds.texts)

        def embed(texts: list[str]) -> np.ndarray:
            return hasher.embed(texts)
    else:
        from clinsynth.memory.embeddings import MiniLMEmbedder

        x = cached_embeddings(ds)
        minilm = MiniLMEmbedder()

        def embed(texts: list[str]) -> np.ndarray:
            return minilm.embed(texts)

    small = gold_small(ds, train, gold_n, args.seed)
    y_names = [labels[i] for i in ds.y]
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="notes-table-")))
        env = dict(os.environ, CLINSYNTH_EMBEDDER=embedder, CLINSYNTH_STORE=str(tmp / "store"))
        if args.stub:
            from clinsynth.testing.notes_responder import make_responder
            from clinsynth.testing.stub_server import StubServer

            stub = stack.enter_context(StubServer(make_responder("mixed")))
            env.update(
                CLINSYNTH_BASE_URL=stub.base_url,
                CLINSYNTH_API_KEY="stub",
                CLINSYNTH_MODEL="stub-notes-responder",
            )
        gold_csv = tmp / "gold_small.csv"
        with gold_csv.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows([ds.texts[i], y_names[i]] for i in small)
        _cli(["ingest-labelled", str(gold_csv), "--text-col", "text", "--label-col", "label"], env)
        run_dir = tmp / "run"
        run_cfg = tmp / "run.json"
        quotas = {lab: synth_n for lab in labels}
        run_cfg.write_text(json.dumps({"run": {"recipe": "notes", "k": args.k, "quotas": quotas}}))
        gen_start = time.perf_counter()
        _cli(
            [
                *("generate", "--config", str(run_cfg), "--out", str(run_dir), "--no-progress"),
                *("--concurrency", str(args.concurrency), "--seed", str(args.seed)),
            ],
            env,
        )
        gen_seconds = time.perf_counter() - gen_start
        _cli(
            [
                *("correct-labels", "--run", str(run_dir), "--gold", str(gold_csv)),
                *("--text-col", "text", "--label-col", "label", "--backbone", embedder),
                *("--method", args.method, "--policy", args.policy),
            ],
            env,
        )
        accepted = list(iter_jsonl(run_dir / "accepted.jsonl"))
        corrected = list(iter_jsonl(run_dir / "corrected.jsonl"))
        dropped = list(iter_jsonl(run_dir / "label_dropped.jsonl"))
        manifest = json.loads((run_dir / "manifest.json").read_text())

    synth_texts = [r["item"]["text"] for r in accepted]
    synth_x = embed(synth_texts) if synth_texts else np.zeros((0, x.shape[1]))
    by_id = {r["id"]: i for i, r in enumerate(accepted)}
    corr_idx = [by_id[r["id"]] for r in corrected]
    corr_labels = [r["item"]["label"] for r in corrected]
    test_x, test_y = x[test], [y_names[i] for i in test]

    def score(train_x: np.ndarray, train_y: list[str]) -> dict[str, Any]:
        scores = score_embedding_head(train_x, train_y, test_x, test_y, labels, seed=args.seed)
        keep = ("n", "accuracy", "macro_f1")
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()
                if k in keep} | {"n_train": len(train_y)}  # fmt: skip

    small_y = [y_names[i] for i in small]
    table = {
        "gold_small": score(x[small], small_y),
        "gold_small+synthetic": score(
            np.vstack([x[small], synth_x]), small_y + [r["item"]["label"] for r in accepted]
        ),
        "gold_small+corrected_synthetic": score(
            np.vstack([x[small], synth_x[corr_idx]]), small_y + corr_labels
        ),
        "gold_all": score(x[train], [y_names[i] for i in train]),
    }
    decisions = [r["item"]["label_decision"] for r in corrected] + [
        r["item"]["label_decision"] for r in dropped
    ]
    report = {
        "benchmark": "notes_paper_table",
        "source": (
            "STUB SERVER with the scripted clinsynth/testing/notes_responder.py (shuffled words "
            "of the few-shot examples): these numbers are NOT from a language model and only "
            "show that the pipeline runs end to end"
            if args.stub
            else f"endpoint {env.get('CLINSYNTH_BASE_URL', '(local provider)')}"
        ),
        "models": manifest.get("models"),
        "dataset": args.dataset,
        "classifier": f"frozen {embedder} embeddings + logistic regression (C=1)",
        "gold_per_label": gold_n,
        "synthetic_per_label": synth_n,
        "corrector": {"method": args.method, "policy": args.policy, "backbone": embedder},
        "generation": {
            "accepted": len(accepted),
            "rejected": manifest.get("counts", {}).get("rejected"),
            "surplus": manifest.get("counts", {}).get("surplus"),
            "tokens": manifest.get("tokens"),
            "seconds": round(gen_seconds, 1),
        },
        "label_correction": {
            "synthetic_flagged": sum(bool(d["flagged"]) for d in decisions),
            "synthetic_relabelled": sum(d["action"] == "relabel" for d in decisions),
            "synthetic_dropped": len(dropped),
        },
        "n_test": len(test),
        "table": table,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=1) + "\n")
    for name, row in table.items():
        print(f"  {name:32s} n={row['n_train']:5d} acc={row['accuracy']:.3f} "
              f"macro-F1={row['macro_f1']:.3f}")  # fmt: skip
    if args.stub:
        print("  (stub server: numbers are from a scripted responder, not a language model)")
    print(f"wrote {out_path} in {report['wall_seconds']}s")


if __name__ == "__main__":
    main()
