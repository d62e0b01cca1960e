"""Answer validity for extractive QA: an answer is an exact quote of its context or unanswerable."""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections import Counter

from clinsynth.evaluators.text import normalize
from clinsynth.schemas import CheckResult

UNANSWERABLE = "unanswerable"

_UNANSWERABLE_FORMS = frozenset(
    {
        "",
        UNANSWERABLE,
        "n/a",
        "na",
        "not answerable",
        "cannot be answered",
        "can't be answered",
        "cannot answer",
        "can't answer",
        "no answer",
        "not applicable",
        "not stated",
        "not mentioned",
        "not in the document",
        "not found in the document",
        "insufficient information",
        "the question is unanswerable",
        "the question cannot be answered",
    }
)

_CHAR_MAP = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u0060\u00b4", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
}
"""Typographic quotes and dashes, mapped to their ASCII forms for tolerant matching."""


@functools.lru_cache(maxsize=8192)
def _fold(char: str) -> str:
    """Case-, width- and quote-insensitive form of one character (may be longer than one);
    cached, since texts reuse few distinct characters and this runs for each one."""
    return "".join(_CHAR_MAP.get(c, c) for c in unicodedata.normalize("NFKC", char).lower())


def _folded(text: str) -> tuple[str, list[int]]:
    """Fold ``text`` and collapse whitespace runs to one space.

    Returns the folded string and, for each of its characters, the offset of the original
    character it came from.
    """
    out: list[str] = []
    origin: list[int] = []
    in_space = False
    for i, char in enumerate(text):
        if char.isspace():
            if not in_space:
                out.append(" ")
                origin.append(i)
            in_space = True
            continue
        in_space = False
        for folded in _fold(char):
            out.append(folded)
            origin.append(i)
    return "".join(out), origin


def _strip_quotes(text: str) -> str:
    """Drop quotes and sentence punctuation an LLM may have wrapped around a quote."""
    return text.strip().strip("'\".,;:").strip()


def locate_answer(answer: str, context: str) -> tuple[int, int] | None:
    """Offsets ``(start, end)`` of ``answer`` in ``context``, or None if it is not a quote.

    Tries an exact match first, then a match that ignores differences in case, whitespace,
    Unicode width and quote/dash characters, and finally the same without quotes or trailing
    punctuation around the answer. ``context[start:end]`` is always the original text.
    """
    stripped = answer.strip()
    if not stripped:
        return None
    start = context.find(stripped)
    if start >= 0:
        return start, start + len(stripped)
    folded_context, origin = _folded(context)
    folded_answer = _folded(stripped)[0]
    for needle in dict.fromkeys((folded_answer, _strip_quotes(folded_answer))):
        if not needle:
            continue
        pos = folded_context.find(needle)
        if pos >= 0:
            return origin[pos], origin[pos + len(needle) - 1] + 1
    return None


def is_unanswerable(answer: str) -> bool:
    """True for the unanswerable label and its common spellings ("N/A", "cannot be answered")."""
    return _folded(normalize(answer))[0] in _UNANSWERABLE_FORMS


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _answer_tokens(text: str) -> list[str]:
    """SQuAD answer normalisation: lower case, no punctuation or articles, split on spaces."""
    folded = "".join(c for c in text.lower() if c not in string.punctuation)
    return _ARTICLES.sub(" ", folded).split()


def answer_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1 between two answer strings (1.0 when both normalise to nothing)."""
    pred, ref = _answer_tokens(prediction), _answer_tokens(gold)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def answer_validity_check(answer: str, context: str) -> CheckResult:
    """Pass when the answer is unanswerable or an exact quote of the context."""
    if is_unanswerable(answer):
        return CheckResult(
            name="answer_validity",
            score=1.0,
            passed=True,
            reason="answer is labelled unanswerable",
            threshold=1.0,
            on_fail="relabel",
            details={"unanswerable": True},
        )
    span = locate_answer(answer, context)
    if span is None:
        return CheckResult(
            name="answer_validity",
            score=0.0,
            passed=False,
            reason="the answer is not an exact quote of the document and is not 'unanswerable'",
            threshold=1.0,
            on_fail="relabel",
            details={"unanswerable": False},
        )
    start, end = span
    return CheckResult(
        name="answer_validity",
        score=1.0,
        passed=True,
        reason=f"answer quoted from the document at characters {start}-{end}",
        threshold=1.0,
        on_fail="relabel",
        details={"unanswerable": False, "start": start, "end": end, "text": context[start:end]},
    )
