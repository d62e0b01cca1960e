"""Sliding windows over QA contexts: tokenising, answer-span labels, per-epoch sampling."""

from __future__ import annotations

import contextlib
import weakref
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

    Windows cover the whole context: ``cfg.max_length`` tokens each, consecutive windows
    sharing ``cfg.doc_stride`` context tokens. The slicing is done here rather than by the
    tokenizer's ``return_overflowing_tokens``: tokenizers 0.23.1–0.23.2 stop tokenising at
    ``max_length`` when truncating and so drop all but one overflow window
    (huggingface/tokenizers#2091), which silently cut long articles to their first ~500
    tokens. ``example_index`` counts from ``first_index``; offsets are dropped when not
    needed (training) to save memory.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise FinetuneError("extractive QA needs a fast tokenizer (offset mappings)")
    if not examples:
        return []
    backend = _plain_backend(tokenizer)
    questions = _truncate_questions(
        tokenizer, [e.question.lstrip() for e in examples], cfg.max_query_length
    )
    contexts = list(dict.fromkeys(e.context for e in examples))
    encoded = backend.encode_batch(contexts, add_special_tokens=False)
    by_context = {
        c: (np.asarray(enc.ids, dtype=np.int32), np.asarray(enc.offsets, dtype=np.int32))
        for c, enc in zip(contexts, encoded, strict=True)
    }
    q_encs = backend.encode_batch(questions, add_special_tokens=False)
    probe = backend.encode("a", add_special_tokens=False)
    windows = []
    for i, (example, q_enc) in enumerate(zip(examples, q_encs, strict=True)):
        ids, offsets = by_context[example.context]
        template = backend.post_process(q_enc, probe, add_special_tokens=True)
        k = template.sequence_ids.index(1)  # the probe's first and last token
        last = len(template.sequence_ids) - 1 - template.sequence_ids[::-1].index(1)
        head_ids = np.asarray(template.ids[:k], dtype=np.int32)
        tail_ids = np.asarray(template.ids[last + 1 :], dtype=np.int32)
        head_types = np.asarray(template.type_ids[:k], dtype=np.int8)
        tail_types = np.asarray(template.type_ids[last + 1 :], dtype=np.int8)
        ctx_type = template.type_ids[k]
        room = cfg.max_length - len(head_ids) - len(tail_ids)
        if room <= cfg.doc_stride:
            raise FinetuneError(
                f"max_length {cfg.max_length} leaves {room} context tokens per window, not more "
                f"than doc_stride {cfg.doc_stride}"
            )
        for lo, hi in _spans(len(ids), room, room - cfg.doc_stride):
            win_offsets = np.full((len(head_ids) + hi - lo + len(tail_ids), 2), -1, np.int32)
            win_offsets[len(head_ids) : len(head_ids) + hi - lo] = offsets[lo:hi]
            start, end = _label_window(win_offsets, example)
            windows.append(
                Window(
                    example_index=first_index + i,
                    input_ids=np.concatenate([head_ids, ids[lo:hi], tail_ids]),
                    token_type_ids=np.concatenate(
                        [head_types, np.full(hi - lo, ctx_type, np.int8), tail_types]
                    ),
                    offsets=win_offsets if keep_offsets else None,
                    start_position=start,
                    end_position=end,
                )
            )
    return windows


def _spans(n: int, room: int, step: int) -> list[tuple[int, int]]:
    """[lo, hi) token ranges of ``room`` tokens, ``step`` apart, covering ``n`` tokens."""
    spans = [(0, min(n, room))]
    while spans[-1][1] < n:
        lo = spans[-1][0] + step
        spans.append((lo, min(n, lo + room)))
    return spans


_BACKENDS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _plain_backend(tokenizer: Any) -> Any:
    """A copy of the fast tokenizer's backend with no truncation or padding (the original,
    whose settings transformers changes per call, is left alone)."""
    try:
        return _BACKENDS[tokenizer]
    except (KeyError, TypeError):
        pass
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()
    with contextlib.suppress(TypeError):  # not weak-referenceable: no cache
        _BACKENDS[tokenizer] = backend
    return backend


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
