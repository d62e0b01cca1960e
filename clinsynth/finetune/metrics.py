"""Evaluation metrics: SQuAD v2 EM/F1, Reference Overlap, classification scores, seed summaries.

EM and F1 follow the official SQuAD v2 evaluation script's definitions (lower-case, strip
punctuation and English articles, collapse whitespace; an empty answer means "unanswerable").
They are implemented here because the ``evaluate`` package downloads its metrics from the hub.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from clinsynth.finetune.qa_data import QAExample, QAPrediction

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = frozenset(string.punctuation)


def normalize_answer(text: str | None) -> str:
    """SQuAD normalisation: lower-case, drop punctuation and articles, collapse whitespace."""
    if not text:
        return ""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str | None, gold: str | None) -> float:
    """1.0 if the normalised answers are equal (None / "" = unanswerable), else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str | None, gold: str | None) -> float:
    """Token-overlap F1 of normalised answers; both empty → 1.0, exactly one empty → 0.0."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def reference_overlap(
    pred_start: int | None, pred_end: int | None, gold_start: int | None, gold_end: int | None
) -> float:
    """1.0 if the predicted and gold character spans ``[start, end)`` share a character.

    A missing span (None) means unanswerable: both unanswerable → 1.0, only one → 0.0.
    """
    pred_empty = pred_start is None or pred_end is None
    gold_empty = gold_start is None or gold_end is None
    if pred_empty or gold_empty:
        return float(pred_empty and gold_empty)
    assert pred_start is not None and pred_end is not None  # narrowed above, for mypy
    assert gold_start is not None and gold_end is not None
    return float(max(pred_start, gold_start) < min(pred_end, gold_end))


def qa_scores(predictions: Sequence[QAPrediction], examples: Sequence[QAExample]) -> dict[str, Any]:
    """EM, F1 and Reference Overlap (percentages) of predictions matched to examples by id."""
    by_id = {p.id: p for p in predictions}
    missing = [e.id for e in examples if e.id not in by_id]
    if missing:
        raise ValueError(f"{len(missing)} examples have no prediction, e.g. {missing[0]!r}")
    rows: dict[str, list[float]] = {"exact_match": [], "f1": [], "reference_overlap": []}
    has_answer: list[bool] = []
    for ex in examples:
        pred = by_id[ex.id]
        span = (None, None) if pred.is_unanswerable else (pred.start, pred.end)
        rows["exact_match"].append(exact_match(pred.answer, ex.answer_text))
        rows["f1"].append(f1(pred.answer, ex.answer_text))
        rows["reference_overlap"].append(reference_overlap(*span, ex.answer_start, ex.answer_end))
        has_answer.append(ex.answer_text is not None)
    mask = np.array(has_answer, dtype=bool)
    out: dict[str, Any] = {k: _pct(v) for k, v in rows.items()}
    for prefix, sel in (("has_ans", mask), ("no_ans", ~mask)):
        if sel.any():
            for k, v in rows.items():
                out[f"{prefix}_{k}"] = _pct(np.asarray(v)[sel])
    out["n"] = len(examples)
    out["n_answerable"] = int(mask.sum())
    out["n_unanswerable"] = int((~mask).sum())
    out["n_predicted_unanswerable"] = sum(by_id[e.id].is_unanswerable for e in examples)
    return out


def _pct(values: Sequence[float] | np.ndarray) -> float:
    return 100.0 * float(np.mean(values)) if len(values) else 0.0


def classification_scores(
    y_true: Sequence[Any],
    proba: np.ndarray,
    labels: Sequence[Any],
    positive_label: Any = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Accuracy, macro-F1, F1/precision/recall, ROC-AUC and PR-AUC from class probabilities.

    ``proba[:, j]`` is the probability of ``labels[j]``. Binary tasks report F1, precision and
    recall of ``positive_label`` (default ``labels[-1]``), predicting it when its probability is
    at least ``threshold`` (default: the most probable class); multiclass tasks report macro
    averages and one-vs-rest macro AUCs over the classes present. AUCs undefined on the data
    (a single class present) are None.
    """
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    labels = list(labels)
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape != (len(y_true), len(labels)):
        raise ValueError(f"proba shape {proba.shape} != ({len(y_true)}, {len(labels)})")
    unknown = {y for y in y_true if y not in labels}
    if unknown:
        raise ValueError(f"y_true has labels not in labels: {sorted(map(str, unknown))}")
    index = {lab: i for i, lab in enumerate(labels)}
    y = np.array([index[v] for v in y_true], dtype=int)
    pred = proba.argmax(axis=1)
    if threshold is not None and len(labels) == 2:
        pos = index[labels[-1] if positive_label is None else positive_label]
        pred = np.where(proba[:, pos] >= threshold, pos, 1 - pos)
    all_idx = list(range(len(labels)))
    out: dict[str, Any] = {
        "n": len(y),
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=all_idx, average="macro", zero_division=0)),
    }
    present = sorted(set(y.tolist()))
    if len(labels) == 2:
        pos = index[labels[-1] if positive_label is None else positive_label]
        kw: dict[str, Any] = {"pos_label": pos, "average": "binary", "zero_division": 0}
        out["positive_label"] = labels[pos]
        y_bin = (y == pos).astype(int)
        defined = len(present) == 2
        out["roc_auc"] = float(roc_auc_score(y_bin, proba[:, pos])) if defined else None
        out["pr_auc"] = float(average_precision_score(y_bin, proba[:, pos])) if defined else None
    else:
        kw = {"labels": all_idx, "average": "macro", "zero_division": 0}
        per_class = [(y == j).astype(int) for j in present]
        defined = len(present) >= 2
        out["roc_auc"] = (
            float(
                np.mean(
                    [roc_auc_score(t, proba[:, j]) for t, j in zip(per_class, present, strict=True)]
                )
            )
            if defined
            else None
        )
        out["pr_auc"] = (
            float(
                np.mean(
                    [
                        average_precision_score(t, proba[:, j])
                        for t, j in zip(per_class, present, strict=True)
                    ]
                )
            )
            if defined
            else None
        )
    out["f1"] = float(f1_score(y, pred, **kw))
    out["precision"] = float(precision_score(y, pred, **kw))
    out["recall"] = float(recall_score(y, pred, **kw))
    return out


def mean_sd(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and sample SD (ddof=1; 0 for one run) of each numeric metric, over runs that have it."""
    keys = list(dict.fromkeys(k for run in runs for k in run))
    out: dict[str, dict[str, float]] = {}
    for key in keys:
        values = [
            float(run[key])
            for run in runs
            if isinstance(run.get(key), int | float) and not isinstance(run.get(key), bool)
        ]
        values = [v for v in values if not math.isnan(v)]
        if not values:
            continue
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        out[key] = {"mean": float(np.mean(values)), "sd": sd, "n": len(values)}
    return out


def best_f1_threshold(
    y_positive: Sequence[bool] | np.ndarray, p_positive: Sequence[float] | np.ndarray
) -> float:
    """The probability threshold that maximises the positive class's F1 on held-out data
    (predict positive when ``p >= threshold``); ties go to the threshold nearest 0.5."""
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y_positive, dtype=int)
    p = np.asarray(p_positive, dtype=float)
    if len(y) == 0 or y.min() == y.max():
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y, p)
    f1s = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    best = f1s.max()
    candidates = thresholds[np.isclose(f1s, best)]
    return float(candidates[np.abs(candidates - 0.5).argmin()])
