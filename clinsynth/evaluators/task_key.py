"""Checks that verify a task's answer key instead of trusting the generator.

Multiple choice: the correct option is the source text, options are distinct but not
unrelated (embedding similarity bounds), the answer sits where the task put it, positions
are balanced over a batch, and simple solvers that never read the trial (lexical overlap with
the question, embedding similarity, longest option) do not find the answer much above chance.
Every task: neither the question nor the context reveals the answer (the label leak checks).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel

from clinsynth.evaluators.overlap import lexical_overlap, ngram_overlap
from clinsynth.evaluators.text import normalize
from clinsynth.schemas import CheckResult

LETTERS = ("A", "B", "C", "D")


def option_match_check(options: Mapping[str, str], answer: str, source: str) -> CheckResult:
    """Pass when the option under ``answer`` is the source text (after normalising case,
    punctuation and spaces)."""
    given = options.get(answer, "")
    passed = bool(source.strip()) and normalize(given) == normalize(source)
    reason = (
        f"option {answer} is the trial's own text"
        if passed
        else f"option {answer} is not the trial's own text ({len(given)} vs {len(source)} chars)"
    )
    return CheckResult(
        name="correct_option", score=float(passed), passed=passed, reason=reason, on_fail="reject"
    )


def distractor_similarity_check(
    vectors: np.ndarray,
    answer_index: int,
    *,
    max_similarity: float = 0.9,
    min_similarity: float = -1.0,
) -> CheckResult:
    """Options (rows of ``vectors``, unit-normalised embeddings) must be distinct: every pair
    at most ``max_similarity``; and plausible: each distractor at least ``min_similarity``
    to the correct option. Score: the highest pairwise cosine."""
    unit = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(unit, axis=1, keepdims=True)
    unit = np.divide(unit, norms, out=np.zeros_like(unit), where=norms > 0)
    sims = unit @ unit.T
    n = len(unit)
    pairs = [(i, j, float(sims[i, j])) for i in range(n) for j in range(i + 1, n)]
    worst = max(pairs, key=lambda p: p[2]) if pairs else (0, 0, 0.0)
    low = [
        (j, float(sims[answer_index, j]))
        for j in range(n)
        if j != answer_index and sims[answer_index, j] < min_similarity
    ]
    problems = []
    if worst[2] > max_similarity:
        problems.append(
            f"options {LETTERS[worst[0]]} and {LETTERS[worst[1]]} are near duplicates "
            f"(cosine {worst[2]:.2f} > {max_similarity:.2f}); write distinct options"
        )
    if low:
        names = ", ".join(f"{LETTERS[j]} ({s:.2f})" for j, s in low)
        problems.append(
            f"distractors {names} are unrelated to the correct option (cosine below "
            f"{min_similarity:.2f}); keep them on the same topic"
        )
    return CheckResult(
        name="distractor_similarity",
        score=worst[2],
        passed=not problems,
        reason="; ".join(problems) or f"options distinct (max cosine {worst[2]:.2f})",
        threshold=max_similarity,
        details={"pairwise": [[round(float(x), 4) for x in row] for row in sims]},
    )


def answer_position_check(answer: str, expected: str) -> CheckResult:
    """Pass when the answer letter is the one the task assigned (positions are balanced per
    block of four tasks, so a generator that moves the answer unbalances the batch)."""
    passed = answer == expected
    reason = (
        f"answer at {answer} as assigned"
        if passed
        else f"answer at {answer}, but the task assigned {expected}"
    )
    return CheckResult(
        name="answer_position", score=float(passed), passed=passed, reason=reason, on_fail="reject"
    )


def option_length_check(
    options: Mapping[str, str], answer: str, *, min_ratio: float = 0.33
) -> CheckResult:
    """Every distractor is at least ``min_ratio`` and at most ``1 / min_ratio`` times as long
    (in characters) as the correct option: a one-word distractor beside a criteria block, or
    the reverse, hands the answer to a solver that only compares lengths."""
    truth = max(len(options.get(answer, "").strip()), 1)
    ratios = {k: len(v.strip()) / truth for k, v in options.items() if k != answer}
    off = {k: r for k, r in ratios.items() if not min_ratio <= r <= 1 / min_ratio}
    worst = min(ratios.values(), default=1.0)
    reason = (
        "distractors are about as long as the correct option"
        if not off
        else "distractors "
        + ", ".join(f"{k} ({r:.2f}×)" for k, r in sorted(off.items()))
        + " differ too much in length from the correct option; write full, comparable options"
    )
    return CheckResult(
        name="option_length",
        score=worst,
        passed=not off,
        reason=reason,
        threshold=min_ratio,
        details={"ratios": {k: round(r, 3) for k, r in ratios.items()}},
    )


def separability_check(
    prompt: str, options: Mapping[str, str], answer: str, *, max_margin: float = 0.1
) -> CheckResult:
    """Per-item guard against a lexical giveaway: the share of the correct option's content
    words found in the question and trial may exceed the best distractor's by at most
    ``max_margin`` (else a solver that matches words, not design, finds the answer)."""
    scores = {k: lexical_overlap(v, prompt) for k, v in options.items()}
    best_other = max((v for k, v in scores.items() if k != answer), default=0.0)
    margin = scores.get(answer, 0.0) - best_other
    passed = margin <= max_margin
    reason = (
        f"correct option shares {scores.get(answer, 0.0):.0%} of its content words with the "
        f"question and trial, the closest distractor {best_other:.0%}"
    )
    if not passed:
        reason += (
            f" (margin {margin:.2f} > {max_margin:.2f}): word matching gives the answer away; "
            "let the distractors use the trial's own condition and intervention terms"
        )
    return CheckResult(
        name="lexical_separability",
        score=margin,
        passed=passed,
        reason=reason,
        threshold=max_margin,
        details={"overlap": {k: round(v, 4) for k, v in scores.items()}},
    )


class PositionBalance(BaseModel):
    """How answers spread over A–D in a batch, with a chi-square test against uniform."""

    counts: dict[str, int]
    n: int
    chi2: float
    p_value: float
    balanced: bool


def position_balance(answers: Sequence[str], *, min_p: float = 0.01) -> PositionBalance:
    """Chi-square goodness of fit of the answer letters against a uniform A–D spread;
    ``balanced`` when p ≥ ``min_p`` (a batch of fewer than 4 answers is never judged
    unbalanced)."""
    from scipy.stats import chisquare

    counts = Counter(answers)
    observed = [counts.get(letter, 0) for letter in LETTERS]
    n = sum(observed)
    if n < len(LETTERS):
        return PositionBalance(
            counts=dict(zip(LETTERS, observed, strict=True)),
            n=n,
            chi2=0.0,
            p_value=1.0,
            balanced=True,
        )
    chi2, p = chisquare(observed)
    return PositionBalance(
        counts=dict(zip(LETTERS, observed, strict=True)),
        n=n,
        chi2=float(chi2),
        p_value=float(p),
        balanced=bool(p >= min_p),
    )


# --- trivial solvers --------------------------------------------------------------------

Solver = Callable[[str, list[str]], int]


def lexical_solver(prompt: str, options: list[str]) -> int:
    """Pick the option whose content words overlap the question and context most."""
    scores = [lexical_overlap(option, prompt) for option in options]
    return int(np.argmax(scores))


def longest_solver(prompt: str, options: list[str]) -> int:
    """Pick the longest option (a classic giveaway of written-to-be-correct answers)."""
    return int(np.argmax([len(o) for o in options]))


def embedding_solver(embed: Callable[[list[str]], np.ndarray]) -> Solver:
    """A solver that picks the option most cosine-similar to the question and context."""

    def solve(prompt: str, options: list[str]) -> int:
        vectors = np.asarray(embed([prompt, *options]), dtype=np.float64)
        sims = vectors[1:] @ vectors[0]
        return int(np.argmax(sims))

    return solve


class SolverAccuracy(BaseModel):
    """A trivial solver's accuracy on a batch, beside chance."""

    solver: str
    n: int
    correct: int
    accuracy: float
    chance: float


