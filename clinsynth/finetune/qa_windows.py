"""Sliding windows over QA contexts: tokenising, answer-span labels, per-epoch sampling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from clinsynth.finetune.errors import FinetuneError
from clinsynth.finetune.qa_data import QAConfig, QAExample


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

    def window_index(self, index: int) -> int:
        """Index into ``windows`` of this epoch's window in slot ``index``."""
        is_negative, ref, k = self.slots[index]
        return int(self._drawn[ref][k]) if is_negative else ref

    def window(self, index: int) -> Window:
        return self.windows[self.window_index(index)]

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.window(index).features(labels=True)
