"""Real-data benchmark: extractive-QA reader fine-tuned on COVID-QA train, scored on dev.

Usage: python bench/qa_reader.py [--max-train-windows N] [--epochs E] [--seed S] [--save-dir D]

Data come from ``../shared/data/covid_qa`` relative to the repository root (override the data
root with CLINSYNTH_SHARED_DATA); they are read in place, never copied. The CPU budget (answer
windows + sampled no-answer windows, capped, one epoch by default) is recorded in the output
JSON, together with the backbone actually used and whether it was a fallback.
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

from clinsynth.tools.finetune import QAConfig, load_squad_json, qa_scores, train_reader  # noqa: E402

RESULTS = REPO / "bench" / "results" / "qa_reader.json"


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
    parser.add_argument("--max-train-windows", type=int, default=1000)
    parser.add_argument("--negatives-per-example", type=int, default=1)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-answer-length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-dev", type=int, default=None, help="score only the first N (smoke)")
    parser.add_argument("--save-dir", type=Path, default=None, help="save the trained reader here")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    data = _data_dir()
    train = load_squad_json(data / "train.json")
    dev = load_squad_json(data / "dev.json")[: args.max_dev]
    cfg = QAConfig(
        backbone=args.backbone,
        max_length=384,
        doc_stride=128,
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
    if args.save_dir is not None:
        reader.save(args.save_dir)
    assert reader.backbone is not None
    result = {
        "benchmark": "covid_qa train -> dev, extractive QA reader",
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
        "saved_to": str(args.save_dir) if args.save_dir else None,
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
