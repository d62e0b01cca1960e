"""Real-only trial outcome classifier on HINT/TOP, beside its baselines; settings chosen on
inner splits of the training files, reported on the validation files.

Usage: python bench/trials_real_only.py [--device auto|cpu|cuda] [--data DIR] [--backbone DIR]
       [--out FILE] [--quick] [--select-budget-s S]
       [--no-select --text T --max-length N --lr X --decision D --epochs E] [--phases P]
       [--threads N] | --merge A.json B.json --out FILE

``--no-select`` skips step 1 and reports settings fixed in advance (the JSON says so); that is
how the committed CPU result was made (README gives the command).

One invocation does everything:

1. **Selection** (never touches an evaluation file): each phase's training data is split by NCT
   id into inner-train (80 %) and inner-val (20 %, stratified, seed ``SPLIT_SEED``). Every
   candidate of ``GRID`` (trial text × max_length × learning rate × decision rule) is
   fine-tuned once (seed ``SELECT_SEED``) on inner-train and scored on inner-val, for both
   phases; the candidate with the highest mean of (ROC-AUC + F1) / 2 over the two phases wins.
   Candidates run in ``GRID`` order until ``--select-budget-s`` is spent (the JSON says how
   many ran). The inner-val NCT ids are logged.
2. **Report**: the chosen settings, 3 seeds, per phase: fine-tune on the whole training data,
   score on the evaluation file, beside the majority class and TF-IDF + logistic regression on
   the same text and split (``clinsynth.finetune.train_with_baselines``).

Splits. Phase I: train ``phase_I_train`` (1,044), eval ``phase_I_valid`` (117). Phase III: no
Phase III train split exists (PROVENANCE.md), so train on ``phase_I_train`` + ``phase_I_valid``
+ ``phase_II_valid`` and eval on ``phase_III_valid`` (344); eval NCT ids are removed from train.
Text: scrubbed trial fields (``trial_text``); status / why_stop never enter it.

Imports only numpy, torch, transformers, scikit-learn, pydantic and clinsynth.finetune /
clinsynth.datasets.trials (no LangChain, Chroma or ``datasets``), so it runs on a bare GPU box.
Data are read in place from ``../shared/data/hint_top`` (``--data`` or CLINSYNTH_SHARED_DATA).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RESULTS = REPO / "bench" / "results" / "trials_real_only.json"
SPLIT_SEED = 20261204
SELECT_SEED = 0
TEXTS = {
    "all": ["phase", "conditions", "interventions", "eligibility_criteria"],
    "no_phase": ["conditions", "interventions", "eligibility_criteria"],
}
"""Trial texts tried (``trial_text`` fields, in its order: phase, conditions, interventions,
eligibility criteria last, so truncation cuts the criteria's tail)."""
GRID = [
    {"text": text, "max_length": length, "lr": lr, "decision": decision}
    for length, lr, text, decision in itertools.product(
        (512, 256), (1e-4, 5e-5), ("all", "no_phase"), ("argmax", "val_f1")
    )
]
"""Candidates in the order they run (the likeliest first, in case the budget cuts the grid)."""
FIXED = {"epochs": 5.0, "batch_size": 16, "weight_decay": 0.01, "warmup_ratio": 0.1}
PHASE_FILES = {
    "phase_I": (["phase_I_train.csv"], "phase_I_valid.csv"),
    "phase_III": (
        ["phase_I_train.csv", "phase_I_valid.csv", "phase_II_valid.csv"],
        "phase_III_valid.csv",
    ),
}


def hint_dir(given: str | None) -> Path:
    root = Path(os.environ.get("CLINSYNTH_SHARED_DATA", REPO.parent / "shared" / "data"))
    path = Path(given) if given else root / "hint_top"
    if not (path / "phase_I_train.csv").is_file():
        raise SystemExit(f"hint_top not found at {path}; pass --data DIR")
    return path


def phase_splits(data: Path, fields: list[str]) -> dict[str, dict[str, Any]]:
    """Train / eval examples per phase (eval NCT ids removed from train; a trial in two train
    files counts once), and the inner split of train by NCT id."""
    from sklearn.model_selection import train_test_split

    from clinsynth.datasets.trials import Example, load_examples

    out: dict[str, dict[str, Any]] = {}
    for phase, (train_files, eval_file) in PHASE_FILES.items():
        evals = load_examples(data / eval_file, fields=fields)
        eval_ids = {e.id for e in evals}
        seen: dict[str, Example] = {}
        for name in train_files:
            for ex in load_examples(data / name, fields=fields):
                seen.setdefault(ex.id, ex)
        train = sorted((e for e in seen.values() if e.id not in eval_ids), key=lambda e: e.id)
        assert not {e.id for e in train} & eval_ids
        inner_train, inner_val = train_test_split(
            train, test_size=0.2, random_state=SPLIT_SEED, stratify=[e.label for e in train]
        )
        out[phase] = {
            "train_files": train_files,
            "eval_file": eval_file,
            "train": train,
            "eval": evals,
            "inner_train": inner_train,
            "inner_val": inner_val,
            "removed_eval_overlap": len(seen) - len(train),
        }
    return out


def pairs(examples: list[Any]) -> list[tuple[str, str]]:
    return [(e.text, e.label) for e in examples]


def config(cand: dict[str, Any], backbone: str | None, quick: bool) -> Any:
    from clinsynth.finetune import ClassificationConfig

    cfg = ClassificationConfig(
        backbone=backbone,
        max_length=cand["max_length"],
        lr=cand["lr"],
        decision=cand["decision"],
        labels=["failure", "success"],
        positive_label="success",
        **FIXED,
    )
    if quick:
        cfg = cfg.model_copy(update={"epochs": 1.0, "max_length": 64})
    return cfg


def machine() -> dict[str, Any]:
    import sklearn
    import torch
    import transformers

    info: dict[str, Any] = {
        "host": platform.node(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sklearn": sklearn.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["bf16"] = torch.cuda.is_bf16_supported()
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--data", default=None, help="the hint_top folder")
    parser.add_argument("--backbone", default=None, help="model dir [BioBERT, MiniLM offline]")
    parser.add_argument("--out", type=Path, default=None, help=f"results JSON [{RESULTS}]")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--select-budget-s", type=float, default=110.0)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (not a result)")
    parser.add_argument("--phases", default="phase_I,phase_III", help="which phases to report")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--no-select",
        action="store_true",
        help="skip selection; report the settings below (fixed in advance, said in the JSON)",
    )
    parser.add_argument("--text", choices=sorted(TEXTS), default="all")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--decision", choices=("argmax", "val_f1"), default="argmax")
    parser.add_argument("--epochs", type=float, default=None, help=f"[{FIXED['epochs']}]")
    parser.add_argument(
        "--merge", nargs="+", type=Path, default=None, help="combine per-phase JSONs into --out"
    )
    args = parser.parse_args()
    if args.merge:
        merge(args.merge, args.out or RESULTS)
        return
    if args.epochs is not None:
        FIXED["epochs"] = args.epochs
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # this script's own process only
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device visible")
    from clinsynth.finetune import mean_sd, tfidf_lr_scores, train_classifier, train_with_baselines

    t_start = time.perf_counter()
    out: Path = args.out or (
        RESULTS.with_name("trials_real_only.quick.json") if args.quick else RESULTS
    )
    seeds = [int(s) for s in args.seeds.split(",")]
    grid = GRID[:2] if args.quick else GRID
    if args.quick:
        seeds = seeds[:1]
    data = hint_dir(args.data)
    wanted = args.phases.split(",")
    texts = [args.text] if args.no_select else list(TEXTS)
    splits = {
        name: {k: v for k, v in phase_splits(data, TEXTS[name]).items() if k in wanted}
        for name in texts
    }
    if args.quick:
        for by_phase in splits.values():
            for s in by_phase.values():  # inner_* are shuffled: slices of them hold both labels
                s["train"], s["eval"] = s["inner_train"][:48], s["inner_val"][-32:]
                s["inner_train"], s["inner_val"] = s["inner_train"][:40], s["inner_val"][:24]
    report: dict[str, Any] = {
        "benchmark": "trials_real_only",
        "complete": False,
        "quick": args.quick,
        "device_arg": args.device,
        "machine": machine(),
        "loadavg_start": os.getloadavg(),
        "data": {
            "dir": str(data),
            "terms": "hint_top (HINT/TOP, non-commercial use only; see PROVENANCE.md)",
            "phases": {
                phase: {
                    "train_files": s["train_files"],
                    "eval_file": s["eval_file"],
                    "n_train": len(s["train"]),
                    "n_eval": len(s["eval"]),
                    "train_label_counts": dict(Counter(e.label for e in s["train"])),
                    "eval_label_counts": dict(Counter(e.label for e in s["eval"])),
                    "removed_eval_overlap": s["removed_eval_overlap"],
                    "inner_split": {
                        "by": "NCT id, stratified by label",
                        "seed": SPLIT_SEED,
                        "n_inner_train": len(s["inner_train"]),
                        "n_inner_val": len(s["inner_val"]),
                        "inner_val_ids": sorted(e.id for e in s["inner_val"]),
                    },
                }
                for phase, s in splits[texts[0]].items()
            },
        },
        "texts": TEXTS,
        "selection": {
            "protocol": "fine-tune on inner-train, score on inner-val (both phases), seed "
            f"{SELECT_SEED}; pick the highest mean over phases of (roc_auc + f1) / 2; "
            "evaluation files are not read for selection",
            "fixed": FIXED,
            "grid": grid,
            "budget_s": args.select_budget_s,
            "tried": [],
        },
    }

    def write() -> None:
        report["wall_s"] = round(time.perf_counter() - t_start, 1)
        report["loadavg_end"] = os.getloadavg()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")

    if args.no_select:
        report["selection"] = {
            "run": False,
            "why": "--no-select: settings fixed in advance (CPU-only run; the GPU run was not "
            "available), none chosen on the reported files",
        }
        write()
        run_final(args, report, splits, seeds, write, train_with_baselines, mean_sd)
        return
    # Inner-val baselines per text (for the log; TF-IDF with argmax and with val_f1).
    report["selection"]["inner_val_baselines"] = {
        text: {
            phase: {
                decision: tfidf_lr_scores(
                    pairs(s["inner_train"]),
                    pairs(s["inner_val"]),
                    ["failure", "success"],
                    "success",
                    decision=decision,
                    seed=SELECT_SEED,
                )
                for decision in ("argmax", "val_f1")
            }
            for phase, s in by_phase.items()
        }
        for text, by_phase in splits.items()
    }
    tried: list[dict[str, Any]] = report["selection"]["tried"]
    t_sel = time.perf_counter()
    for cand in grid:
        if tried and time.perf_counter() - t_sel > args.select_budget_s:
            break
        row: dict[str, Any] = {**cand, "phases": {}}
        for phase, s in splits[cand["text"]].items():
            cfg = config(cand, args.backbone, args.quick).model_copy(update={"seed": SELECT_SEED})
            res = train_classifier(pairs(s["inner_train"]), pairs(s["inner_val"]), cfg)
            row["phases"][phase] = {
                **(res.metrics or {}),
                "threshold": res.threshold,
                "train_seconds": round(res.train_seconds, 1),
            }
            report["backbone"] = res.backbone.model_dump()
        row["score"] = sum((m["roc_auc"] + m["f1"]) / 2 for m in row["phases"].values()) / len(
            row["phases"]
        )
        tried.append(row)
        print(f"select {cand}: score {row['score']:.4f}", flush=True)
        write()
    report["selection"]["seconds"] = round(time.perf_counter() - t_sel, 1)
    report["selection"]["n_tried"] = len(tried)
    best = max(tried, key=lambda r: r["score"])
    args.text, args.max_length, args.lr, args.decision = (
        best[k] for k in ("text", "max_length", "lr", "decision")
    )
    report["selection"]["best_score"] = best["score"]
    run_final(args, report, splits, seeds, write, train_with_baselines, mean_sd)


def run_final(
    args: Any,
    report: dict[str, Any],
    splits: dict[str, Any],
    seeds: list[int],
    write: Any,
    train_with_baselines: Any,
    mean_sd: Any,
) -> None:
    """Train the chosen settings per seed on each phase's train data; score on its eval file
    beside the baselines. Each finished seed is written (a cut-off run keeps them)."""
    chosen = {k: getattr(args, k) for k in ("text", "max_length", "lr", "decision")}
    cfg = config(chosen, args.backbone, args.quick)
    report["chosen"] = {**chosen, "fields": TEXTS[chosen["text"]]}
    report["config"] = cfg.model_dump(mode="json")
    report["seeds"] = seeds
    report["phases"] = {}
    for phase, s in splits[chosen["text"]].items():
        t0 = time.perf_counter()
        done: list[dict[str, Any]] = []
        report["phases"][phase] = {"complete": False, "runs_so_far": done}

        def seen(seed: int, result: Any, done: list[dict[str, Any]] = done) -> None:
            done.append({"seed": seed, **(result.metrics or {}), "threshold": result.threshold})
            done[-1]["train_seconds"] = round(result.train_seconds, 1)
            print(f"  seed {seed}: {done[-1]}", flush=True)
            write()

        res = train_with_baselines(pairs(s["train"]), pairs(s["eval"]), cfg, seeds, on_result=seen)
        report["backbone"] = res.pop("backbone")
        res["wall_s"] = round(time.perf_counter() - t0, 1)
        res["complete"] = True
        report["phases"][phase] = res
        m, base = res["summary"], res["baselines"]
        print(
            f"{phase}: model roc_auc {m['roc_auc']['mean']:.3f} f1 {m['f1']['mean']:.3f} | "
            f"tfidf_lr {base['tfidf_lr']['summary']['roc_auc']['mean']:.3f} "
            f"{base['tfidf_lr']['summary']['f1']['mean']:.3f} | majority f1 "
            f"{base['majority']['summary']['f1']['mean']:.3f} | beats all: "
            f"{res['vs_baselines']['beats_all']}",
            flush=True,
        )
        write()
    report["complete"] = True
    write()
    print(f"wrote results ({report['wall_s']} s)")


def merge(files: list[Path], out: Path) -> None:
    """One results JSON from per-phase runs of the same settings (``--phases`` run apart)."""
    reports = [json.loads(f.read_text()) for f in files]
    first = reports[0]
    for other in reports[1:]:
        for key in ("config", "seeds", "chosen", "selection"):
            if other.get(key) != first.get(key):
                raise SystemExit(f"cannot merge: '{key}' differs between the files")
    merged = dict(first)
    merged["phases"] = {k: v for r in reports for k, v in r.get("phases", {}).items()}
    merged["data"] = dict(first["data"])
    merged["data"]["phases"] = {k: v for r in reports for k, v in r["data"]["phases"].items()}
    merged["complete"] = all(r.get("complete") for r in reports)
    merged["merged_from"] = [
        {
            "file": f.name,
            "wall_s": r.get("wall_s"),
            "complete": r.get("complete"),
            "loadavg_start": r.get("loadavg_start"),
            "loadavg_end": r.get("loadavg_end"),
        }
        for f, r in zip(files, reports, strict=True)
    ]
    merged["wall_s"] = max(r.get("wall_s") or 0 for r in reports)
    out.write_text(json.dumps(merged, indent=2, default=str) + "\n")
    print(f"merged {len(files)} files into {out}")


if __name__ == "__main__":
    main()
