"""Out-of-fold class probabilities and features: the models behind every detector."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clinsynth.tools.labels.models import EMBEDDING_BACKBONES, HEAD_C, LabelError

if TYPE_CHECKING:
    from clinsynth.memory.embeddings import Embedder


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
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    n_classes: int,
    seed: int,
    c: float = HEAD_C,
) -> np.ndarray:
    """Logistic-regression probabilities over all ``n_classes`` columns."""
    from sklearn.linear_model import LogisticRegression

    out = np.zeros((x_test.shape[0], n_classes))
    classes = np.unique(y_train)
    if len(classes) == 1:
        out[:, classes[0]] = 1.0
        return out
    model = LogisticRegression(max_iter=3000, C=c, random_state=seed)
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
    c: float = HEAD_C,
) -> np.ndarray:
    """Out-of-fold logistic-regression probabilities (inverse regularisation ``c``) on
    features ``x`` (an array, or a SciPy sparse matrix such as TF-IDF), averaged over
    ``repeats`` re-shuffled ``folds``-fold splits (each row from models that never saw it)."""
    x = x.tocsr() if hasattr(x, "tocsr") else np.asarray(x)
    y = np.asarray(y)
    total = np.zeros((len(y), n_classes))
    for r in range(repeats):
        for train_idx, test_idx in _splits(y, folds, seed + 1000 * r):
            total[test_idx] += _fit_predict(
                x[train_idx], y[train_idx], x[test_idx], n_classes, seed, c
            )
    return total / repeats


def embed_texts(
    texts: Sequence[str],
    backbone: str,
    *,
    embedder: Embedder | None = None,
    cache_path: Path | None = None,
) -> np.ndarray:
    """Frozen sentence embeddings for ``texts`` from an embedding backbone (minilm, hashing),
    each distinct text embedded once (``embedder``: a ready embedder or
    :class:`~clinsynth.memory.embedding_cache.CachedEmbedder` to use instead of building one;
    ``cache_path``: a SQLite file keeping the vectors for later runs)."""
    from clinsynth.memory.embedding_cache import CachedEmbedder
    from clinsynth.memory.embeddings import EmbeddingError, make_embedder

    if embedder is None:
        if backbone not in EMBEDDING_BACKBONES:
            raise LabelError(f"{backbone!r} is not an embedding backbone ({EMBEDDING_BACKBONES})")
        kwargs: dict[str, Any] = {"dim": 1024} if backbone == "hashing" else {}
        embedder = make_embedder(backbone, **kwargs)
    try:
        cached = (
            embedder
            if isinstance(embedder, CachedEmbedder) and cache_path is None
            else CachedEmbedder(embedder, cache_path)
        )
        try:
            return cached.embed(list(texts))
        finally:
            if cached is not embedder:
                cached.close()
    except EmbeddingError as exc:
        raise LabelError(str(exc)) from exc


def finetuned_oof_proba(
    texts: Sequence[str], y: np.ndarray, classes: list[str], backbone: str, folds: int, seed: int
) -> np.ndarray:
    """Out-of-fold probabilities from fine-tuning ``backbone`` (BioBERT name or a local BERT
    directory; offline fallback per the training tool) in each fold."""
    from clinsynth.finetune.classification import ClassificationConfig, cross_val_proba

    cfg = ClassificationConfig(backbone=backbone, seed=seed, labels=list(classes))
    return cross_val_proba(list(texts), [classes[i] for i in y], cfg, folds=folds)
