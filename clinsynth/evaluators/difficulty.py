"""Difficulty of a QA item: scorers (0 = trivial … 1 = hard) and the band check.

Three scorers share one protocol:
- ``LexicalDifficulty``: a model-free proxy — how little the question shares with the
  sentence that holds the answer (questions that echo that sentence are the easiest kind);
- ``ReaderDifficulty``: an extractive QA reader (fine-tuned on real data, or any QA model
  behind the ``QAReaderLike`` protocol) answers the question; confident correct answers are
  easy: difficulty = 1 − correctness × confidence;
- ``ReaderSentenceDifficulty``: how little the question shares with the sentence that holds
  the *reader's* answer (the signal bench/qa_difficulty.py chose and validated); the default
  whenever a reader is configured.

No gate on an unvalidated number: a score carries the ROC-AUC with which its measure predicted
an *independent* reader's failure on held-out real questions (bench/qa_difficulty.py, written
to bench/results/qa_difficulty.json). Below :data:`MIN_VALIDATED_AUC`, or never validated,
:func:`difficulty_check` records the number as "not graded" and says why; it neither rejects
nor sends the item back, so it cannot steer generation.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from clinsynth.evaluators.answer import answer_f1, is_unanswerable, locate_answer
from clinsynth.evaluators.overlap import lexical_overlap
from clinsynth.schemas import CheckResult

MIN_VALIDATED_AUC = 0.6
"""A difficulty measure gates only if it predicted held-out reader failure at least this well."""
LEXICAL_VALIDATED_AUC = 0.4572
"""ROC-AUC of the lexical proxy against reader failure on COVID-QA dev (203 questions), from
bench/results/qa_difficulty_passages_v1.json (a test keeps the two equal)."""
READER_VALIDATED_AUC: float | None = None
"""The reader score (1 − F1 × confidence) is not validated: on the report half of COVID-QA dev
its ROC-AUC was 0.70 but its 95 % interval [0.49, 0.85] includes chance, and on the selection
half it was 0.48 (bench/results/qa_difficulty.json, ``scores.reader_score``)."""
READER_SENTENCE_VALIDATED_AUC = 0.7186
"""ROC-AUC of :class:`ReaderSentenceDifficulty` against an independent reader's failure on the
report half of COVID-QA dev, 95 % interval [0.57, 0.83], failure rising over its bins
(bench/results/qa_difficulty.json, ``chosen``; a test keeps the two equal)."""
TRAIN_READER_COMMAND = "clinsynth train-reader"


class DifficultyScore(BaseModel):
    """A difficulty measurement with what it was based on."""

    difficulty: float = Field(ge=0, le=1)
    scorer: str
    validated_auc: float | None = Field(
        default=None,
        description="ROC-AUC of this measure against held-out reader failure; None: unvalidated",
    )
    details: dict[str, float | str | bool | None] = Field(default_factory=dict)
    note: str | None = Field(default=None, description="what the measurement saw, for feedback")


class DifficultyScorer(Protocol):
    """Anything that rates how hard a question is to answer from its context."""

    name: str

    def score(self, question: str, context: str, answer: str) -> DifficultyScore: ...


class ReaderAnswer(BaseModel):
    """A reader's answer to one question: its best span, or an abstention, and a confidence."""

    text: str | None = Field(description="best span; None when the reader found none")
    start: int | None = Field(default=None, description="character offset of the span")
    abstained: bool = Field(description="the reader says the question is unanswerable")
    confidence: float = Field(ge=0, le=1, description="confidence in the decision it made")


class QAReaderLike(Protocol):
    """Anything that answers a question from a context (e.g. a fine-tuned extractive reader)."""

    def answer(self, question: str, context: str) -> ReaderAnswer: ...


def answer_sentence(context: str, start: int, end: int) -> str:
    """The sentence(s) of ``context`` that contain the span [start, end)."""
    marks = (". ", "\n", "? ", "! ")
    left = max(context.rfind(mark, 0, start) for mark in marks)
    ends = [i for i in (context.find(mark, end) for mark in marks) if i >= 0]
    right = min(ends) if ends else len(context)
    return context[left + 1 if left >= 0 else 0 : right + 1]


