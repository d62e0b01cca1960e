"""The stable entry point: detect suspect labels and apply a policy, one decision per item."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from clinsynth.tools.labels.detection import Detection, detect
from clinsynth.tools.labels.models import (
    DEFAULT_BACKBONE,
    EMBEDDING_BACKBONES,
    Action,
    LabelDecision,
    LabelError,
    OursSettings,
    Policy,
)
from clinsynth.tools.labels.probabilities import embed_texts, finetuned_oof_proba

if TYPE_CHECKING:
    from clinsynth.memory.embeddings import Embedder


def _encode_labels(labels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[v] for v in labels], dtype=int), classes


def decisions_from_detection(
    detection: Detection,
    y: np.ndarray,
    classes: list[str],
    *,
    policy: Policy,
    method: str,
    backbone: str,
) -> list[LabelDecision]:
    """Apply ``policy`` to a detection: one :class:`LabelDecision` per item."""
    out: list[LabelDecision] = []
    for i, given in enumerate(y.tolist()):
        row = detection.proba[i]
        suggested = int(detection.suggested[i])
        flagged = bool(detection.flagged[i])
        old = classes[given]
        action: Action = "keep"
        new: str | None = old
        if flagged:
            action = policy
            new = {"flag": old, "relabel": classes[suggested], "drop": None}[policy]
        rank = int(detection.rank[i]) if detection.rank is not None and flagged else None
        out.append(
            LabelDecision(
                index=i,
                old_label=old,
                new_label=new,
                suggested_label=classes[suggested],
                flagged=flagged,
                action=action,
                probabilities={c: round(float(p), 6) for c, p in zip(classes, row, strict=True)},
                self_confidence=float(row[given]),
                margin=float(row[suggested] - row[given]),
                method=method,
                backbone=backbone,
                reason=detection.reasons[i] or "label consistent with the classifier",
                issue_rank=rank or None,
            )
        )
    return out


def correct_labels(
    texts: list[str],
    labels: list[str],
    *,
    policy: Literal["relabel", "drop", "flag"] = "flag",
    method: Literal["ours", "cleanlab", "argmax"] = "ours",
    backbone: str | None = None,
    folds: int = 5,
    seed: int = 0,
    settings: OursSettings | None = None,
    embedder: Embedder | None = None,
    embedding_cache: Path | None = None,
) -> list[LabelDecision]:
    """Find likely wrong labels among ``texts`` and apply ``policy``; one decision per item,
    in input order (dropped items stay in the list with ``new_label`` None).

    ``backbone``: ``"minilm"`` (default: frozen all-MiniLM-L6-v2 sentence embeddings + a
    logistic-regression head, CPU-friendly), ``"hashing"`` (word-hashing features, instant,
    for tests), or a BERT name / local directory to fine-tune in every fold with the training
    tool (e.g. ``dmis-lab/biobert-base-cased-v1.2``; slow on CPU).

    Each distinct text is embedded once and the matrix is reused by every fold, repeated
    cross-validation and the k-NN view; ``embedding_cache`` (a SQLite file) keeps the vectors
    for later runs, ``embedder`` replaces the backbone's (e.g. a shared
    :class:`~clinsynth.memory.embedding_cache.CachedEmbedder`). ``settings``: the ``ours``
    detector's knobs (default: those chosen on development data).
    """
    if len(texts) != len(labels):
        raise LabelError(f"{len(texts)} texts but {len(labels)} labels")
    labels = [str(v) for v in labels]
    y, classes = _encode_labels(labels)
    if len(classes) < 2:
        raise LabelError(f"need at least two classes, got {classes}")
    if folds < 2 or folds > len(texts):
        raise LabelError(f"folds must be between 2 and the number of items ({len(texts)})")
    name = backbone or DEFAULT_BACKBONE
    if embedder is not None or name in EMBEDDING_BACKBONES:
        if embedder is not None:
            name = embedder.name
        features: np.ndarray | None = embed_texts(
            texts, name, embedder=embedder, cache_path=embedding_cache
        )
        proba = None
    else:
        features = None
        proba = finetuned_oof_proba(texts, y, classes, name, folds, seed)
    detection = detect(
        method,
        y,
        proba=proba,
        features=features,
        n_classes=len(classes),
        folds=folds,
        seed=seed,
        settings=settings,
    )
    return decisions_from_detection(
        detection, y, classes, policy=policy, method=method, backbone=name
    )
