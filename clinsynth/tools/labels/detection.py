"""Detectors: which given labels are likely wrong, decided from out-of-fold probabilities.

cleanlab does the confident-learning filtering (``find_label_issues`` with ``filter_by``),
the ranking (``return_indices_ranked_by``, ``rank.get_label_quality_scores``) and the
near-duplicate check (``Datalab``). What clinsynth adds: out-of-fold probabilities averaged
over re-shuffled cross-validations, leave-one-out k-NN class shares that survive duplicate
texts, and the rule that combines the views.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from pydantic import BaseModel

from clinsynth.tools.labels.models import HEAD_C, Method, OursSettings
from clinsynth.tools.labels.probabilities import oof_proba


class Detection(BaseModel):
    """A detector's output over all items (``rank``: 1 = most likely wrong among the flagged,
    0 for the others; ``near_duplicates``: other items cleanlab finds nearly identical;
    ``knn_issues``: the k-NN view's verdict, when it ran)."""

    model_config = {"arbitrary_types_allowed": True}

    flagged: np.ndarray
    suggested: np.ndarray
    proba: np.ndarray
    reasons: list[str]
    rank: np.ndarray | None = None
    near_duplicates: list[list[int]] | None = None
    knn_issues: np.ndarray | None = None


def _cleanlab_detect(y: np.ndarray, proba: np.ndarray, **kwargs: Any) -> np.ndarray:
    from cleanlab.filter import find_label_issues

    if len(np.unique(y)) < 2:
        return np.zeros(len(y), dtype=bool)
    # n_jobs=1: cleanlab's default multiprocessing only changes speed, and costs more than it
    # saves on small inputs.
    issues = find_label_issues(labels=y, pred_probs=proba, n_jobs=1, **kwargs)
    return np.asarray(issues, dtype=bool)