def solver_accuracy(
    items: Sequence[Mapping[str, object]], solver: Solver, name: str
) -> SolverAccuracy:
    """Accuracy of ``solver`` over multiple-choice items (``prompt``, ``options``, ``answer``
    as :func:`mcq_view` gives them)."""
    correct = 0
    for item in items:
        options = dict(item["options"])  # type: ignore[call-overload]
        letters = sorted(options)
        pick = solver(str(item["prompt"]), [str(options[k]) for k in letters])
        correct += letters[pick] == item["answer"]
    n = len(items)
    return SolverAccuracy(
        solver=name,
        n=n,
        correct=correct,
        accuracy=correct / n if n else 0.0,
        chance=1 / len(LETTERS),
    )


# --- label leaks ------------------------------------------------------------------------


def text_leak_check(
    answer: str, texts: Mapping[str, str], *, n: int = 6, max_share: float = 0.3
) -> CheckResult:
    """Fail when a shown text (question, context fields) contains a large share of the
    answer's word ``n``-grams, i.e. states the answer."""
    shares = {name: ngram_overlap(answer, text, n) for name, text in texts.items() if text}
    name, worst = max(shares.items(), key=lambda kv: kv[1]) if shares else ("", 0.0)
    passed = worst <= max_share
    reason = (
        f"no shown text repeats the answer (worst {worst:.2f})"
        if passed
        else f"'{name}' repeats {worst:.0%} of the answer's {n}-grams: it gives the answer away"
    )
    return CheckResult(
        name="label_leak", score=worst, passed=passed, reason=reason, threshold=max_share
    )


def number_leak_check(number: int, texts: Mapping[str, str]) -> CheckResult:
    """Fail when a shown text states the answer ``number`` as a stand-alone number."""
    pattern = re.compile(rf"(?<![\d.,]){number:,}(?![\d])|(?<![\d.,]){number}(?![\d])")
    leaking = sorted(name for name, text in texts.items() if pattern.search(text or ""))
    passed = not leaking
    reason = (
        f"the answer {number} is not stated"
        if passed
        else f"{', '.join(leaking)} state(s) the answer {number}"
    )
    return CheckResult(name="label_leak", score=float(not passed), passed=passed, reason=reason)


def pattern_leak_check(texts: Mapping[str, str], reveals: Callable[[str], bool]) -> CheckResult:
    """Fail when ``reveals`` (e.g. the trial leak scrubber's test) finds a shown text that
    tells how the trial ended."""
    leaking = sorted(name for name, text in texts.items() if text and reveals(text))
    passed = not leaking
    reason = (
        "no shown text tells how the trial ended"
        if passed
        else f"{', '.join(leaking)} tell(s) how the trial ended"
    )
    return CheckResult(name="label_leak", score=float(not passed), passed=passed, reason=reason)
