"""Fine-tune and evaluate BERT models (BioBERT by default) on real, synthetic or hybrid data.

Importing this package is cheap: torch and transformers load only when training or predicting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from clinsynth.finetune.backbone import (
    DEFAULT_BACKBONE,
    ResolvedBackbone,
    fallback_model_dir,
    resolve_backbone,
)
from clinsynth.finetune.baselines import (
    compare_to_baselines,
    majority_scores,
    tfidf_lr_scores,
)
from clinsynth.finetune.classification import (
    ClassificationConfig,
    Classifier,
    ClassifierResult,
    cross_val_proba,
    train_classifier,
)
from clinsynth.finetune.compare import baseline_scores, train_with_baselines
from clinsynth.finetune.errors import (
    BackboneFallbackWarning,
    BackboneUnavailableError,
    DatasetError,
    FinetuneError,
)
from clinsynth.finetune.metrics import (
    best_f1_threshold,
    classification_scores,
    exact_match,
    f1,
    mean_sd,
    normalize_answer,
    qa_scores,
    reference_overlap,
)
from clinsynth.finetune.qa import Reader, train_reader
from clinsynth.finetune.qa_data import QAConfig, QAExample, QAPrediction, load_squad_json
from clinsynth.finetune.qa_windows import build_windows


def run_seeds(
    fn: Callable[[int], Mapping[str, Any]], seeds: Iterable[int] = (0, 1, 2)
) -> dict[str, Any]:
    """Run ``fn(seed)`` (returning a metrics dict) per seed; add the mean ± sd of each metric."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("run_seeds needs at least one seed")
    runs = [dict(fn(seed)) for seed in seeds]
    return {"seeds": seeds, "runs": runs, "summary": mean_sd(runs)}


__all__ = [
    "DEFAULT_BACKBONE",
    "BackboneFallbackWarning",
    "BackboneUnavailableError",
    "ClassificationConfig",
    "Classifier",
    "ClassifierResult",
    "DatasetError",
    "FinetuneError",
    "QAConfig",
    "QAExample",
    "QAPrediction",
    "Reader",
    "ResolvedBackbone",
    "baseline_scores",
    "best_f1_threshold",
    "build_windows",
    "classification_scores",
    "compare_to_baselines",
    "cross_val_proba",
    "exact_match",
    "f1",
    "fallback_model_dir",
    "load_squad_json",
    "majority_scores",
    "mean_sd",
    "normalize_answer",
    "qa_scores",
    "reference_overlap",
    "resolve_backbone",
    "run_seeds",
    "tfidf_lr_scores",
    "train_classifier",
    "train_reader",
    "train_with_baselines",
]
