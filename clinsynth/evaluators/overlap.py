"""Lexical overlap between a question and its document, and verbatim-copy measures."""

from __future__ import annotations

from collections import defaultdict

from clinsynth.evaluators.text import content_words, tokens
from clinsynth.schemas import CheckResult


def _reused(question: str, document: str) -> tuple[dict[str, str], set[str]]:
    """The question's distinct content stems (stem → first surface word) and those reused."""
    words = content_words(question, stem=False)
    stems = content_words(question)
    surface: dict[str, str] = {}
    for word, stem in zip(words, stems, strict=True):
        surface.setdefault(stem, word)
    return surface, set(surface) & set(content_words(document))


def lexical_overlap(question: str, document: str) -> float:
    """Share of the question's distinct content stems that occur in the document (0 if none)."""
    surface, reused = _reused(question, document)
    return len(reused) / len(surface) if surface else 0.0


def overlap_check(question: str, document: str, *, max_overlap: float = 0.5) -> CheckResult:
    """Pass when at most ``max_overlap`` of the question's content stems come from the document."""
    surface, reused = _reused(question, document)
    score = len(reused) / len(surface) if surface else 0.0
    passed = score <= max_overlap
    ordered = [stem for stem in surface if stem in reused]
    words = ", ".join(surface[stem] for stem in ordered) or "none"
    verdict = "within" if passed else "above"
    reason = (
        f"{len(reused)} of {len(surface)} content words reused from the document "
        f"({score:.2f}, {verdict} the limit {max_overlap:.2f}): {words}"
    )
    return CheckResult(
        name="lexical_overlap",
        score=score,
        passed=passed,
        reason=reason,
        threshold=max_overlap,
        on_fail="revise",
        details={
            "reused_stems": ordered,
            "reused_count": len(reused),
            "content_count": len(surface),
        },
    )


def longest_common_token_run(a: str, b: str) -> int:
    """Length of the longest run of consecutive normalised tokens that both texts contain."""
    ta, tb = tokens(a), tokens(b)
    positions: dict[str, list[int]] = defaultdict(list)
    for j, tok in enumerate(tb):
        positions[tok].append(j)
    best = 0
    previous: dict[int, int] = {}
    for tok in ta:
        current = {j: previous.get(j - 1, 0) + 1 for j in positions.get(tok, ())}
        if current:
            best = max(best, *current.values())
        previous = current
    return best


def _ngrams(toks: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def ngram_overlap(a: str, b: str, n: int = 5) -> float:
    """Share of ``a``'s distinct word n-grams that also occur in ``b`` (0 if ``a`` has none)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    grams = _ngrams(tokens(a), n)
    if not grams:
        return 0.0
    return len(grams & _ngrams(tokens(b), n)) / len(grams)
