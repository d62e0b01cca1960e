"""Would another view of the text, or a better head, lift flag F1 to the 0.75 goal? (dev only)

Usage: nice -n 5 python bench/label_noise_views.py [--datasets medical_abstracts_tc,mts_dialog]

Reads only the ``dev`` half of each data set (``bench/label_noise_data.py``) and plants 20 %
symmetric noise with the dev seeds (994-996). For each *view*, out-of-fold logistic-regression
probabilities (5 folds, the same seed per run) feed two rules: cleanlab's default
``find_label_issues`` and the tool's ``ours`` rule as chosen in
``bench/results/label_noise_selection.json`` (its k-NN view on the embeddings). Views:

- ``embedding``: frozen MiniLM embeddings, C = the chosen ``head_c`` (the tool's view);
- ``tfidf``: word 1-2-gram TF-IDF (sublinear tf, min_df 2), C = 1 and 10;
- ``embedding+tfidf``: both, side by side in one sparse matrix, C = 1 and 10;
- ``average``: the mean of the embedding and TF-IDF (C = 10) probabilities;
- ``ceiling``: the embedding head fitted on the *clean* labels (out of fold). No detector can
  have this; it bounds what any head on these features could give the same rules.

Each row reports the head's accuracy against the clean labels and the flag precision, recall
and F1 against the planted flips, averaged over the seeds. Writes
``bench/results/label_noise_views.json``. Budget: ~3 min on 2 cores (embeddings cached).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from label_noise_data import (
    DEV_NOISE_SEEDS,
    LOADERS,
    REPO,
    cached_embeddings,
    flag_scores,
    inject_noise,
    machine,
    rows_digest,
)

from clinsynth.tools.labels import OursSettings, detect, knn_view, oof_proba, ours_flags

RESULTS = REPO / "bench" / "results" / "label_noise_views.json"
SELECTION = REPO / "bench" / "results" / "label_noise_selection.json"
RATE = 0.2


def views(
    emb: np.ndarray, texts: list[str], head_c: float
) -> dict[str, Callable[[np.ndarray, np.ndarray, int, int], np.ndarray]]:
    """Each view: (labels to fit on, clean labels, classes, seed) → out-of-fold probabilities."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2)).fit_transform(texts)
    both = sp.hstack([tfidf, sp.csr_matrix(emb)]).tocsr()

    def embedding(noisy: np.ndarray, _clean: np.ndarray, k: int, seed: int) -> np.ndarray:
        return oof_proba(emb, noisy, k, seed=seed, c=head_c)

    def average(noisy: np.ndarray, _clean: np.ndarray, k: int, seed: int) -> np.ndarray:
        return (
            embedding(noisy, _clean, k, seed) + oof_proba(tfidf, noisy, k, seed=seed, c=10.0)
        ) / 2

    def ceiling(_noisy: np.ndarray, clean: np.ndarray, k: int, seed: int) -> np.ndarray:
        return oof_proba(emb, clean, k, seed=seed, c=head_c)

    table: dict[str, Callable[[np.ndarray, np.ndarray, int, int], np.ndarray]] = {
        "embedding": embedding
    }
    for c in (1.0, 10.0):
        table[f"tfidf C={c:g}"] = lambda n, _y, k, s, c=c: oof_proba(tfidf, n, k, seed=s, c=c)
        table[f"embedding+tfidf C={c:g}"] = lambda n, _y, k, s, c=c: oof_proba(
            both, n, k, seed=s, c=c
        )
    table["average"] = average
    table["ceiling (head fitted on clean labels)"] = ceiling
    return table


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="medical_abstracts_tc,mts_dialog")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    chosen = json.loads(SELECTION.read_text())["chosen"]
    settings = OursSettings(**chosen["ours"])
    head_c = float(chosen["head_c"])
    out: dict[str, Any] = {}
    for name in args.datasets.split(","):
        ds = LOADERS[name]()
        emb = cached_embeddings(ds)[ds.dev]
        y, k = ds.y[ds.dev], len(ds.classes)
        texts = [ds.texts[i] for i in ds.dev]
        table = views(emb, texts, head_c)
        rows: dict[str, dict[str, list[dict[str, float]]]] = {v: {} for v in table}
        for seed in DEV_NOISE_SEEDS[RATE]:
            noisy = inject_noise(y, k, RATE, seed, ~ds.conflict[ds.dev])
            flipped = noisy != y
            knn = knn_view(emb, noisy, settings.knn_k)[0] if settings.use_knn else None
            for view, fit in table.items():
                proba = fit(noisy, y, k, seed)
                accuracy = float((proba.argmax(axis=1) == y).mean())
                for rule, flagged in (
                    ("cleanlab", detect("cleanlab", noisy, proba=proba, n_classes=k).flagged),
                    ("ours", ours_flags(noisy, proba, knn, settings)),
                ):
                    score = flag_scores(flagged, flipped) | {"head_accuracy": accuracy}
                    rows[view].setdefault(rule, []).append(score)
        out[name] = {
            "dev_rows": len(ds.dev),
            "dev_rows_digest": rows_digest(ds.dev),
            "views": {
                view: {
                    rule: {
                        key: round(float(np.mean([s[key] for s in scores])), 4)
                        for key in ("head_accuracy", "precision", "recall", "f1")
                    }
                    for rule, scores in by_rule.items()
                }
                for view, by_rule in rows.items()
            },
        }
        for view, by_rule in out[name]["views"].items():
            print(f"{name:22s} {view:40s} " + "  ".join(f"{r} {v}" for r, v in by_rule.items()))
    report = {
        "benchmark": "label_noise_views",
        "question": "does another view of the text, or a better head, reach flag F1 0.75?",
        "split": "dev halves only (bench/label_noise_data.py); the test halves are not read",
        "noise": f"{RATE:.0%} symmetric, dev seeds {list(DEV_NOISE_SEEDS[RATE])}",
        "ours_settings": settings.model_dump(),
        "head_c": head_c,
        "datasets": out,
        "machine": machine(),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"→ {args.out} ({report['wall_seconds']}s)")
    return report


if __name__ == "__main__":
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        main()
