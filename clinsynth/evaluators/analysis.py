"""How synthetic data sits among real data: cosine similarity within and across the two sets,
and a t-SNE map, written as ``analysis/similarity.json`` and ``analysis/tsne.png``."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from clinsynth.memory.embeddings import Embedder


def _stats(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"mean": float("nan"), "sd": float("nan"), "median": float("nan"), "n": 0}
    return {
        "mean": float(values.mean()),
        "sd": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "median": float(np.median(values)),
        "n": int(values.size),
    }


def _off_diagonal(sims: np.ndarray) -> np.ndarray:
    return sims[~np.eye(len(sims), dtype=bool)] if len(sims) > 1 else np.zeros(0)


def cosine_summary(real: np.ndarray, synthetic: np.ndarray) -> dict[str, Any]:
    """Cosine statistics of L2-normalised embeddings: within real, within synthetic, across,
    and each synthetic row's nearest real row."""
    within_real = real @ real.T
    within_syn = synthetic @ synthetic.T
    across = synthetic @ real.T
    nearest = across.max(axis=1) if across.size else np.zeros(0)
    return {
        "within_real": _stats(_off_diagonal(within_real)),
        "within_synthetic": _stats(_off_diagonal(within_syn)),
        "across": _stats(across.ravel()),
        "nearest_real_of_synthetic": _stats(nearest),
        "synthetic_with_nearest_real_at_least_0.95": int((nearest >= 0.95).sum()),
    }


def _sample(items: Sequence[Any], k: int, rng: random.Random) -> list[Any]:
    return list(items) if len(items) <= k else rng.sample(list(items), k)


def tsne_plot(
    real: np.ndarray,
    synthetic: np.ndarray,
    path: Path,
    *,
    real_labels: Sequence[str] | None = None,
    synthetic_labels: Sequence[str] | None = None,
    seed: int = 0,
) -> None:
    """A 2-D t-SNE of both sets (colour: set; marker: label) saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    points = np.vstack([real, synthetic])
    perplexity = float(max(2, min(30, (len(points) - 1) // 3)))
    xy = TSNE(
        n_components=2, perplexity=perplexity, init="pca", random_state=seed, metric="cosine"
    ).fit_transform(points)
    groups = [
        ("real", xy[: len(real)], real_labels, "tab:blue"),
        ("synthetic", xy[len(real) :], synthetic_labels, "tab:orange"),
    ]
    markers = ["o", "^", "s", "D", "v", "P"]
    fig, ax = plt.subplots(figsize=(7, 6))
    all_labels = sorted({lab for _, _, labs, _ in groups for lab in (labs or [])})
    for name, coords, labels, colour in groups:
        labs = list(labels) if labels else ["all"] * len(coords)
        for lab in sorted(set(labs)):
            sel = np.array([x == lab for x in labs], dtype=bool)
            marker = markers[all_labels.index(lab) % len(markers)] if lab in all_labels else "o"
            ax.scatter(
                coords[sel, 0],
                coords[sel, 1],
                s=14,
                alpha=0.6,
                c=colour,
                marker=marker,
                label=f"{name} · {lab}" if labels else name,
            )
    ax.set_title(f"t-SNE of {len(real)} real and {len(synthetic)} synthetic items")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def similarity_analysis(
    real: Sequence[tuple[str, str]],
    synthetic: Sequence[tuple[str, str]],
    embedder: Embedder,
    out_dir: Path,
    *,
    max_per_set: int = 500,
    seed: int = 0,
    tsne: bool = True,
) -> dict[str, Any]:
    """Embed (text, label) pairs of both sets (at most ``max_per_set`` each, sampled with
    ``seed``), write ``out_dir/similarity.json`` and, with ``tsne``, ``out_dir/tsne.png``."""
    if not real or not synthetic:
        raise ValueError("similarity analysis needs real and synthetic items")
    rng = random.Random(seed)
    real_s = _sample(real, max_per_set, rng)
    syn_s = _sample(synthetic, max_per_set, rng)
    real_vec = embedder.embed([t for t, _ in real_s])
    syn_vec = embedder.embed([t for t, _ in syn_s])
    summary: dict[str, Any] = {
        "embedder": embedder.name,
        "n_real": len(real_s),
        "n_synthetic": len(syn_s),
        "n_real_total": len(real),
        "n_synthetic_total": len(synthetic),
        "seed": seed,
        **cosine_summary(real_vec, syn_vec),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    if tsne and len(real_s) + len(syn_s) >= 5:
        tsne_plot(
            real_vec,
            syn_vec,
            out_dir / "tsne.png",
            real_labels=[lab for _, lab in real_s],
            synthetic_labels=[lab for _, lab in syn_s],
            seed=seed,
        )
        summary["tsne_png"] = "tsne.png"
    (out_dir / "similarity.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