class LexicalDifficulty:
    """Model-free proxy: 1 − overlap of the question with the answer-bearing sentence.

    For unanswerable items the whole context is the reference: a question that echoes the
    document yet has no answer in it is a hard distractor, so the proxy is the overlap itself.
    """

    name = "lexical"
    validated_auc: float | None = LEXICAL_VALIDATED_AUC

    def score(self, question: str, context: str, answer: str) -> DifficultyScore:
        if is_unanswerable(answer):
            overlap = lexical_overlap(question, context)
            return DifficultyScore(
                difficulty=round(overlap, 4),
                scorer=self.name,
                validated_auc=self.validated_auc,
                details={"unanswerable": True, "overlap_with_context": round(overlap, 4)},
            )
        span = locate_answer(answer, context)
        sentence = answer_sentence(context, *span) if span else context
        overlap = lexical_overlap(question, sentence)
        return DifficultyScore(
            difficulty=round(1.0 - overlap, 4),
            scorer=self.name,
            validated_auc=self.validated_auc,
            details={"unanswerable": False, "overlap_with_answer_sentence": round(overlap, 4)},
        )


class ReaderDifficulty:
    """Difficulty measured by a reader: 1 − correctness × confidence.

    Correctness is the SQuAD token F1 of the reader's span against the item's answer (for an
    unanswerable item: 1 if the reader abstains, else 0); confidence is the reader's own, in
    the decision it made. A confident correct answer is easy (near 0); a wrong one is hard (1).
    """

    name = "reader"

    def __init__(
        self,
        reader: QAReaderLike,
        *,
        correct_f1: float = 0.5,
        validated_auc: float | None = READER_VALIDATED_AUC,
    ) -> None:
        self.reader = reader
        self.correct_f1 = correct_f1
        self.validated_auc = validated_auc

    def score(self, question: str, context: str, answer: str) -> DifficultyScore:
        got = self.reader.answer(question, context)
        unanswerable = is_unanswerable(answer)
        if unanswerable:
            correctness = 1.0 if got.abstained else 0.0
        else:
            correctness = 0.0 if got.abstained else answer_f1(got.text or "", answer)
        said = "unanswerable" if got.abstained else repr(got.text or "")
        right = "correctly" if correctness >= self.correct_f1 else "wrongly"
        return DifficultyScore(
            difficulty=round(1.0 - correctness * got.confidence, 4),
            scorer=self.name,
            validated_auc=self.validated_auc,
            details={
                "unanswerable": unanswerable,
                "reader_answer": None if got.abstained else got.text,
                "reader_abstained": got.abstained,
                "reader_confidence": round(got.confidence, 4),
                "reader_f1": round(correctness, 4),
            },
            note=f"a trained reader {right} answered {said} with confidence {got.confidence:.2f}",
        )


class ReaderSentenceDifficulty:
    """Difficulty = 1 − the share of the question's content words found in the sentence that
    holds the reader's answer (:func:`~clinsynth.evaluators.sentences.sentence_novelty`).

    A reader that answers from a sentence echoing the question found it by matching words; one
    that must answer from a sentence sharing little with the question had to infer. The
    reader's best span counts even when its null score wins (as in the benchmark, where long
    articles make abstentions common); a reader with no span at all scores hardest (1.0), and
    for an unanswerable item the score is the question's overlap with the whole context, as for
    the lexical proxy. Those two cases lie outside what the benchmark validated (details say so).
    """

    name = "reader_sentence"

    def __init__(
        self, reader: QAReaderLike, *, validated_auc: float | None = READER_SENTENCE_VALIDATED_AUC
    ) -> None:
        self.reader = reader
        self.validated_auc = validated_auc

    def score(self, question: str, context: str, answer: str) -> DifficultyScore:
        from clinsynth.evaluators.sentences import sentence_at, sentence_novelty

        if is_unanswerable(answer):  # the reader's answer would not change this score
            return (
                LexicalDifficulty()
                .score(question, context, answer)
                .model_copy(update={"scorer": self.name, "validated_auc": self.validated_auc})
            )
        got = self.reader.answer(question, context)
        start = got.start
        if start is None and got.text:
            span = locate_answer(got.text, context)
            start = span[0] if span else None
        if start is None:
            difficulty, note = 1.0, "the reader found no answer span in the context"
            sentence = None
        else:
            difficulty = sentence_novelty(question, context, start)
            a, b = sentence_at(context, start)
            sentence = context[a:b]
            shared = 1 - difficulty
            note = f"the reader answered from a sentence sharing {shared:.0%} of the question"
        return DifficultyScore(
            difficulty=round(difficulty, 4),
            scorer=self.name,
            validated_auc=self.validated_auc,
            details={
                "unanswerable": False,
                "reader_answer": got.text,
                "reader_abstained": got.abstained,
                "reader_confidence": round(got.confidence, 4),
                "reader_sentence": sentence,
                "outside_validation": start is None,
            },
            note=note,
        )


