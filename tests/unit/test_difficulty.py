"""Difficulty proxy, difficulty bands and the band check: pass and fail on both sides."""

from __future__ import annotations

import pytest

from clinsynth.evaluators.difficulty import (
    DifficultyScore,
    LexicalDifficulty,
    difficulty_check,
    parse_band,
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


def test_band_check_too_hard() -> None:
    check = difficulty_check(DifficultyScore(difficulty=0.41, scorer="t"), (0.0, 0.4))
    assert not check.passed and "too hard" in check.reason
