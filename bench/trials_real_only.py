"""Real-only trial outcome baseline on HINT/TOP: fine-tune, 3 seeds, mean ± sd.

Usage: nice -n 10 python bench/trials_real_only.py [--quick] [--max-length N] [--epochs E]

- Phase I: train on ``phase_I_train`` (1,044), report on ``phase_I_valid`` (117).
- Phase III: there is no Phase III train split (PROVENANCE.md), so train on the other phases'
  data (``phase_I_train`` + ``phase_I_valid`` + ``phase_II_valid``) and report on
  ``phase_III_valid`` (344). Every NCT id of the evaluation file is removed from training.

Hyper-parameters are fixed in advance (no model selection on the validation files, which are
the files reported). Backbone: BioBERT if cached locally, else the bundled MiniLM BERT (the
CPU backbone; the fallback is recorded). Text: scrubbed phase, conditions, interventions and
eligibility criteria (``trial_text``); status / why_stop never enter it.

CPU budget (stated, and written into the JSON): max_length 128, 1 epoch, batch 16, 3 seeds:
1,044 (phase I) + ~1,600 (phase III) training examples per seed, ~7,900 in all; at the
~13 examples/s MiniLM trains at 128 tokens on 2 free cores (DESIGN.md: 6.7/s at 256) that is
about 10 min, ≤ 15 min with evaluation. On a shared machine, ``--max-length 64`` and running
``--phases phase_I`` and ``--phases phase_III`` as two invocations (same ``--out``: results
merge) cut the wall time.
Data are read in place from ``../shared/data`` (CLINSYNTH_SHARED_DATA overrides).
"""

from __future__ import annotations

import argparse
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

from clinsynth.datasets.trials import Example, load_examples  # noqa: E402

RESULTS = REPO / "bench" / "results" / "trials_real_only.json"
BUDGET = (
    "designed for ≤ 15 min on 2 free CPU cores at the defaults (MiniLM, max_length 128, "
    "1 epoch, 3 seeds); see config and wall_s for this run"
)


def hint_dir() -> Path:
    root = Path(os.environ.get("CLINSYNTH_SHARED_DATA", REPO.parent / "shared" / "data"))
    path = root / "hint_top"
    if not (path / "phase_I_train.csv").is_file():
        raise SystemExit(f"hint_top not found under {root}; set CLINSYNTH_SHARED_DATA")
    return path


def phase_splits(data: Path) -> dict[str, dict[str, Any]]:
    """Train / eval example lists per phase, with NCT ids of eval removed from train."""
    files = {
        "phase_I": (["phase_I_train.csv"], "phase_I_valid.csv"),
        "phase_III": (
            ["phase_I_train.csv", "phase_I_valid.csv", "phase_II_valid.csv"],
            "phase_III_valid.csv",
        ),
    }
    out: dict[str, dict[str, Any]] = {}
    for phase, (train_files, eval_file) in files.items():
        evals = load_examples(data / eval_file)
        eval_ids = {e.id for e in evals}
        seen: dict[str, Example] = {}
        for name in train_files:
            for ex in load_examples(data / name):
                seen.setdefault(ex.id, ex)  # a trial in two train files counts once
        train = [e for e in seen.values() if e.id not in eval_ids]
        assert not {e.id for e in train} & eval_ids
        out[phase] = {
            "train_files": train_files,
            "eval_file": eval_file,
            "train": train,
            "eval": evals,
            "removed_eval_overlap": len(seen) - len(train),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized smoke run (not a result)")
    parser.add_argument("--backbone", default=None, help="default: BioBERT (falls back offline)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--phases",
        default="phase_I,phase_III",
        help="which phases to run; results of other phases already in --out are kept",
    )
    args = parser.parse_args()

    import torch
    import transformers

    from clinsynth.commands.train import train_sets
    from clinsynth.finetune import ClassificationConfig

    seeds = [int(s) for s in args.seeds.split(",")]
    wanted = args.phases.split(",")
    splits = {k: v for k, v in phase_splits(hint_dir()).items() if k in wanted}
    if not splits:
        raise SystemExit(f"--phases must name phase_I and/or phase_III, got {args.phases}")
    cfg = ClassificationConfig(
        backbone=args.backbone,
        max_length=args.max_length,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        labels=["failure", "success"],
        positive_label="success",
    )
    if args.quick:
        seeds = seeds[:1]
        cfg = cfg.model_copy(update={"max_steps": 3, "max_length": 64})
        for split in splits.values():
            split["train"] = split["train"][:48]
            split["eval"] = split["eval"][:32]
    phases: dict[str, Any] = {}
    backbone: dict[str, Any] | None = None
    out: Path = args.out
    if args.quick and out == RESULTS:
        out = RESULTS.with_name("trials_real_only.quick.json")

    def write(complete: bool) -> dict[str, Any]:
        """Write the results so far (each finished phase is kept if a later one is cut off);
        phases run earlier with the same config by another invocation are kept."""
        merged = dict(phases)
        if out.is_file():
            old = json.loads(out.read_text())
            if old.get("config") == cfg.model_dump(mode="json") and old.get("seeds") == seeds:
                merged = {**old.get("phases", {}), **phases}
        report = {
            "benchmark": "trials_real_only",
            "complete": complete and {"phase_I", "phase_III"} <= set(merged),
            "quick": args.quick,
            "budget": BUDGET,
            "model_selection": "none: hyper-parameters fixed in advance; valid files are reported",
            "text": "trial_text: phase, conditions, interventions, eligibility criteria (scrubbed)",
            "seeds": seeds,
            "config": cfg.model_dump(mode="json"),
            "backbone": backbone,
            "phases": merged,
            "wall_s": round(sum(p["wall_s"] for p in merged.values()), 1),
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "cpu_count": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
            },
            "data": "hint_top (HINT/TOP, non-commercial use only; see PROVENANCE.md)",
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        return report

    for phase, split in splits.items():
        t0 = time.perf_counter()
        res = train_sets({"real": split["train"]}, split["eval"], cfg, seeds)
        backbone = res["backbone"]
        real = res["sets"]["real"]
        phases[phase] = {
            "train_files": split["train_files"],
            "eval_file": split["eval_file"],
            "n_train": len(split["train"]),
            "n_eval": len(split["eval"]),
            "train_label_counts": dict(Counter(e.label for e in split["train"])),
            "eval_label_counts": dict(Counter(e.label for e in split["eval"])),
            "removed_eval_overlap": split["removed_eval_overlap"],
            "runs": real["runs"],
            "summary": real["summary"],
            "wall_s": round(time.perf_counter() - t0, 1),
        }
        s = real["summary"]
        print(
            f"{phase}: "
            + ", ".join(
                f"{m} {s[m]['mean']:.3f} ± {s[m]['sd']:.3f}"
                for m in ("accuracy", "roc_auc", "pr_auc", "f1", "precision", "recall")
            ),
            flush=True,
        )
        write(complete=False)
    report = write(complete=True)
    print(f"wrote {out} ({report['wall_s']} s)")


if __name__ == "__main__":
    main()
