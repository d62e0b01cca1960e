"""Out-of-fold class probabilities and features: the models behind every detector."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from clinsynth.tools.labels.models import EMBEDDING_BACKBONES, LabelError


def _splits(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(y)
    present = counts[counts > 0]
    if present.min() >= folds:
        splitter: Any = StratifiedKFold(folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def _fit_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_classes: int, seed: int
) -> np.ndarray:
    """Logistic-regression probabilities over all ``n_classes`` columns."""
    from sklearn.linear_model import LogisticRegression

    out = np.zeros((len(x_test), n_classes))
    classes = np.unique(y_train)
    if len(classes) == 1:
        out[:, classes[0]] = 1.0
        return out
    model = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    model.fit(x_train, y_train)
    out[:, model.classes_] = model.predict_proba(x_test)
    return out


def oof_proba(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    folds: int = 5,
    seed: int = 0,
    repeats: int = 1,
) -> np.ndarray:
    """Out-of-fold logistic-regression probabilities on features ``x``, averaged over
    ``repeats`` re-shuffled ``folds``-fold splits (each row from models that never saw it)."""
    x, y = np.asarray(x), np.asarray(y)
    total = np.zeros((len(y), n_classes))
    for r in range(repeats):
        for train_idx, test_idx in _splits(y, folds, seed + 1000 * r):
            total[test_idx] += _fit_predict(
                x[train_idx], y[train_idx], x[test_idx], n_classes, seed
            )
    return total / repeats


def knn_oof_proba(
    x: np.ndarray, y: np.ndarray, n_classes: int, *, k: int = 10, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Out-of-fold class shares among the ``k`` nearest (cosine) training neighbours, smoothed
    by one pseudo-count spread over the classes."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms == 0, 1.0, norms)
    out = np.zeros((len(y), n_classes))
    for train_idx, test_idx in _splits(y, folds, seed):
        sims = x[test_idx] @ x[train_idx].T
        kk = min(k, len(train_idx))
        nearest = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        votes = np.zeros((len(test_idx), n_classes))
        for row, cols in enumerate(nearest):
            np.add.at(votes[row], y[train_idx][cols], 1.0)
        out[test_idx] = (votes + 1.0 / n_classes) / (kk + 1.0)
    return out


def embed_texts(texts: Sequence[str], backbone: str) -> np.ndarray:
    """Frozen sentence embeddings for ``texts`` from an embedding backbone (minilm, hashing)."""
    from clinsynth.memory.embeddings import make_embedder

    if backbone not in EMBEDDING_BACKBONES:
        raise LabelError(f"{backbone!r} is not an embedding backbone ({EMBEDDING_BACKBONES})")
    kwargs: dict[str, Any] = {"dim": 1024} if backbone == "hashing" else {}
    return make_embedder(backbone, **kwargs).embed(list(texts))


def finetuned_oof_proba(
    texts: Sequence[str], y: np.ndarray, classes: list[str], backbone: str, folds: int, seed: int
) -> np.ndarray:
    """Out-of-fold probabilities from fine-tuning ``backbone`` (BioBERT name or a local BERT
    directory; offline fallback per the training tool) in each fold."""
    from clinsynth.finetune.classification import ClassificationConfig, cross_val_proba

    cfg = ClassificationConfig(backbone=backbone, seed=seed, labels=list(classes))
    return cross_val_proba(list(texts), [classes[i] for i in y], cfg, folds=folds)
