"""Surface form of a generated question."""

from __future__ import annotations

from clinsynth.schemas import CheckResult


def question_form_check(question: str, *, min_words: int = 5, max_words: int = 60) -> CheckResult:
    """Pass when the question ends with '?' and has ``min_words``..``max_words`` words.

    Words are whitespace-separated pieces that contain a letter or digit. Score is 1.0 when the
    form is right and 0.0 otherwise.
    """
    text = question.strip()
    words = sum(1 for piece in text.split() if any(c.isalnum() for c in piece))
    problems = []
    if not text.endswith("?"):
        problems.append("does not end with '?'")
    if words < min_words:
        problems.append(f"has {words} words, fewer than {min_words}")
    elif words > max_words:
        problems.append(f"has {words} words, more than {max_words}")
    passed = not problems
    reason = (
        f"a question of {words} words ending with '?'"
        if passed
        else "the question " + " and ".join(problems)
    )
    return CheckResult(
        name="question_form",
        score=1.0 if passed else 0.0,
        passed=passed,
        reason=reason,
        threshold=1.0,
        on_fail="revise",
        details={
            "words": words,
            "ends_with_question_mark": text.endswith("?"),
            "min_words": min_words,
            "max_words": max_words,
        },
    )
