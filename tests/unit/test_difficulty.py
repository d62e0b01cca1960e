"""Difficulty proxy, difficulty bands and the band check: pass and fail on both sides."""

from __future__ import annotations

import pytest

from clinsynth.config import parse_band
from clinsynth.evaluators.answer import answer_f1
from clinsynth.evaluators.difficulty import (
    DifficultyScore,
    LexicalDifficulty,
    ReaderAnswer,
    ReaderDifficulty,
    difficulty_check,
)

CTX = (
    "The patient has heart failure. Echocardiography showed an ejection fraction of "
    "30 percent. Furosemide was given."
)
ANSWER = "an ejection fraction of 30 percent"


def test_echoing_the_answer_sentence_is_easy() -> None:
    easy = LexicalDifficulty().score(
        "What did echocardiography show about the ejection fraction?", CTX, ANSWER
    )
    hard = LexicalDifficulty().score("How weak was the pump on imaging?", CTX, ANSWER)
    assert easy.difficulty == 0.0 and hard.difficulty == 1.0
    assert easy.details["overlap_with_answer_sentence"] == 1.0


def test_only_the_answer_sentence_counts() -> None:
    # "furosemide" is in the document but not in the answer sentence: still a hard question.
    score = LexicalDifficulty().score("Which pump value preceded the furosemide?", CTX, ANSWER)
    assert score.difficulty > 0.5


def test_unanswerable_distractor_that_echoes_the_document_is_hard() -> None:
    echo = LexicalDifficulty().score("Which furosemide dose was given?", CTX, "unanswerable")
    unrelated = LexicalDifficulty().score("Which vaccine was offered?", CTX, "unanswerable")
    assert echo.difficulty > unrelated.difficulty
    assert echo.details["unanswerable"] is True


@pytest.mark.parametrize(
    ("text", "band"),
    [
        (None, None),
        ("hard", (0.6, 1.0)),
        ("easy", (0.0, 0.4)),
        ("0.5", (0.5, 1.0)),
        ("0.2-0.6", (0.2, 0.6)),
        (0.7, (0.7, 1.0)),
    ],
)
def test_parse_band(text: str | float | None, band: tuple[float, float] | None) -> None:
    assert parse_band(text) == band


@pytest.mark.parametrize("text", ["extreme", "0.8-0.2", "1.5", "-1"])
def test_parse_band_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="difficulty"):
        parse_band(text)


@pytest.mark.parametrize(
    ("value", "passed", "word"),
    [(0.59, False, "too easy"), (0.6, True, "within"), (1.0, True, "within")],
)
def test_band_check_hard(value: float, passed: bool, word: str) -> None:
    check = difficulty_check(DifficultyScore(difficulty=value, scorer="t"), (0.6, 1.0))
    assert check.passed is passed and word in check.reason
    assert check.on_fail == "revise"


def test_lexical_proxy_does_not_gate_unanswerable_items() -> None:
    # Its unanswerable proxy is the overlap the overlap gate caps at 0.5: "hard" could never pass.
    proxy = LexicalDifficulty().score("Which vaccine was offered?", CTX, "unanswerable")
    check = difficulty_check(proxy, (0.6, 1.0))
    assert check.passed and "not graded" in check.reason and check.details["graded"] is False
    assert check.score == proxy.difficulty < 0.6
    graded = ReaderDifficulty(FixedReader(None, 0.1, abstained=True)).score(  # a reader grades it
        "Which vaccine was offered?", CTX, "unanswerable"
    )
    assert not difficulty_check(graded, (0.0, 0.4)).passed


def test_band_check_too_hard() -> None:
    check = difficulty_check(DifficultyScore(difficulty=0.41, scorer="t"), (0.0, 0.4))
    assert not check.passed and "too hard" in check.reason


class FixedReader:
    def __init__(self, text: str | None, confidence: float, abstained: bool = False) -> None:
        self.reply = ReaderAnswer(text=text, abstained=abstained, confidence=confidence)

    def answer(self, question: str, context: str) -> ReaderAnswer:
        return self.reply


@pytest.mark.parametrize(
    ("reader", "answer", "difficulty"),
    [
        (FixedReader("ejection fraction of 30 percent", 0.9), ANSWER, 0.1),  # confident, right
        (FixedReader("ejection fraction of 30 percent", 0.2), ANSWER, 0.8),  # unsure, right
        (FixedReader("Furosemide", 0.99), ANSWER, 1.0),  # confident, wrong
        (FixedReader(None, 0.9, abstained=True), ANSWER, 1.0),  # abstains on answerable
        (FixedReader(None, 0.7, abstained=True), "unanswerable", 0.3),  # right abstention
        (FixedReader("Furosemide", 0.9), "unanswerable", 1.0),  # answers the unanswerable
    ],
)
def test_reader_difficulty(reader: FixedReader, answer: str, difficulty: float) -> None:
    score = ReaderDifficulty(reader).score("q?", CTX, answer)
    assert score.difficulty == pytest.approx(difficulty)
    assert score.scorer == "reader" and score.note and "confidence" in score.note


@pytest.mark.parametrize(
    ("value", "band", "passed", "word"),
    [(0.1, (0.6, 1.0), False, "too easy"), (0.8, (0.6, 1.0), True, "within")],
)
def test_reader_band_feedback_is_concrete(
    value: float, band: tuple[float, float], passed: bool, word: str
) -> None:
    reader = FixedReader("ejection fraction of 30 percent", 1 - value)
    check = difficulty_check(ReaderDifficulty(reader).score("q?", CTX, ANSWER), band)
    assert check.passed is passed and word in check.reason
    assert "correctly answered 'ejection fraction of 30 percent'" in check.reason
    assert check.details["reader_f1"] == 1.0


@pytest.mark.parametrize(
    ("pred", "gold", "f1"),
    [
        ("The ejection fraction", "ejection fraction", 1.0),
        ("30 percent", "an ejection fraction of 30 percent", 4 / 7),
        ("furosemide", "digoxin", 0.0),
        ("", "", 1.0),
        ("a", "digoxin", 0.0),
    ],
)
def test_answer_f1(pred: str, gold: str, f1: float) -> None:
    assert answer_f1(pred, gold) == pytest.approx(f1, abs=1e-3)
