"""Difficulty of a QA item: scorers (0 = trivial … 1 = hard) and the band check.

Two scorers share one protocol:
- ``LexicalDifficulty``: a model-free proxy — how little the question shares with the
  sentence that holds the answer (questions that echo that sentence are the easiest kind);
- a reader-based scorer (a fine-tuned extractive QA model answers the question; confident
  correct answers are easy) plugs in through the same protocol.
"""

from __future__ import annotations

import re
from typing import Protocol

from pydantic import BaseModel, Field

from clinsynth.evaluators.answer import is_unanswerable, locate_answer
from clinsynth.evaluators.overlap import lexical_overlap
from clinsynth.schemas import CheckResult

DIFFICULTY_BANDS: dict[str, tuple[float, float]] = {
    "easy": (0.0, 0.4),
    "medium": (0.3, 0.7),
    "hard": (0.6, 1.0),
}


class DifficultyScore(BaseModel):
    """A difficulty measurement with what it was based on."""

    difficulty: float = Field(ge=0, le=1)
    scorer: str
    details: dict[str, float | str | bool | None] = Field(default_factory=dict)


class DifficultyScorer(Protocol):
    """Anything that rates how hard a question is to answer from its context."""

    name: str

    def score(self, question: str, context: str, answer: str) -> DifficultyScore: ...


def parse_band(difficulty: str | float | None) -> tuple[float, float] | None:
    """A band from a name (easy/medium/hard), a number (minimum), or ``lo-hi``; None = any."""
    if difficulty is None or difficulty == "":
        return None
    if isinstance(difficulty, float | int):
        return (float(difficulty), 1.0)
    text = difficulty.strip().lower()
    if text in DIFFICULTY_BANDS:
        return DIFFICULTY_BANDS[text]
    match = re.fullmatch(r"(\d*\.?\d+)\s*(?:-\s*(\d*\.?\d+))?", text)
    if match is None:
        raise ValueError(
            "difficulty must be easy, medium, hard, a number in [0, 1] or lo-hi; "
            f"got {difficulty!r}"
        )
    lo = float(match.group(1))
    hi = float(match.group(2)) if match.group(2) else 1.0
    if not 0 <= lo <= hi <= 1:
        raise ValueError(f"difficulty band must lie in [0, 1] with lo <= hi; got {difficulty!r}")
    return (lo, hi)


def _answer_sentence(context: str, start: int, end: int) -> str:
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
        sentence = _answer_sentence(context, *span) if span else context
        overlap = lexical_overlap(question, sentence)
        return DifficultyScore(
            difficulty=round(1.0 - overlap, 4),
            scorer=self.name,
            details={"unanswerable": False, "overlap_with_answer_sentence": round(overlap, 4)},
        )


def difficulty_check(measured: DifficultyScore, band: tuple[float, float]) -> CheckResult:
    """Pass when the measured difficulty lies in ``band``; too easy/hard items go back."""
    lo, hi = band
    value = measured.difficulty
    passed = lo <= value <= hi
    if passed:
        reason = f"difficulty {value:.2f} within [{lo:.2f}, {hi:.2f}] ({measured.scorer})"
    elif value < lo:
        reason = (
            f"too easy: difficulty {value:.2f} below {lo:.2f} ({measured.scorer}); make the "
            "question require inference across sentences and avoid the wording of the sentence "
            "that holds the answer"
        )
    else:
        reason = (
            f"too hard: difficulty {value:.2f} above {hi:.2f} ({measured.scorer}); make the "
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
