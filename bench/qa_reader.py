"""Real-data benchmark: extractive-QA reader fine-tuned on COVID-QA train, scored on dev.

Usage: nice -n 10 python bench/qa_reader.py [--quick] [--passage-chars C] [--full-context]

Data come from ``../shared/data/covid_qa`` relative to the repository root (override the data
root with CLINSYNTH_SHARED_DATA); they are read in place, never copied.

CPU budget (≤ 15 min on 2 free cores, MiniLM backbone offline): COVID-QA contexts are whole
articles (median ~3,500 words, ~30 windows of 384/128 each), so scoring the 203 dev questions
on full articles alone costs ~6,000 window forwards (~1 h on 2 cores). By default each
question is therefore read in a *passage* of ``--passage-chars`` characters (1,000 ≈ one
256-token window) cut from its article around the gold answer at a seeded random position,
for train and dev alike — paragraph-level COVID-QA, like SQuAD's paragraphs; the reader still
has to find the span within the passage. ``--full-context`` scores the original articles.
Windows are 256 tokens with a 64-token overlap (not 384/128: a 256-token window costs ~0.6 of
a 384 one, and a 1,000-char passage fits in one or two of them). Training: every answer window
+ one sampled no-answer window per question, capped at ``--max-train-windows`` (2,000: all
1,747 windows here), one epoch, LR 2e-4 (MiniLM's freshly initialised QA head needs more than
BERT-base's usual 3e-5..5e-5). The trained reader is saved to bench/.cache/qa_reader/ for
bench/qa_difficulty.py and the recipe's ``reader_path`` option.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clinsynth.finetune import (  # noqa: E402
    QAConfig,
    QAExample,
    load_squad_json,
    qa_scores,
    train_reader,
)

RESULTS = REPO / "bench" / "results" / "qa_reader.json"
CACHE = REPO / "bench" / ".cache" / "qa_reader"
BUDGET = "<= 15 min on 2 free CPU cores (full run); --quick is a smoke run"


def passage(example: QAExample, chars: int, seed: int) -> QAExample:
    """``example`` read in a ``chars``-long passage of its context that holds the gold answer
    at a seeded random position (cut at whitespace); unchanged if the context is shorter."""
    import random

    ctx = example.context
    if len(ctx) <= chars or example.answer_start is None or example.answer_end is None:
        return example
    rng = random.Random(f"{seed}:{example.id}")
    span = example.answer_end - example.answer_start
    lo_min = max(0, example.answer_end - chars)
    lo_max = min(example.answer_start, len(ctx) - chars)
    lo = rng.randint(lo_min, lo_max) if span < chars and lo_min <= lo_max else example.answer_start
    hi = min(len(ctx), max(lo + chars, example.answer_end))
    while lo > 0 and not ctx[lo - 1].isspace() and lo < example.answer_start:
        lo += 1
    while hi < len(ctx) and not ctx[hi].isspace() and hi - lo < chars + 40:
        hi += 1
    data = example.model_dump() | {"context": ctx[lo:hi], "answer_start": example.answer_start - lo}
    return QAExample.model_validate(data)


def load_split(name: str, chars: int | None, seed: int = 0) -> list[QAExample]:
    """COVID-QA ``name`` (train/dev), read in passages of ``chars`` (None: whole articles)."""
    examples = load_squad_json(_data_dir() / f"{name}.json")
    return examples if chars is None else [passage(ex, chars, seed) for ex in examples]


def _data_dir() -> Path:
    root = Path(os.environ.get("CLINSYNTH_SHARED_DATA", REPO.parent / "shared" / "data"))
    path = root / "covid_qa"
    if not (path / "train.json").is_file() or not (path / "dev.json").is_file():
        raise SystemExit(f"COVID-QA not found under {path}; set CLINSYNTH_SHARED_DATA")
    return path


def _versions() -> dict[str, str]:
    import sklearn
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
        "cpu_count": str(os.cpu_count()),
        "torch_threads": str(torch.get_num_threads()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default=None, help="default: BioBERT (falls back offline)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 windows, 20 dev")
    parser.add_argument("--passage-chars", type=int, default=1000)
    parser.add_argument("--full-context", action="store_true", help="score whole articles")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--doc-stride", type=int, default=64)
    parser.add_argument("--max-train-windows", type=int, default=2000)
    parser.add_argument("--negatives-per-example", type=int, default=1)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-answer-length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-dev", type=int, default=None, help="score only the first N (smoke)")
    parser.add_argument(
        "--save-dir", type=Path, default=None, help=f"save the reader (default {CACHE})"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.quick:
        args.max_train_windows, args.max_dev = 64, args.max_dev or 20
        if args.output == RESULTS:
            args.output = RESULTS.with_name("qa_reader_quick.json")
    save_dir = args.save_dir or (CACHE if not args.quick else CACHE.with_name("qa_reader_quick"))

    data = _data_dir()
    train = load_split("train", args.passage_chars, args.seed)
    dev = load_split("dev", None if args.full_context else args.passage_chars, args.seed)
    dev = dev[: args.max_dev]
    cfg = QAConfig(
        backbone=args.backbone,
        max_length=args.max_length,
        doc_stride=args.doc_stride,
        max_answer_length=args.max_answer_length,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        negatives_per_example=args.negatives_per_example,
        max_train_windows=args.max_train_windows,
    )
    t0 = time.perf_counter()
    reader = train_reader(train, cfg)
    t1 = time.perf_counter()
    predictions = reader.predict(dev)
    t2 = time.perf_counter()
    # COVID-QA has no unanswerable questions, so the primary score always answers (SQuAD v1
    # style); the SQuAD v2 decision with the configured null threshold is reported alongside.
    forced = qa_scores([p.with_threshold(math.inf) for p in predictions], dev)
    with_null = qa_scores(predictions, dev)
    reader.save(save_dir)
    assert reader.backbone is not None
    result = {
        "benchmark": "covid_qa train -> dev, extractive QA reader",
        "quick": args.quick,
        "cpu_budget": BUDGET,
        "contexts": "whole articles"
        if args.full_context
        else f"passages of {args.passage_chars} chars around the gold answer (seed {args.seed}); "
        "train contexts likewise",
        "data": str(data),
        "n_train_examples": len(train),
        "n_dev_examples": len(dev),
        "metrics": forced,
        "metrics_with_null_threshold": {
            "null_score_diff_threshold": cfg.null_score_diff_threshold,
            **with_null,
        },
        "backbone": reader.backbone.model_dump(),
        "budget": {
            "windows": f"{cfg.max_length} tokens, stride (overlap) {cfg.doc_stride}",
            "training_windows": "all answer windows + negatives_per_example sampled no-answer "
            "windows per question, capped at max_train_windows (seeded random subset)",
            **cfg.model_dump(exclude={"backbone", "output_dir"}),
            **{k: v for k, v in reader.train_stats.items() if k.startswith("n_")},
        },
        "timings_s": {
            "train_total": round(t1 - t0, 1),
            "windowing": round(reader.train_stats["windowing_seconds"], 1),
            "training": round(reader.train_stats["train_seconds"], 1),
            "predict_dev": round(t2 - t1, 1),
            "total": round(time.perf_counter() - t0, 1),
        },
        "trainer": reader.train_stats["trainer"],
        "versions": _versions(),
        "saved_to": str(save_dir),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    bb = reader.backbone
    print(
        f"COVID-QA dev (n={len(dev)}): EM {forced['exact_match']:.1f}  F1 {forced['f1']:.1f}  "
        f"RO {forced['reference_overlap']:.1f}  | with null threshold: EM "
        f"{with_null['exact_match']:.1f} F1 {with_null['f1']:.1f} RO "
        f"{with_null['reference_overlap']:.1f}\n"
        f"backbone {bb.path_or_name} (requested {bb.requested}, fell_back={bb.fell_back}); "
        f"{reader.train_stats['n_windows_per_epoch']} windows/epoch x {cfg.epochs} epochs; "
        f"train {t1 - t0:.0f}s, predict {t2 - t1:.0f}s -> {args.output}"
    )


if __name__ == "__main__":
    main()
