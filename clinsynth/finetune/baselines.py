"""Trivial baselines scored beside every fine-tuned classifier, on the same split and text:
the majority class of the training labels, and TF-IDF + logistic regression (scikit-learn).

:func:`compare_to_baselines` says whether a model's mean ROC-AUC and F1 beat both; a model
that does not is flagged by every caller (CLI table, tool result, JSON).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from clinsynth.finetune.errors import DatasetError
from clinsynth.finetune.metrics import best_f1_threshold, classification_scores

Label = str | int
COMPARED = ("roc_auc", "f1")
"""The metrics a model must beat every baseline on (mean over seeds)."""
TFIDF = {"sublinear_tf": True, "ngram_range": (1, 2), "min_df": 2, "max_features": 200_000}
"""TF-IDF settings: word uni- and bigrams seen in at least two training texts, log tf."""


def majority_scores(
    train_labels: Sequence[Label],
    eval_labels: Sequence[Label],
    labels: Sequence[Label],
    positive_label: Label | None = None,
) -> dict[str, Any]:
    """Scores of always predicting the most frequent training label (a constant score, so its
    ROC-AUC is 0.5)."""
    if not train_labels:
        raise DatasetError("majority baseline: no training labels")
    majority = Counter(train_labels).most_common(1)[0][0]
    proba = np.zeros((len(eval_labels), len(labels)))
    proba[:, list(labels).index(majority)] = 1.0
    return {
        **classification_scores(list(eval_labels), proba, labels, positive_label),
        "predicts": majority,
    }


def tfidf_lr_scores(
    train: Sequence[tuple[str, Label]],
    eval: Sequence[tuple[str, Label]],
    labels: Sequence[Label],
    positive_label: Label | None = None,
    *,
    decision: str = "argmax",
    val_fraction: float = 0.2,
    seed: int = 0,
) -> dict[str, Any]:
    """TF-IDF + logistic regression fitted on ``train`` and scored on ``eval``.

    ``decision="val_f1"`` (binary tasks) follows the fine-tune's protocol: fit on a stratified
    ``1 - val_fraction`` share, predict the positive class above the threshold that maximises
    F1 on the held-out share.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from clinsynth.finetune.classification import _split_eval

    order = list(labels)
    index = {lab: i for i, lab in enumerate(order)}
    fit: list[tuple[str, Label]] = list(train)
    held: list[tuple[str, Label]] = []
    binary = len(order) == 2
    if decision == "val_f1" and binary:
        fit, held = _split_eval(fit, val_fraction, seed)
    if len({y for _, y in fit}) < 2:
        raise DatasetError("TF-IDF baseline: need at least two classes in the training labels")
    params = dict(TFIDF)
    if len(fit) < 50:  # tiny sets: keep every word so the vocabulary is never empty
        params["min_df"] = 1
    vectorizer = TfidfVectorizer(**params)
    try:
        x_fit = vectorizer.fit_transform([t for t, _ in fit])
    except ValueError as exc:  # e.g. an empty vocabulary
        raise DatasetError(f"TF-IDF baseline: {exc}") from exc
    model = LogisticRegression(max_iter=2000, random_state=seed)
    model.fit(x_fit, [index[y] for _, y in fit])

    def proba(pairs: Sequence[tuple[str, Label]]) -> np.ndarray:
        out = np.zeros((len(pairs), len(order)))
        out[:, model.classes_] = model.predict_proba(vectorizer.transform([t for t, _ in pairs]))
        return out

    threshold = None
    if held:
        pos = index[order[-1] if positive_label is None else positive_label]
        threshold = best_f1_threshold([index[y] == pos for _, y in held], proba(held)[:, pos])
    truth = [y for _, y in eval]
    scores = classification_scores(truth, proba(eval), order, positive_label, threshold)
    return {**scores, "threshold": threshold}


def compare_to_baselines(
    summary: Mapping[str, Mapping[str, float]],
    baselines: Mapping[str, Mapping[str, Any]],
    metrics: Sequence[str] = COMPARED,
) -> dict[str, Any]:
    """Whether the model's mean of each metric is strictly above every baseline's.

    ``summary`` is a mean ± sd summary (metric → {mean, ...}); each baseline is a summary of the
    same shape. Returns ``{"beats_all": bool, "failures": [...]}``, one failure line per metric
    and baseline it does not beat (an undefined metric counts as not beaten).
    """
    failures = []
    for name, base in baselines.items():
        for metric in metrics:
            mine = (summary.get(metric) or {}).get("mean")
            theirs = (base.get(metric) or {}).get("mean")
            if mine is None or theirs is None or not mine > theirs:
                shown = "n/a" if mine is None else f"{mine:.3f}"
                ref = "n/a" if theirs is None else f"{theirs:.3f}"
                failures.append(f"{metric} {shown} does not beat {name} {ref}")
    return {"beats_all": not failures, "metrics": list(metrics), "failures": failures}
