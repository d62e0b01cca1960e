"""CPU budget of the default trial fine-tune: measured training and scoring rates, and the
wall time they imply for ``clinsynth train`` at its defaults on the HINT/TOP splits.

Usage: nice -n 5 python bench/train_cpu_budget.py [--steps N] [--out FILE]

Trains the default ``ClassificationConfig`` (the settings ``clinsynth train`` uses) for
``--steps`` batches on Phase I training texts (``trial_text`` of the fields chosen in
``bench/results/trials_real_only.json``), times it, times scoring, and extrapolates to 3
seeds of Phase I (train 1,044 / eval 117) and Phase III (train 1,569 / eval 344). The
machine's load average is recorded: on a shared machine the rate is lower than on free cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RESULTS = REPO / "bench" / "results" / "train_cpu_budget.json"
SPLITS = {"phase_I": (1044, 117), "phase_III": (1569, 344)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--data", default=None, help="the hint_top folder")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # a CPU figure, even on a GPU machine
    import torch

    from bench.trials_real_only import RESULTS as CHOSEN
    from bench.trials_real_only import TEXTS, hint_dir
    from clinsynth.datasets.trials import load_examples
    from clinsynth.finetune import ClassificationConfig, train_classifier

    chosen = json.loads(CHOSEN.read_text()).get("chosen") if CHOSEN.is_file() else None
    fields = TEXTS[chosen["text"]] if chosen else TEXTS["all"]

    cfg = ClassificationConfig(labels=["failure", "success"], positive_label="success")
    data = hint_dir(args.data)
    examples = load_examples(data / "phase_I_train.csv", fields=fields)
    n = args.steps * cfg.batch_size
    pairs = [(e.text, e.label) for e in examples[: n + 64]]
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    result = train_classifier(
        pairs[:n],
        None,
        cfg.model_copy(update={"max_steps": args.steps, "decision": "argmax"}),
    )
    train_s = result.train_seconds
    t1 = time.perf_counter()
    result.classifier.predict_proba([t for t, _ in pairs[n:]])
    score_s = time.perf_counter() - t1
    train_rate = n / train_s
    score_rate = 64 / score_s
    fit_share = 1 - cfg.val_fraction if cfg.decision == "val_f1" else 1.0
    estimate = {}
    for phase, (n_train, n_eval) in SPLITS.items():
        per_seed = n_train * fit_share * cfg.epochs / train_rate
        per_seed += (n_eval + n_train * (1 - fit_share)) / score_rate
        estimate[phase] = {"per_seed_s": round(per_seed), "three_seeds_s": round(3 * per_seed)}
    report = {
        "benchmark": "train_cpu_budget",
        "config": cfg.model_dump(mode="json"),
        "fields": fields,
        "backbone": result.backbone.model_dump(),
        "measured": {
            "train_examples": n,
            "train_steps": args.steps,
            "train_s": round(train_s, 1),
            "train_examples_per_s": round(train_rate, 2),
            "score_examples": 64,
            "score_s": round(score_s, 1),
            "score_examples_per_s": round(score_rate, 2),
            "mean_tokens": round(
                sum(
                    len(x)
                    for x in result.classifier.tokenizer(
                        [t for t, _ in pairs[:n]], truncation=True, max_length=cfg.max_length
                    )["input_ids"]
                )
                / n,
                1,
            ),
        },
        "estimate_3_seeds": estimate,
        "estimate_total_s": sum(e["three_seeds_s"] for e in estimate.values()),
        "wall_s": round(time.perf_counter() - t0, 1),
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "loadavg_start": load_start,
            "loadavg_end": os.getloadavg(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("measured", "estimate_3_seeds")}, indent=1))


if __name__ == "__main__":
    main()
