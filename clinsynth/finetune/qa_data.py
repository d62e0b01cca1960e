"""Extractive-QA data: examples, predictions, the reader's settings, and SQuAD JSON files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, model_validator

from clinsynth.finetune.errors import DatasetError


class QAExample(BaseModel):
    """A question over a context; ``answer_text`` None means unanswerable."""

    id: str
    question: str
    context: str
    answer_text: str | None = None
    answer_start: int | None = None

    @model_validator(mode="after")
    def _check_answer(self) -> QAExample:
        if (self.answer_text is None) != (self.answer_start is None):
            raise ValueError("answer_text and answer_start must both be set or both be None")
        if self.answer_text is not None and self.answer_start is not None:
            if not self.answer_text:
                raise ValueError("answer_text is empty; use None for unanswerable")
            found = self.context[self.answer_start : self.answer_start + len(self.answer_text)]
            if found != self.answer_text:
                raise ValueError(
                    f"answer_text is not in the context at answer_start={self.answer_start}"
                )
        return self

    @property
    def answer_end(self) -> int | None:
        """Exclusive end character of the answer, or None when unanswerable."""
        if self.answer_text is None or self.answer_start is None:
            return None
        return self.answer_start + len(self.answer_text)


class QAPrediction(BaseModel):
    """The reader's best span ``context[start:end]`` and whether it abstains instead."""

    id: str
    text: str | None = Field(description="best non-null span; None if no valid span exists")
    start: int | None = None
    end: int | None = None
    score: float | None = Field(default=None, description="start + end logit of the best span")
    null_score: float = Field(description="lowest CLS start + end logit over the windows")
    is_unanswerable: bool

    @property
    def answer(self) -> str | None:
        """The answer given: the span text, or None when the reader abstains."""
        return None if self.is_unanswerable else self.text

    def with_threshold(self, threshold: float) -> QAPrediction:
        """Re-decide abstention with another null-score threshold (``inf`` = always answer)."""
        abstain = self.score is None or self.null_score - self.score > threshold
        return self.model_copy(update={"is_unanswerable": abstain})


class QAConfig(BaseModel):
    """Hyper-parameters of extractive-QA fine-tuning and prediction."""

    backbone: str | None = None
    allow_fallback: bool = True
    max_length: int = Field(default=384, ge=16, le=512)
    doc_stride: int = Field(default=128, ge=0, description="overlapping tokens between windows")
    max_query_length: int = Field(default=64, ge=1)
    max_answer_length: int = Field(
        default=30, ge=1, description="longest predicted span, in tokens"
    )
    n_best_size: int = Field(default=20, ge=1)
    null_score_diff_threshold: float = 0.0
    epochs: float = Field(default=2.0, gt=0)
    max_steps: int | None = Field(default=None, ge=1, description="overrides epochs when set")
    batch_size: int = Field(default=16, ge=1)
    eval_batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=5e-5, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 0
    negatives_per_example: int | None = Field(
        default=1, ge=0, description="no-answer windows sampled per example per epoch; None = all"
    )
    max_train_windows: int | None = Field(
        default=None, ge=1, description="cap on windows per epoch"
    )
    output_dir: str | None = None

    @model_validator(mode="after")
    def _check_window(self) -> QAConfig:
        room = self.max_length - self.max_query_length - 3  # [CLS] q [SEP] c [SEP]
        if room <= self.doc_stride:
            raise ValueError(
                f"doc_stride={self.doc_stride} must be < max_length - max_query_length - 3 = {room}"
            )
        return self


def load_squad_json(path: str | Path) -> list[QAExample]:
    """Read a SQuAD v1/v2 JSON file (first gold answer per question; none = unanswerable)."""
    file = Path(path)
    if not file.is_file():
        raise DatasetError(f"SQuAD file not found: {file}")
    try:
        articles = json.loads(file.read_text(encoding="utf-8"))["data"]
        raw = [
            (qa, para["context"])
            for article in articles
            for para in article["paragraphs"]
            for qa in para["qas"]
        ]
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{file} is not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DatasetError(f"{file} is not SQuAD JSON (data/paragraphs/qas): {exc}") from exc
    examples: list[QAExample] = []
    for qa, context in raw:
        answers = [] if qa.get("is_impossible") else qa.get("answers") or []
        try:
            examples.append(
                QAExample(
                    id=str(qa["id"]),
                    question=qa["question"],
                    context=context,
                    answer_text=answers[0]["text"] if answers else None,
                    answer_start=answers[0]["answer_start"] if answers else None,
                )
            )
        except (KeyError, ValidationError) as exc:
            raise DatasetError(f"{file}: bad question {qa.get('id')!r}: {exc}") from exc
    check_unique_ids(examples)
    return examples


def check_unique_ids(examples: Sequence[QAExample]) -> None:
    """Raise :class:`DatasetError` when two examples share an id."""
    ids = [e.id for e in examples]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DatasetError(f"duplicate example id {dup!r}")
