"""Sentences of a passage and how much of a question one of them carries.

``sentence_novelty`` is the difficulty signal that bench/qa_difficulty.py validated on held-out
COVID-QA questions (``pred_sentence_novelty``): the share of the question's content words
missing from the sentence that holds the reader's answer. The benchmark computes it with
these functions, so the figure it reports is the figure of this code.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_WORD = re.compile(r"[a-z0-9]+")
_STOP_TEXT = (
    "a an the of in on at to for by with from and or but is are was were be been being "
    "what which who whom whose how why when where does do did can could may might will "
    "would should has have had this that these those it its as than then there their they "
    "them into about after before during between through over under not no any all each "
    "other some such only own same so too very s t just more most also"
)
STOP_WORDS = frozenset(_STOP_TEXT.split())


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the non-blank sentences of ``text`` (a plain regex splitter)."""
    spans, lo = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((lo, m.start()))
        lo = m.end()
    spans.append((lo, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()] or [(0, len(text))]


def question_words(text: str) -> set[str]:
    """Lower-cased word tokens of ``text`` without stop words."""
    return {w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS}


def sentence_at(text: str, position: int) -> tuple[int, int]:
    """Span of the sentence holding character ``position`` (the last one if none does)."""
    spans = sentence_spans(text)
    for a, b in spans:
        if a <= position < b:
            return a, b
    return spans[-1]


def sentence_novelty(question: str, context: str, position: int) -> float:
    """1 − the share of the question's content words found in the sentence of ``context``
    that holds ``position`` (0: the sentence repeats the question; 1: shares nothing)."""
    q = question_words(question)
    a, b = sentence_at(context, position)
    return 1.0 - len(q & question_words(context[a:b])) / max(1, len(q))
