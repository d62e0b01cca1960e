"""Fine-tune once per seed and score the model beside its baselines on the same split."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from clinsynth.finetune.baselines import compare_to_baselines, majority_scores, tfidf_lr_scores
from clinsynth.finetune.classification import ClassificationConfig, ClassifierResult, Label
from clinsynth.finetune.metrics import mean_sd


def _numbers(scores: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in scores.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


def baseline_scores(
    train: Sequence[tuple[str, Label]],
    eval: Sequence[tuple[str, Label]],
    cfg: ClassificationConfig,
    seeds: Sequence[int],
    labels: Sequence[Label],
) -> dict[str, Any]:
    """Majority class and TF-IDF + LR on ``eval`` (TF-IDF per seed when its decision rule
    holds out data, as the fine-tune's does): ``{name: {"runs", "summary"}}``."""
    positive = cfg.positive_label
    majority = majority_scores([y for _, y in train], [y for _, y in eval], labels, positive)
    tfidf_seeds = list(seeds) if cfg.decision == "val_f1" else list(seeds)[:1]
    tfidf = [
        tfidf_lr_scores(
            train,
            eval,
            labels,
            positive,
            decision=cfg.decision,
            val_fraction=cfg.val_fraction,
            seed=seed,
        )
        for seed in tfidf_seeds
    ]
    return {
        "majority": {"runs": [majority], "summary": mean_sd([_numbers(majority)])},
        "tfidf_lr": {
            "decision": cfg.decision,
            "seeds": tfidf_seeds,
            "runs": tfidf,
            "summary": mean_sd([_numbers(r) for r in tfidf]),
        },
    }


def train_with_baselines(
    train: Sequence[tuple[str, Label]],
    eval: Sequence[tuple[str, Label]],
    cfg: ClassificationConfig,
    seeds: Sequence[int],
    *,
    on_result: Callable[[int, ClassifierResult], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune on ``train`` once per seed, score on ``eval``; add the baselines on the same
    split and text, and whether the model's mean ROC-AUC and F1 beat them all.

    Returns ``{"seeds", "runs", "summary", "baselines", "vs_baselines", "backbone"}``;
    ``on_result(seed, result)`` sees each trained model (e.g. to save the first one).
    """
    from clinsynth.finetune.classification import train_classifier

    seeds = list(seeds)
    if not seeds:
        raise ValueError("train_with_baselines needs at least one seed")
    labels = cfg.labels or sorted({y for _, y in [*train, *eval]}, key=lambda v: (str(type(v)), v))
    cfg = cfg.model_copy(update={"labels": list(labels)})
    runs: list[dict[str, Any]] = []
    backbone: dict[str, Any] | None = None
    for seed in seeds:
        result = train_classifier(train, eval, cfg.model_copy(update={"seed": seed}))
        backbone = result.backbone.model_dump()
        if on_result is not None:
            on_result(seed, result)
        runs.append(
            {
                **(result.metrics or {}),
                "threshold": result.threshold,
                "train_seconds": round(result.train_seconds, 1),
            }
        )
    summary = mean_sd([_numbers(r) for r in runs])
    baselines = baseline_scores(train, eval, cfg, seeds, labels)
    verdict = compare_to_baselines(summary, {k: v["summary"] for k, v in baselines.items()})
    return {
        "seeds": seeds,
        "runs": runs,
        "summary": summary,
        "baselines": baselines,
        "vs_baselines": verdict,
        "backbone": backbone,
    }
