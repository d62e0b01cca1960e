"""Detectors: which given labels are likely wrong, decided from out-of-fold probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel

from clinsynth.tools.labels.models import Method, OursSettings
from clinsynth.tools.labels.probabilities import knn_oof_proba, oof_proba


class Detection(BaseModel):
    """A detector's output over all items."""

    model_config = {"arbitrary_types_allowed": True}

    flagged: np.ndarray
    suggested: np.ndarray
    proba: np.ndarray
    reasons: list[str]


def _argmax_detect(y: np.ndarray, proba: np.ndarray) -> Detection:
    pred = proba.argmax(axis=1)
    flagged = pred != y
    reasons = ["most probable class differs from the label" if f else "" for f in flagged]
    return Detection(flagged=flagged, suggested=pred, proba=proba, reasons=reasons)


def _cleanlab_detect(y: np.ndarray, proba: np.ndarray, **kwargs: Any) -> np.ndarray:
    from cleanlab.filter import find_label_issues

    if len(np.unique(y)) < 2:
        return np.zeros(len(y), dtype=bool)
    # n_jobs=1: cleanlab's default multiprocessing only changes speed, and costs more than it
    # saves on small inputs.
    issues = find_label_issues(labels=y, pred_probs=proba, n_jobs=1, **kwargs)
    return np.asarray(issues, dtype=bool)


def _cleanlab_default(y: np.ndarray, proba: np.ndarray) -> Detection:
    flagged = _cleanlab_detect(y, proba)
    reasons = ["confident learning (cleanlab defaults)" if f else "" for f in flagged]
    return Detection(flagged=flagged, suggested=proba.argmax(axis=1), proba=proba, reasons=reasons)


def ours_detect(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    folds: int = 5,
    seed: int = 0,
    settings: OursSettings | None = None,
) -> Detection:
    """The ``ours`` detector on features ``x``: an item is flagged when

    1. confident learning flags it (cleanlab, ``filter_by="both"``: off-diagonal of the
       confident joint *and* among the lowest-ranked of its class by the estimated noise
       rate) on out-of-fold probabilities averaged over ``repeats`` re-shuffled
       cross-validations (a steadier estimate than one split);
    2. the suggested class beats the given one by at least ``min_margin``;
    3. a second view of the same features, an out-of-fold ``knn_k``-nearest-neighbour vote,
       does not pick the given label either.
    """
    s = settings or OursSettings()
    proba = oof_proba(x, y, n_classes, folds=folds, seed=seed, repeats=s.repeats)
    pred = proba.argmax(axis=1)
    rows = np.arange(len(y))
    margin = proba[rows, pred] - proba[rows, y]
    confident = _cleanlab_detect(y, proba, filter_by="both")
    knn_disagrees = np.ones(len(y), dtype=bool)
    if s.use_knn:
        knn = knn_oof_proba(x, y, n_classes, k=s.knn_k, folds=folds, seed=seed)
        knn_disagrees = knn.argmax(axis=1) != y
    flagged = confident & knn_disagrees & (margin >= s.min_margin)
    reasons = [
        (
            f"confident learning on averaged out-of-fold probabilities; margin "
            f"{margin[i]:.2f} ≥ {s.min_margin}"
            + (f"; the {s.knn_k}-NN view also rejects the label" if s.use_knn else "")
        )
        if flagged[i]
        else ""
        for i in rows
    ]
    return Detection(flagged=flagged, suggested=pred, proba=proba, reasons=reasons)


def detect(
    method: Method,
    y: np.ndarray,
    *,
    proba: np.ndarray | None = None,
    features: np.ndarray | None = None,
    n_classes: int | None = None,
    folds: int = 5,
    seed: int = 0,
    settings: OursSettings | None = None,
) -> Detection:
    """Run one detector. ``argmax`` and ``cleanlab`` need out-of-fold ``proba`` (computed from
    ``features`` when not given); ``ours`` needs ``features`` and falls back to ``proba``
    alone (confident learning with the margin rule) when a fine-tuned backbone gave no
    features."""
    y = np.asarray(y, dtype=int)
    k = n_classes or (proba.shape[1] if proba is not None else int(y.max()) + 1)
    if method == "ours":
        if features is not None:
            return ours_detect(features, y, k, folds=folds, seed=seed, settings=settings)
        assert proba is not None, "ours needs features or probabilities"
        s = settings or OursSettings()
        pred = proba.argmax(axis=1)
        rows = np.arange(len(y))
        margin = proba[rows, pred] - proba[rows, y]
        flagged = _cleanlab_detect(y, proba, filter_by="both") & (margin >= s.min_margin)
        reasons = [
            f"confident learning; margin {m:.2f}" if f else ""
            for f, m in zip(flagged, margin, strict=True)
        ]
        return Detection(flagged=flagged, suggested=pred, proba=proba, reasons=reasons)
    if proba is None:
        assert features is not None, f"{method} needs features or probabilities"
        proba = oof_proba(features, y, k, folds=folds, seed=seed)
    if method == "argmax":
        return _argmax_detect(y, proba)
    return _cleanlab_default(y, proba)
