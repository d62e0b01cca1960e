"""Difficulty of a QA item: scorers (0 = trivial … 1 = hard) and the band check.

Two scorers share one protocol:
- ``LexicalDifficulty``: a model-free proxy — how little the question shares with the
  sentence that holds the answer (questions that echo that sentence are the easiest kind);
- ``ReaderDifficulty``: an extractive QA reader (fine-tuned on real data, or any QA model
  behind the ``QAReaderLike`` protocol) answers the question; confident correct answers are
  easy: difficulty = 1 − correctness × confidence.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from clinsynth.evaluators.answer import answer_f1, is_unanswerable, locate_answer
from clinsynth.evaluators.overlap import lexical_overlap
from clinsynth.schemas import CheckResult


class DifficultyScore(BaseModel):
    """A difficulty measurement with what it was based on."""

    difficulty: float = Field(ge=0, le=1)
    scorer: str
    details: dict[str, float | str | bool | None] = Field(default_factory=dict)
    note: str | None = Field(default=None, description="what the measurement saw, for feedback")


class DifficultyScorer(Protocol):
    """Anything that rates how hard a question is to answer from its context."""

    name: str

    def score(self, question: str, context: str, answer: str) -> DifficultyScore: ...


class ReaderAnswer(BaseModel):
    """A reader's answer to one question: its best span, or an abstention, and a confidence."""

    text: str | None = Field(description="best span; None when the reader found none")
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

    def score(self, question: str, context: str, answer: str) -> DifficultyScore:
        if is_unanswerable(answer):
            overlap = lexical_overlap(question, context)
            return DifficultyScore(
                difficulty=round(overlap, 4),
                scorer=self.name,
                details={"unanswerable": True, "overlap_with_context": round(overlap, 4)},
            )
        span = locate_answer(answer, context)
        sentence = answer_sentence(context, *span) if span else context
        overlap = lexical_overlap(question, sentence)
        return DifficultyScore(
            difficulty=round(1.0 - overlap, 4),
            scorer=self.name,
            details={"unanswerable": False, "overlap_with_answer_sentence": round(overlap, 4)},
        )


class ReaderDifficulty:
    """Difficulty measured by a reader: 1 − correctness × confidence.

    Correctness is the SQuAD token F1 of the reader's span against the item's answer (for an
    unanswerable item: 1 if the reader abstains, else 0); confidence is the reader's own, in
    the decision it made. A confident correct answer is easy (near 0); a wrong one is hard (1).
    """

    name = "reader"

    def __init__(self, reader: QAReaderLike, *, correct_f1: float = 0.5) -> None:
        self.reader = reader
        self.correct_f1 = correct_f1

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
            details={
                "unanswerable": unanswerable,
                "reader_answer": None if got.abstained else got.text,
                "reader_abstained": got.abstained,
                "reader_confidence": round(got.confidence, 4),
                "reader_f1": round(correctness, 4),
            },
            note=f"a trained reader {right} answered {said} with confidence {got.confidence:.2f}",
        )


def difficulty_check(measured: DifficultyScore, band: tuple[float, float]) -> CheckResult:
    """Pass when the measured difficulty lies in ``band``; too easy/hard items go back.

    The reason carries the scorer's note (e.g. what the reader answered), so feedback to the
    generator is concrete.
    """
    lo, hi = band
    value = measured.difficulty
    if measured.scorer == LexicalDifficulty.name and measured.details.get("unanswerable"):
        # Its proxy (overlap with the document) is capped by the overlap gate, so a band
        # such as "hard" could never be met: recorded, not gated.
        return CheckResult(
            name="difficulty",
            score=value,
            passed=True,
            reason=(
                f"difficulty {value:.2f} not graded: the lexical proxy cannot grade unanswerable "
                "questions (configure a reader: option reader_path)"
            ),
            details={"band": [lo, hi], "graded": False, **measured.details},
        )
    passed = lo <= value <= hi
    note = f"; {measured.note}" if measured.note else ""
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
        details={"band": [lo, hi], **measured.details},
    )
