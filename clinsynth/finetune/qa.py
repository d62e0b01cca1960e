"""Extractive QA in the SQuAD v2 style: sliding windows, unanswerable questions, a reader.

A context longer than one window is split into overlapping windows (``doc_stride`` tokens of
overlap, as in transformers' ``stride``). A training window whose context holds the whole gold
answer is labelled with its token span; any other window, and every window of an unanswerable
question, is labelled with the CLS token (index 0). At prediction time the best span over all
windows competes with the lowest CLS ("null") score: the question is unanswerable when
``null_score - best_span_score > null_score_diff_threshold``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clinsynth.finetune._training import (
    batched_outputs,
    keeps_global_rng,
    load_model_dir,
    run_trainer,
    save_model_dir,
    seed_all,
    work_dir,
)
from clinsynth.finetune.backbone import ResolvedBackbone, resolve_backbone
from clinsynth.finetune.errors import DatasetError
from clinsynth.finetune.metrics import qa_scores
from clinsynth.finetune.qa_data import QAConfig, QAExample, QAPrediction, check_unique_ids
from clinsynth.finetune.qa_windows import SampledWindows, Window, build_windows
from clinsynth.runtime.quiet import quiet_progress_bars

_CONFIG_FILE = "clinsynth_qa_config.json"
_PREDICT_CHUNK = 64  # examples windowed at a time when predicting, to bound memory


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
    check_unique_ids(train)
    backbone = resolve_backbone(cfg.backbone, allow_fallback=cfg.allow_fallback)
    seed_all(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(backbone.path_or_name, local_files_only=True)
    with quiet_progress_bars():
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
