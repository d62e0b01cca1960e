"""Sequence classification: fine-tune a BERT backbone on (text, label) pairs and score it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from clinsynth.finetune._training import (
    FeatureDataset,
    batched_outputs,
    keeps_global_rng,
    load_model_dir,
    save_model_dir,
    seed_all,
    train_loop,
)
from clinsynth.finetune.backbone import ResolvedBackbone, resolve_backbone
from clinsynth.finetune.errors import DatasetError
from clinsynth.finetune.metrics import best_f1_threshold, classification_scores
from clinsynth.runtime.quiet import quiet_progress_bars

Label = str | int
_LABELS_FILE = "clinsynth_labels.json"


class ClassificationConfig(BaseModel):
    """Hyper-parameters of a classification fine-tune.

    The defaults are sized for the CPU (64 tokens, 1 epoch, lr 1e-4, argmax): on HINT/TOP
    neither they (bench/results/trials_real_only_cpu.json) nor the settings selected on inner
    splits on a GPU (512 tokens, 5 epochs, lr 5e-5, val-F1 threshold; trials_real_only.json)
    beat TF-IDF + logistic regression, so the 40x costlier ones are not the default.
    """

    backbone: str | None = None
    allow_fallback: bool = True
    max_length: int = Field(default=64, ge=8, le=512)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, ge=1, description="overrides epochs when set")
    batch_size: int = Field(default=16, ge=1)
    eval_batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=1e-4, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 0
    labels: list[Label] | None = Field(
        default=None, description="class order; default: sorted labels"
    )
    positive_label: Label | None = Field(
        default=None, description="binary positive class; default last"
    )
    eval_fraction: float = Field(
        default=0.0, ge=0, lt=1, description="held-out stratified share of train when no eval set"
    )
    decision: Literal["argmax", "val_f1"] = Field(
        default="argmax",
        description="binary tasks: predict the most probable class, or (val_f1) train on "
        "1 - val_fraction of train and predict positive above the F1-best threshold on the rest",
    )
    val_fraction: float = Field(default=0.2, gt=0, lt=1, description="held out for val_f1")
    output_dir: str | None = Field(
        default=None, description="unused: classification trains in memory and saves nothing"
    )

    @model_validator(mode="after")
    def _check_labels(self) -> ClassificationConfig:
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be unique")
        if (
            self.positive_label is not None
            and self.labels is not None
            and self.positive_label not in self.labels
        ):
            raise ValueError(f"positive_label {self.positive_label!r} is not in labels")
        return self


class Classifier:
    """A fine-tuned sequence classifier: ``predict_proba(texts)[:, j]`` is P(``labels[j]``)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        labels: Sequence[Label],
        max_length: int,
        batch_size: int = 64,
        threshold: float | None = None,
        positive_index: int = -1,
    ) -> None:
        self.model = model
        self.threshold = threshold
        """Binary tasks: predict the positive label when its probability is at least this."""
        self.positive_index = positive_index % max(1, len(labels))
        self.tokenizer = tokenizer
        self.labels: list[Label] = list(labels)
        self.max_length = max_length
        self.batch_size = batch_size

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape ``(len(texts), len(labels))``."""
        if not texts:
            return np.zeros((0, len(self.labels)))
        from transformers import DataCollatorWithPadding

        features = _encode(self.tokenizer, texts, self.max_length)
        (logits,) = batched_outputs(
            self.model,
            features,
            DataCollatorWithPadding(self.tokenizer),
            self.batch_size,
            ["logits"],
        )
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def predict(self, texts: Sequence[str]) -> list[Label]:
        """The most probable label of each text (binary, with a threshold: the positive label
        when its probability reaches the threshold)."""
        proba = self.predict_proba(texts)
        if self.threshold is not None and len(self.labels) == 2:
            pos = self.positive_index
            return [self.labels[pos if p >= self.threshold else 1 - pos] for p in proba[:, pos]]
        return [self.labels[i] for i in proba.argmax(axis=1)]

    def save(self, directory: str | Path) -> None:
        """Write model, tokenizer and label order to ``directory``."""
        meta = {
            "labels": self.labels,
            "max_length": self.max_length,
            "threshold": self.threshold,
            "positive_index": self.positive_index,
        }
        save_model_dir(self.model, self.tokenizer, Path(directory), _LABELS_FILE, meta)

    @classmethod
    def load(cls, directory: str | Path) -> Classifier:
        """Load a classifier written by :meth:`save`."""
        from transformers import AutoModelForSequenceClassification

        model, tokenizer, meta = load_model_dir(
            AutoModelForSequenceClassification, Path(directory), _LABELS_FILE, "classifier"
        )
        return cls(
            model,
            tokenizer,
            meta["labels"],
            meta["max_length"],
            threshold=meta.get("threshold"),
            positive_index=meta.get("positive_index", -1),
        )


class ClassifierResult(BaseModel):
    """A trained classifier with its eval metrics and how it was trained."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    classifier: Classifier = Field(exclude=True)
    metrics: dict[str, Any] | None
    backbone: ResolvedBackbone
    config: ClassificationConfig
    n_train: int
    n_eval: int
    threshold: float | None = None
    train_seconds: float
    train_metrics: dict[str, float] = Field(default_factory=dict)


