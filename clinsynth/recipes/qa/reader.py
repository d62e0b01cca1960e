"""A fine-tuned extractive-QA reader (``clinsynth/finetune/qa.Reader``) as the critic's reader.

The model is loaded by :meth:`TrainedReader.load` (a batch run calls it once, in its
inference pool, before the first item), not when the recipe is built; calls are serialised
(the critic runs checks in worker threads).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from clinsynth.config import ConfigError
from clinsynth.evaluators.difficulty import ReaderAnswer

if TYPE_CHECKING:
    from clinsynth.finetune import QAPrediction, Reader


def confidence_of(prediction: QAPrediction) -> float:
    """Confidence in the decision made: sigmoid of the best span's margin over the null score
    (answering), or of the null score's margin over the span (abstaining)."""
    if prediction.score is None:
        return 1.0
    margin = prediction.score - prediction.null_score
    p_answer = 1.0 / (1.0 + math.exp(-max(min(margin, 50.0), -50.0)))
    return 1.0 - p_answer if prediction.is_unanswerable else p_answer


class TrainedReader:
    """``QAReaderLike`` over a saved reader directory (or an already loaded ``Reader``)."""

    def __init__(self, source: str | Path | Reader) -> None:
        self._source = source
        self._reader: Reader | None = None if isinstance(source, str | Path) else source
        self._load_lock = threading.Lock()
        self._lock = threading.Lock()

    def load(self) -> Reader:
        """The loaded reader (read from disk on the first call only); a directory that holds
        no loadable reader is a :class:`ConfigError`."""
        with self._load_lock:
            if self._reader is None:
                from clinsynth.finetune import FinetuneError, Reader

                assert isinstance(self._source, str | Path)
                try:
                    self._reader = Reader.load(self._source)
                except (FinetuneError, OSError, ValueError) as exc:
                    why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    raise ConfigError(f"reader_path {self._source}: {why}") from exc
            return self._reader

    @property
    def reader(self) -> Reader:
        return self._reader if self._reader is not None else self.load()

    def answer(self, question: str, context: str) -> ReaderAnswer:
        from clinsynth.finetune import QAExample

        reader = self.reader
        with self._lock:
            (pred,) = reader.predict([QAExample(id="q", question=question, context=context)])
        return ReaderAnswer(
            text=pred.text,
            start=pred.start,
            abstained=pred.is_unanswerable,
            confidence=confidence_of(pred),
        )