def ungraded_reason(measured: DifficultyScore) -> str | None:
    """Why ``measured`` may not gate (unvalidated or validated AUC below the bar), or None."""
    auc = measured.validated_auc
    if auc is None:
        why = f"the {measured.scorer} measure was never validated against held-out reader failure"
    elif auc < MIN_VALIDATED_AUC:
        why = (
            f"the {measured.scorer} measure predicted held-out reader failure with ROC-AUC "
            f"{auc:.2f} (< {MIN_VALIDATED_AUC:.2f}; bench/results/qa_difficulty*.json)"
        )
    else:
        return None
    return (
        f"{why}, so it may not gate or steer; train and cache a reader with "
        f"`{TRAIN_READER_COMMAND}` and set option reader_path"
    )


DEFAULT_READER_DIR = ".clinsynth/qa_reader"
"""Where ``clinsynth train-reader`` caches the default reader."""


def harder_not_measurable(reader_configured: bool) -> str | None:
    """Why "make them harder" cannot be honoured (no validated difficulty measure), or None."""
    auc = READER_SENTENCE_VALIDATED_AUC
    if reader_configured and auc is not None and auc >= MIN_VALIDATED_AUC:
        return None
    if reader_configured:
        measure = "the reader-based measure " + (
            "was never validated" if auc is None else f"has validated ROC-AUC {auc:.2f}"
        )
    else:
        measure = (
            f"without a reader only the lexical proxy is left, and it predicted held-out reader "
            f"failure with ROC-AUC {LEXICAL_VALIDATED_AUC:.2f} (below {MIN_VALIDATED_AUC:.2f})"
        )
    return (
        f"Difficulty cannot be measured here: {measure}, so 'harder' could not be checked and "
        f"nothing was generated. To get a reader, run `{TRAIN_READER_COMMAND}` (trains and "
        f"caches the default reader in {DEFAULT_READER_DIR}; slow on CPU), then start the chat "
        f"with --reader {DEFAULT_READER_DIR}."
    )


def difficulty_check(measured: DifficultyScore, band: tuple[float, float]) -> CheckResult:
    """Pass when the measured difficulty lies in ``band``; too easy/hard items go back.

    The reason carries the scorer's note (e.g. what the reader answered), so feedback to the
    generator is concrete. A measure without a validated AUC ≥ :data:`MIN_VALIDATED_AUC` is
    recorded as "not graded" (passed, ``details["graded"] = False``) with the reason.
    """
    lo, hi = band
    value = measured.difficulty
    note = f"; {measured.note}" if measured.note else ""
    why = ungraded_reason(measured)
    if (
        why is None
        and measured.scorer == LexicalDifficulty.name
        and measured.details.get("unanswerable")
    ):
        why = "the lexical proxy cannot grade unanswerable questions (configure a reader)"
    if why is not None:
        return CheckResult(
            name="difficulty",
            score=value,
            passed=True,
            reason=f"difficulty {value:.2f} not graded ({measured.scorer}{note}): {why}",
            details={
                "band": [lo, hi],
                "graded": False,
                "validated_auc": measured.validated_auc,
                **measured.details,
            },
        )
    passed = lo <= value <= hi
    if passed:
        reason = f"difficulty {value:.2f} within [{lo:.2f}, {hi:.2f}] ({measured.scorer}{note})"
    elif value < lo:
        reason = (
            f"too easy: difficulty {value:.2f} below {lo:.2f} ({measured.scorer}{note}); make the "
            "question require inference across sentences and avoid the wording of the sentence "
            "that holds the answer"
        )
    else:
        reason = (
            f"too hard: difficulty {value:.2f} above {hi:.2f} ({measured.scorer}{note}); make the "
            "question more direct"
        )
    return CheckResult(
        name="difficulty",
        score=value,
        passed=passed,
        reason=reason,
        threshold=lo if value < lo else hi,
        on_fail="revise",
        details={
            "band": [lo, hi],
            "graded": True,
            "validated_auc": measured.validated_auc,
            **measured.details,
        },
    )
