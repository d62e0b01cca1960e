"""Extractive QA in the SQuAD v2 style: sliding windows, unanswerable questions, a reader.

A context longer than one window is split into overlapping windows (``doc_stride`` tokens of
overlap, as in transformers' ``stride``). A training window whose context holds the whole gold
answer is labelled with its token span; any other window, and every window of an unanswerable
question, is labelled with the CLS token (index 0). At prediction time the best span over all
windows competes with the lowest CLS ("null") score: the question is unanswerable when
``null_score - best_span_score > null_score_diff_threshold``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError, model_validator

from clinsynth.tools.finetune._training import (
    batched_outputs,
    keeps_global_rng,
    load_model_dir,
    run_trainer,
    save_model_dir,
    seed_all,
    work_dir,
)
from clinsynth.tools.finetune.backbone import ResolvedBackbone, resolve_backbone
from clinsynth.tools.finetune.errors import DatasetError, FinetuneError
from clinsynth.tools.finetune.metrics import qa_scores

_CONFIG_FILE = "clinsynth_qa_config.json"
_PREDICT_CHUNK = 64  # examples windowed at a time when predicting, to bound memory


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


@dataclass
class Window:
    """One tokenised (question, context slice) window of an example."""

    example_index: int
    input_ids: np.ndarray
    token_type_ids: np.ndarray | None
    offsets: np.ndarray | None  # (n, 2) char offsets of context tokens; -1 elsewhere
    start_position: int = 0  # token index of the answer start; 0 (CLS) = no answer here
    end_position: int = 0

    @property
    def has_answer(self) -> bool:
        return self.start_position > 0

    def features(self, *, labels: bool) -> dict[str, Any]:
        """Model inputs as lists (plus start/end positions when ``labels``)."""
        out: dict[str, Any] = {
            "input_ids": self.input_ids.tolist(),
            "attention_mask": [1] * len(self.input_ids),
        }
        if self.token_type_ids is not None:
            out["token_type_ids"] = self.token_type_ids.tolist()
        if labels:
            out["start_positions"] = self.start_position
            out["end_positions"] = self.end_position
        return out


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
    _check_unique_ids(examples)
    return examples


def _check_unique_ids(examples: Sequence[QAExample]) -> None:
    ids = [e.id for e in examples]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DatasetError(f"duplicate example id {dup!r}")


def _truncate_questions(tokenizer: Any, questions: list[str], max_tokens: int) -> list[str]:
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for q, offsets in zip(questions, enc["offset_mapping"], strict=True):
        out.append(q[: offsets[max_tokens - 1][1]] if len(offsets) > max_tokens else q)
    return out


def build_windows(
    examples: Sequence[QAExample],
    tokenizer: Any,
    cfg: QAConfig,
    *,
    keep_offsets: bool = True,
    first_index: int = 0,
) -> list[Window]:
    """Tokenise examples into overlapping windows and label each with its answer span or CLS.

    ``example_index`` counts from ``first_index``; offsets are dropped when not needed
    (training) to save memory.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise FinetuneError("extractive QA needs a fast tokenizer (offset mappings)")
    if not examples:
        return []
    questions = _truncate_questions(
        tokenizer, [e.question.lstrip() for e in examples], cfg.max_query_length
    )
    enc = tokenizer(
        questions,
        [e.context for e in examples],
        truncation="only_second",
        max_length=cfg.max_length,
        stride=cfg.doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    windows = []
    for w, ex_i in enumerate(enc["overflow_to_sample_mapping"]):
        example = examples[ex_i]
        seq_ids = np.array([-1 if s is None else s for s in enc.sequence_ids(w)])
        offsets = np.asarray(enc["offset_mapping"][w], dtype=np.int32).reshape(-1, 2)
        offsets[seq_ids != 1] = -1
        start, end = _label_window(offsets, example)
        types = enc["token_type_ids"][w] if "token_type_ids" in enc else None
        windows.append(
            Window(
                example_index=first_index + ex_i,
                input_ids=np.asarray(enc["input_ids"][w], dtype=np.int32),
                token_type_ids=None if types is None else np.asarray(types, dtype=np.int8),
                offsets=offsets if keep_offsets else None,
                start_position=start,
                end_position=end,
            )
        )
    return windows


def _label_window(offsets: np.ndarray, example: QAExample) -> tuple[int, int]:
    """Token span of the answer if the window's context holds all of it, else (0, 0)."""
    if example.answer_start is None or example.answer_end is None:
        return 0, 0
    ctx = np.flatnonzero(offsets[:, 0] >= 0)
    if len(ctx) == 0:
        return 0, 0
    lo, hi = example.answer_start, example.answer_end
    if offsets[ctx[0], 0] > lo or offsets[ctx[-1], 1] < hi:
        return 0, 0
    start = int(ctx[np.flatnonzero(offsets[ctx, 0] <= lo)[-1]])
    end = int(ctx[np.flatnonzero(offsets[ctx, 1] >= hi)[0]])
    return (start, end) if start <= end else (0, 0)


class SampledWindows:
    """Training windows per epoch: every answer window plus ``k`` sampled no-answer windows
    per example (re-drawn each epoch), optionally capped at ``max_windows`` slots."""

    def __init__(
        self,
        windows: Sequence[Window],
        negatives_per_example: int | None,
        max_windows: int | None,
        seed: int,
    ) -> None:
        self.windows = windows
        self.seed = seed
        self.negatives: dict[int, list[int]] = {}
        slots: list[tuple[bool, int, int]] = []  # (is_negative, window or example, k)
        for i, w in enumerate(windows):
            if w.has_answer:
                slots.append((False, i, 0))
            else:
                self.negatives.setdefault(w.example_index, []).append(i)
        for ex, negs in self.negatives.items():
            k = len(negs) if negatives_per_example is None else negatives_per_example
            k = min(k, len(negs))
            slots.extend((True, ex, j) for j in range(k))
        if max_windows is not None and len(slots) > max_windows:
            keep = np.random.default_rng(seed).choice(len(slots), max_windows, replace=False)
            slots = [slots[i] for i in sorted(keep)]
        self.slots = slots
        self.n_positive = sum(not neg for neg, _, _ in slots)
        self._drawn: dict[int, np.ndarray] = {}
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's no-answer windows (deterministic in seed and epoch)."""
        rng = np.random.default_rng([self.seed, epoch])
        self._drawn = {ex: rng.permutation(negs) for ex, negs in self.negatives.items()}

    def __len__(self) -> int:
        return len(self.slots)

    def window(self, index: int) -> Window:
        is_negative, ref, k = self.slots[index]
        return self.windows[int(self._drawn[ref][k])] if is_negative else self.windows[ref]

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.window(index).features(labels=True)


def _epoch_callback(dataset: SampledWindows) -> Any:
    from transformers import TrainerCallback

    class _ResampleNegatives(TrainerCallback):
        def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            dataset.set_epoch(round(state.epoch or 0))

    return _ResampleNegatives()


class Reader:
    """A fine-tuned extractive-QA model with SQuAD v2-style decoding over windows."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        cfg: QAConfig,
        backbone: ResolvedBackbone | None = None,
        train_stats: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.backbone = backbone
        self.train_stats = train_stats or {}

    def predict(
        self, examples: Sequence[QAExample], *, null_threshold: float | None = None
    ) -> list[QAPrediction]:
        """Best answer of each example; abstains per the null-score threshold (cfg default)."""
        from transformers import DataCollatorWithPadding

        threshold = self.cfg.null_score_diff_threshold if null_threshold is None else null_threshold
        collator = DataCollatorWithPadding(
            self.tokenizer, padding="max_length", max_length=self.cfg.max_length
        )
        predictions: list[QAPrediction] = []
        for lo in range(0, len(examples), _PREDICT_CHUNK):
            chunk = examples[lo : lo + _PREDICT_CHUNK]
            windows = build_windows(chunk, self.tokenizer, self.cfg)
            starts, ends = batched_outputs(
                self.model,
                [w.features(labels=False) for w in windows],
                collator,
                self.cfg.eval_batch_size,
                ["start_logits", "end_logits"],
            )
            by_example: dict[int, list[int]] = {}
            for i, w in enumerate(windows):
                by_example.setdefault(w.example_index, []).append(i)
            for ex_i, example in enumerate(chunk):
                idx = by_example.get(ex_i, [])
                predictions.append(
                    self._decode(
                        example, [windows[i] for i in idx], starts[idx], ends[idx], threshold
                    )
                )
        return predictions

    def _decode(
        self,
        example: QAExample,
        windows: list[Window],
        starts: np.ndarray,
        ends: np.ndarray,
        threshold: float,
    ) -> QAPrediction:
        best: tuple[float, int, int] | None = None  # (score, start char, end char)
        null_score = math.inf
        n_best, max_len = self.cfg.n_best_size, self.cfg.max_answer_length
        for w, s_logits, e_logits in zip(windows, starts, ends, strict=True):
            assert w.offsets is not None
            n = len(w.input_ids)
            s_logits, e_logits = s_logits[:n], e_logits[:n]
            null_score = min(null_score, float(s_logits[0] + e_logits[0]))
            ctx = w.offsets[:, 0] >= 0
            s_masked = np.where(ctx, s_logits, -np.inf)
            e_masked = np.where(ctx, e_logits, -np.inf)
            top_s = np.argsort(s_masked)[::-1][:n_best]
            top_e = np.argsort(e_masked)[::-1][:n_best]
            for i in top_s:
                if not ctx[i]:
                    break
                for j in top_e:
                    if not ctx[j]:
                        break
                    if j < i or j - i + 1 > max_len:
                        continue
                    score = float(s_logits[i] + e_logits[j])
                    if best is None or score > best[0]:
                        best = (score, int(w.offsets[i, 0]), int(w.offsets[j, 1]))
        if best is None:
            return QAPrediction(
                id=example.id, text=None, null_score=null_score, is_unanswerable=True
            )
        score, start, end = best
        return QAPrediction(
            id=example.id,
            text=example.context[start:end],
            start=start,
            end=end,
            score=score,
            null_score=null_score,
            is_unanswerable=null_score - score > threshold,
        )

    def evaluate(
        self, examples: Sequence[QAExample], *, null_threshold: float | None = None
    ) -> dict[str, Any]:
        """EM / F1 / Reference Overlap (percentages) on ``examples``."""
        return qa_scores(self.predict(examples, null_threshold=null_threshold), examples)

    def save(self, directory: str | Path) -> None:
        """Write model, tokenizer, config and training record to ``directory``."""
        meta = {
            "config": self.cfg.model_dump(),
            "backbone": self.backbone.model_dump() if self.backbone else None,
            "train_stats": self.train_stats,
        }
        save_model_dir(self.model, self.tokenizer, Path(directory), _CONFIG_FILE, meta)

    @classmethod
    def load(cls, directory: str | Path) -> Reader:
        """Load a reader written by :meth:`save` (offline)."""
        from transformers import AutoModelForQuestionAnswering

        model, tokenizer, meta = load_model_dir(
            AutoModelForQuestionAnswering, Path(directory), _CONFIG_FILE, "reader"
        )
        backbone = ResolvedBackbone(**meta["backbone"]) if meta["backbone"] else None
        return cls(model, tokenizer, QAConfig(**meta["config"]), backbone, meta["train_stats"])


@keeps_global_rng
def train_reader(train: Sequence[QAExample], cfg: QAConfig | None = None) -> Reader:
    """Fine-tune an extractive-QA reader on ``train`` (answer windows + sampled negatives)."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, DataCollatorWithPadding

    cfg = cfg or QAConfig()
    if not train:
        raise DatasetError("train set is empty")
    _check_unique_ids(train)
    backbone = resolve_backbone(cfg.backbone, allow_fallback=cfg.allow_fallback)
    seed_all(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(backbone.path_or_name, local_files_only=True)
    model = AutoModelForQuestionAnswering.from_pretrained(
        backbone.path_or_name, local_files_only=True
    )
    t0 = time.perf_counter()
    windows: list[Window] = []
    for lo in range(0, len(train), 256):
        windows += build_windows(
            train[lo : lo + 256], tokenizer, cfg, keep_offsets=False, first_index=lo
        )
    dataset = SampledWindows(windows, cfg.negatives_per_example, cfg.max_train_windows, cfg.seed)
    if len(dataset) == 0:
        raise DatasetError("no training windows (max_train_windows or negatives too small)")
    t1 = time.perf_counter()
    with work_dir(cfg.output_dir) as out_dir:
        metrics = run_trainer(
            model,
            dataset,
            DataCollatorWithPadding(tokenizer),
            cfg,
            output_dir=out_dir,
            callbacks=[_epoch_callback(dataset)],
        )
    stats = {
        "n_examples": len(train),
        "n_windows_total": len(windows),
        "n_answer_windows_total": sum(w.has_answer for w in windows),
        "n_windows_per_epoch": len(dataset),
        "n_answer_windows_per_epoch": dataset.n_positive,
        "windowing_seconds": t1 - t0,
        "train_seconds": time.perf_counter() - t1,
        "trainer": metrics,
    }
    return Reader(model, tokenizer, cfg, backbone, stats)
