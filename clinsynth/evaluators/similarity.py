"""Embedding similarity: cosine, nearest row, and the near-duplicate check."""

from __future__ import annotations

import numpy as np

from clinsynth.schemas import CheckResult


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors of the same size (0 when either is all zeros)."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"vectors differ in size: {x.size} != {y.size}")
    norm = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y) / norm if norm else 0.0


def max_cosine(vec: np.ndarray, matrix: np.ndarray) -> tuple[int, float] | None:
    """Row of ``matrix`` most cosine-similar to ``vec`` and its cosine; None when no rows."""
    rows = np.asarray(matrix, dtype=np.float64)
    if rows.size == 0:
        return None
    rows = rows.reshape(-1, rows.shape[-1])
    x = np.asarray(vec, dtype=np.float64).ravel()
    if x.size != rows.shape[1]:
        raise ValueError(f"vector size {x.size} != matrix width {rows.shape[1]}")
    norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(x)
    dots = rows @ x
    sims = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    best = int(np.argmax(sims))
    return best, float(sims[best])


def near_duplicate_check(
    nearest: tuple[str, float] | None, *, threshold: float = 0.92
) -> CheckResult:
    """Pass when the most similar accepted item (id, cosine) is below ``threshold``."""
    if nearest is None:
        return CheckResult(
            name="near_duplicate",
            score=0.0,
            passed=True,
            reason="no accepted items to compare with",
            threshold=threshold,
            on_fail="revise",
        )
    item_id, score = nearest
    passed = score < threshold
    relation = "below" if passed else "at or above"
    return CheckResult(
        name="near_duplicate",
        score=score,
        passed=passed,
        reason=(
            f"most similar accepted item is {item_id} with cosine {score:.3f}, "
            f"{relation} the threshold {threshold:.2f}"
        ),
        threshold=threshold,
        on_fail="revise",
        details={"nearest_id": item_id},
    )