def _cleanlab_ranked(y: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab's defaults, its issues returned ranked by normalized margin: (mask, rank)."""
    from cleanlab.filter import find_label_issues

    flagged = np.zeros(len(y), dtype=bool)
    rank = np.zeros(len(y), dtype=int)
    if len(np.unique(y)) < 2:
        return flagged, rank
    order = np.asarray(
        find_label_issues(
            labels=y, pred_probs=proba, n_jobs=1, return_indices_ranked_by="normalized_margin"
        ),
        dtype=int,
    )
    flagged[order] = True
    rank[order] = np.arange(1, len(order) + 1)
    return flagged, rank


def issue_rank(y: np.ndarray, proba: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """1, 2, … for the flagged items, most likely wrong first (cleanlab's normalized-margin
    label quality, lowest first); 0 for the others."""
    from cleanlab.rank import order_label_issues

    rank = np.zeros(len(y), dtype=int)
    if flagged.any():
        order = order_label_issues(flagged, labels=y, pred_probs=proba, rank_by="normalized_margin")
        rank[order] = np.arange(1, len(order) + 1)
    return rank


def margin_rule(y: np.ndarray, proba: np.ndarray, min_margin: float) -> np.ndarray:
    """True where the most probable other class beats the given one by ``min_margin``:
    cleanlab's normalized margin ``(p_given - max_other + 1) / 2`` at most
    ``(1 - min_margin) / 2`` (no restriction at 0)."""
    from cleanlab.rank import get_label_quality_scores

    if min_margin <= 0:
        return np.ones(len(y), dtype=bool)
    score = get_label_quality_scores(y, proba, method="normalized_margin")
    return np.asarray(score <= (1.0 - min_margin) / 2.0 + 1e-12)


def knn_proba(x: np.ndarray, y: np.ndarray, n_classes: int, k: int) -> np.ndarray:
    """Leave-one-out class shares among each item's ``k`` nearest neighbours (Euclidean on
    the rows as given; cosine order for unit-norm embeddings). The item itself is left out by
    index, so an exact duplicate still counts as a neighbour (cleanlab ``Datalab``'s own k-NN
    label check assumes the item is its own nearest neighbour and fails on duplicates)."""
    from sklearn.neighbors import NearestNeighbors

    n = len(y)
    kk = min(k, n - 1)
    index = NearestNeighbors(n_neighbors=kk + 1).fit(x)
    _, nearest = index.kneighbors(x)
    out = np.zeros((n, n_classes))
    for row in range(n):
        others = [j for j in nearest[row] if j != row][:kk]
        np.add.at(out[row], y[others], 1.0 / kk)
    return out


def knn_view(
    x: np.ndarray, y: np.ndarray, k: int, *, near_duplicates: bool = False
) -> tuple[np.ndarray, list[list[int]] | None]:
    """The second view: cleanlab's ``find_label_issues`` (defaults) on leave-one-out
    ``k``-NN class shares (:func:`knn_proba`); True where it calls the label an issue. With
    ``near_duplicates``, also cleanlab ``Datalab``'s near-duplicate sets."""
    n = len(y)
    y = np.asarray(y, dtype=int)
    if n <= k + 1 or len(np.unique(y)) < 2:
        return np.zeros(n, dtype=bool), ([[] for _ in range(n)] if near_duplicates else None)
    x = np.asarray(x, dtype=np.float32)
    issues = _cleanlab_detect(y, knn_proba(x, y, int(y.max()) + 1, k))
    sets = None
    if near_duplicates:
        from cleanlab import Datalab

        lab = Datalab({"label": y}, label_name="label", verbosity=0)
        with warnings.catch_warnings():  # cleanlab's own pandas deprecation notices
            warnings.simplefilter("ignore", category=FutureWarning)
            warnings.simplefilter("ignore", category=DeprecationWarning)
            lab.find_issues(features=x, issue_types={"near_duplicate": {}})
        frame = lab.get_issues("near_duplicate")
        sets = [[int(j) for j in s] for s in frame.near_duplicate_sets]
    return issues, sets


def ours_flags(
    y: np.ndarray,
    proba: np.ndarray,
    knn_issues: np.ndarray | None,
    settings: OursSettings,
) -> np.ndarray:
    """The ``ours`` rule on ready views: cleanlab's ``filter_by`` filter, the margin rule and,
    with ``use_knn``, the k-NN label check must all call the label wrong."""
    flagged = _cleanlab_detect(y, proba, filter_by=settings.filter_by)
    flagged &= margin_rule(y, proba, settings.min_margin)
    if settings.use_knn and knn_issues is not None:
        flagged &= knn_issues
    return flagged


def ours_detect(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    folds: int = 5,
    seed: int = 0,
    settings: OursSettings | None = None,
    head_c: float = HEAD_C,
) -> Detection:
    """The ``ours`` detector on features ``x``: an item is flagged when

    1. cleanlab's ``find_label_issues`` (``filter_by``) flags it on out-of-fold
       probabilities averaged over ``repeats`` re-shuffled cross-validations (a steadier
       estimate than one split);
    2. the suggested class beats the given one by at least ``min_margin``;
    3. a second view of the same features, cleanlab's filter on leave-one-out
       ``knn_k``-nearest-neighbour class shares, also calls the label an issue.

    cleanlab ``Datalab``'s near-duplicate check names, in the reasons, near-identical items
    that carry another label.
    """
    s = settings or OursSettings()
    proba = oof_proba(x, y, n_classes, folds=folds, seed=seed, repeats=s.repeats, c=head_c)
    knn, dupes = knn_view(x, y, s.knn_k, near_duplicates=True) if s.use_knn else (None, None)
    flagged = ours_flags(y, proba, knn, s)
    pred = proba.argmax(axis=1)
    rows = np.arange(len(y))
    margin = proba[rows, pred] - proba[rows, y]
    reasons = []
    for i in rows:
        if not flagged[i]:
            reasons.append("")
            continue
        text = (
            f"confident learning ({s.filter_by}) on out-of-fold probabilities averaged over "
            f"{s.repeats} cross-validations; margin {margin[i]:.2f} ≥ {s.min_margin}"
        )
        if s.use_knn:
            text += f"; the {s.knn_k}-NN view agrees"
        conflicting = [j for j in (dupes[i] if dupes else []) if y[j] != y[i]]
        if conflicting:
            text += f"; near-duplicate of item(s) {conflicting[:5]} with another label"
        reasons.append(text)
    return Detection(
        flagged=flagged,
        suggested=pred,
        proba=proba,
        reasons=reasons,
        rank=issue_rank(y, proba, flagged),
        near_duplicates=dupes,
        knn_issues=knn,
    )


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
    head_c: float = HEAD_C,
) -> Detection:
    """Run one detector. ``argmax`` and ``cleanlab`` need out-of-fold ``proba`` (computed from
    ``features`` when not given); ``ours`` needs ``features`` and falls back to ``proba``
    alone (cleanlab's filter with the margin rule) when a fine-tuned backbone gave no
    features. ``head_c``: the logistic-regression head's inverse regularisation."""
    y = np.asarray(y, dtype=int)
    k = n_classes or (proba.shape[1] if proba is not None else int(y.max()) + 1)
    if method == "ours":
        if features is not None:
            return ours_detect(
                features, y, k, folds=folds, seed=seed, settings=settings, head_c=head_c
            )
        assert proba is not None, "ours needs features or probabilities"
        s = settings or OursSettings()
        flagged = ours_flags(y, proba, None, s)
        pred = proba.argmax(axis=1)
        margin = proba[np.arange(len(y)), pred] - proba[np.arange(len(y)), y]
        reasons = [
            f"confident learning ({s.filter_by}); margin {m:.2f}" if f else ""
            for f, m in zip(flagged, margin, strict=True)
        ]
        return Detection(
            flagged=flagged,
            suggested=pred,
            proba=proba,
            reasons=reasons,
            rank=issue_rank(y, proba, flagged),
        )
    if proba is None:
        assert features is not None, f"{method} needs features or probabilities"
        proba = oof_proba(features, y, k, folds=folds, seed=seed, c=head_c)
    pred = proba.argmax(axis=1)
    if method == "argmax":
        flagged = pred != y
        why = "most probable class differs from the label"
        rank = issue_rank(y, proba, flagged)
    else:
        flagged, rank = _cleanlab_ranked(y, proba)
        why = "confident learning (cleanlab defaults)"
    return Detection(
        flagged=flagged,
        suggested=pred,
        proba=proba,
        reasons=[why if f else "" for f in flagged],
        rank=rank,
    )
