"""Text normalisation and content-word extraction shared by the evaluators.

Content words are what remains of a text after dropping English function words and the
scaffolding of clinical questions ("what", "which", "according to the note", ...). Numbers are
kept: a dose or a lab value is content. "patient"/"patients" are treated as scaffolding: nearly
every clinical question and document mentions the patient, so counting it would make every
question look like it copies its document without saying anything about the copied content.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

import snowballstemmer

_WORD_RE = re.compile(r"[^\W_]+")
_SPACE_RE = re.compile(r"\s+")


def _word_set(block: str) -> frozenset[str]:
    """The whitespace-separated words of ``block``."""
    return frozenset(block.split())


FUNCTION_WORDS = _word_set(
    """
    a about above after again against all also although am among an and any are aren as at
    be because been before being below between both but by
    can cannot could couldn did didn do does doesn doing don down during
    each either else enough etc ever every few for from further
    had hadn has hasn have haven having he her here hers herself him himself his how however
    i if in into is isn it its itself just
    let least less me more most much must mustn my myself
    neither no nor not now of off on once only onto or other others otherwise ought our ours
    ourselves out over own per rather same shall shan she should shouldn since so some such
    than that the their theirs them themselves then there these they this those though through
    thus to too toward towards under until up upon us very via was wasn we were weren
    what whatever when whenever where whereas whether which while who whom whose why will
    with within without won would wouldn yet you your yours yourself yourselves
    s t d ll m re ve
    """
)
"""English function words, plus the fragments left when contractions are split on "'"."""

QUESTION_WORDS = _word_set(
    """
    according answer answered appropriate based best case consider considered describe
    described details document documented explain explained following given identify
    indicate indicated information likely list mention mentioned name note noted passage
    patient patients pt provide provided record regarding report reported specific stated
    tell text
    """
)
"""Scaffolding of clinical questions that carries no content of the document."""

STOP_WORDS = FUNCTION_WORDS | QUESTION_WORDS

_stemmer = snowballstemmer.stemmer("english")
_stem_lock = threading.Lock()


@lru_cache(maxsize=65536)
def stem_word(word: str) -> str:
    """Snowball English stem of one lowercase word (thread-safe, cached)."""
    with _stem_lock:
        return str(_stemmer.stemWord(word))


def _strip_punctuation(text: str) -> str:
    """Remove punctuation and whitespace from both ends of ``text``."""
    start, end = 0, len(text)
    while start < end and _is_edge(text[start]):
        start += 1
    while end > start and _is_edge(text[end - 1]):
        end -= 1
    return text[start:end]


def _is_edge(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith("P")


def normalize(text: str) -> str:
    """NFKC, lowercase, collapse whitespace, strip surrounding punctuation and quotes."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _strip_punctuation(_SPACE_RE.sub(" ", text))


def tokens(text: str) -> list[str]:
    """Normalised word tokens (letters and digits; punctuation and underscores split words)."""
    return _WORD_RE.findall(unicodedata.normalize("NFKC", text).lower())


def content_words(text: str, *, stem: bool = True) -> list[str]:
    """Tokens of ``text`` that are not stop words, in order, Snowball-stemmed by default."""
    words = [w for w in tokens(text) if w not in STOP_WORDS]
    return [stem_word(w) for w in words] if stem else words