def _encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[dict[str, Any]]:
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    return [{k: enc[k][i] for k in enc} for i in range(len(texts))]


def _check_pairs(pairs: Sequence[tuple[str, Label]], what: str) -> None:
    if not pairs:
        raise DatasetError(f"{what} set is empty")
    for i, pair in enumerate(pairs):
        if len(pair) != 2 or not isinstance(pair[0], str) or not pair[0].strip():
            raise DatasetError(f"{what} item {i} is not a (non-empty text, label) pair")


def _split_eval(
    pairs: list[tuple[str, Label]], fraction: float, seed: int
) -> tuple[list[tuple[str, Label]], list[tuple[str, Label]]]:
    from sklearn.model_selection import train_test_split

    labels = [y for _, y in pairs]
    counts = np.unique(np.asarray(labels, dtype=object).astype(str), return_counts=True)[1]
    stratify = labels if counts.min() >= 2 else None
    train, held = train_test_split(pairs, test_size=fraction, random_state=seed, stratify=stratify)
    return list(train), list(held)


@keeps_global_rng
def train_classifier(
    train: Sequence[tuple[str, Label]],
    eval: Sequence[tuple[str, Label]] | None,
    cfg: ClassificationConfig | None = None,
) -> ClassifierResult:
    """Fine-tune a sequence classifier on ``train``; score it on ``eval`` when given.

    Without ``eval``, ``cfg.eval_fraction`` > 0 holds out a stratified share of ``train``.
    With ``cfg.decision == "val_f1"`` (binary), a further ``cfg.val_fraction`` of ``train`` is
    held out to choose the decision threshold; the model trains on the rest.
    """
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
    )

    cfg = cfg or ClassificationConfig()
    train_pairs = list(train)
    _check_pairs(train_pairs, "train")
    eval_pairs = list(eval) if eval is not None else None
    if eval_pairs is None and cfg.eval_fraction > 0:
        train_pairs, eval_pairs = _split_eval(train_pairs, cfg.eval_fraction, cfg.seed)
    if eval_pairs is not None:
        _check_pairs(eval_pairs, "eval")
    labels = cfg.labels or sorted({y for _, y in train_pairs}, key=lambda v: (str(type(v)), v))
    if len(labels) < 2:
        raise DatasetError(f"need at least two classes to train a classifier, got {labels}")
    index = {lab: i for i, lab in enumerate(labels)}
    unknown = {y for _, y in train_pairs + (eval_pairs or []) if y not in index}
    if unknown:
        raise DatasetError(f"labels not in cfg.labels: {sorted(map(str, unknown))}")
    if cfg.positive_label is not None and cfg.positive_label not in index:
        raise DatasetError(f"positive_label {cfg.positive_label!r} is not one of {labels}")

    pos = index[cfg.positive_label] if cfg.positive_label is not None else len(labels) - 1
    held: list[tuple[str, Label]] = []
    if cfg.decision == "val_f1" and len(labels) == 2:
        train_pairs, held = _split_eval(train_pairs, cfg.val_fraction, cfg.seed)

    backbone = resolve_backbone(cfg.backbone, allow_fallback=cfg.allow_fallback)
    seed_all(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(backbone.path_or_name, local_files_only=True)
    with quiet_progress_bars():
        model = AutoModelForSequenceClassification.from_pretrained(
            backbone.path_or_name,
            local_files_only=True,
            dtype=torch.float32,  # train in float32 (autocast on GPU) even from fp16 weights
            num_labels=len(labels),
            id2label={i: str(lab) for i, lab in enumerate(labels)},
            label2id={str(lab): i for i, lab in enumerate(labels)},
        )
    features = [
        {**feature, "labels": index[y]}
        for feature, (_, y) in zip(
            _encode(tokenizer, [t for t, _ in train_pairs], cfg.max_length),
            train_pairs,
            strict=True,
        )
    ]
    start = time.perf_counter()
    train_metrics = train_loop(
        model, FeatureDataset(features), DataCollatorWithPadding(tokenizer), cfg
    )
    seconds = time.perf_counter() - start
    classifier = Classifier(
        model, tokenizer, labels, cfg.max_length, cfg.eval_batch_size, positive_index=pos
    )
    if held:
        p_held = classifier.predict_proba([t for t, _ in held])[:, pos]
        classifier.threshold = best_f1_threshold([index[y] == pos for _, y in held], p_held)
    metrics = None
    if eval_pairs:
        proba = classifier.predict_proba([t for t, _ in eval_pairs])
        metrics = classification_scores(
            [y for _, y in eval_pairs], proba, labels, labels[pos], classifier.threshold
        )
    return ClassifierResult(
        classifier=classifier,
        metrics=metrics,
        backbone=backbone,
        config=cfg,
        n_train=len(train_pairs),
        n_eval=len(eval_pairs or []),
        threshold=classifier.threshold,
        train_seconds=seconds,
        train_metrics=train_metrics,
    )


def cross_val_proba(
    texts: Sequence[str],
    labels: Sequence[Label],
    cfg: ClassificationConfig | None = None,
    folds: int = 5,
) -> np.ndarray:
    """Out-of-fold class probabilities from ``folds`` stratified fine-tunes.

    Row ``i`` comes from a model that never saw item ``i``; columns follow ``cfg.labels`` or
    the sorted labels, as in :func:`train_classifier` (input for confident learning).
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    cfg = cfg or ClassificationConfig()
    if len(texts) != len(labels):
        raise DatasetError(f"{len(texts)} texts but {len(labels)} labels")
    if folds < 2 or folds > len(texts):
        raise DatasetError(f"folds must be between 2 and the number of items, got {folds}")
    order = cfg.labels or sorted(set(labels), key=lambda v: (str(type(v)), v))
    # probabilities only: every fold trains on all its items (no threshold hold-out)
    fold_cfg = cfg.model_copy(
        update={"labels": list(order), "eval_fraction": 0.0, "decision": "argmax"}
    )
    y = np.array([order.index(v) if v in order else -1 for v in labels])
    if (y < 0).any():
        raise DatasetError("labels contain classes not in cfg.labels")
    min_count = np.bincount(y, minlength=len(order)).min()
    splitter = (
        StratifiedKFold(folds, shuffle=True, random_state=cfg.seed)
        if min_count >= folds
        else KFold(folds, shuffle=True, random_state=cfg.seed)
    )
    out = np.zeros((len(texts), len(order)))
    for train_idx, held_idx in splitter.split(np.zeros(len(y)), y):
        result = train_classifier([(texts[i], labels[i]) for i in train_idx], None, fold_cfg)
        out[held_idx] = result.classifier.predict_proba([texts[i] for i in held_idx])
    return out


def score_embedding_head(
    x_train: np.ndarray,
    y_train: Sequence[Label],
    x_eval: np.ndarray,
    y_eval: Sequence[Label],
    labels: Sequence[Label] | None = None,
    *,
    seed: int = 0,
    c: float = 1.0,
) -> dict[str, Any]:
    """Fit a logistic-regression head on frozen features (e.g. sentence embeddings) and score
    it on ``x_eval`` with :func:`classification_scores` (accuracy, macro-F1, ...).

    The CPU-cheap counterpart of :func:`train_classifier` for label-noise and augmentation
    studies where fine-tuning a transformer per condition does not fit the budget.
    """
    from sklearn.linear_model import LogisticRegression

    order = list(labels) if labels is not None else sorted(set(y_train), key=str)
    unknown = {y for y in list(y_train) + list(y_eval) if y not in order}
    if unknown:
        raise DatasetError(f"labels not in the label order: {sorted(map(str, unknown))}")
    if len(set(y_train)) < 2:
        raise DatasetError("need at least two classes in the training labels")
    index = {lab: i for i, lab in enumerate(order)}
    model = LogisticRegression(max_iter=2000, C=c, random_state=seed)
    model.fit(np.asarray(x_train), [index[y] for y in y_train])
    proba = np.zeros((len(y_eval), len(order)))
    proba[:, model.classes_] = model.predict_proba(np.asarray(x_eval))
    return classification_scores(list(y_eval), proba, order)
