"""The qa recipe's prompts render with every slot filled and change with the task."""

from __future__ import annotations

import re

from clinsynth.recipes.qa import prompts


def test_summary_prompt_embeds_document() -> None:
    system, user = prompts.summary_messages("Patient has dyspnoea.")
    assert "summary schema" in str(system.content)
    assert "<document>\nPatient has dyspnoea.\n</document>" in str(user.content)


def test_question_prompt_answerable_with_topic() -> None:
    msgs = prompts.question_messages(
        "DOC TEXT",
        '{"conditions": ["HF"]}',
        answerable=True,
        topic="heart failure",
        difficulty="hard",
        feedback=[],
    )
    text = str(msgs[1].content)
    assert "DOC TEXT" in text and '"conditions"' in text
    assert "Focus on: heart failure." in text and "Target difficulty: hard." in text
    assert "exact quote" in text and "NOT answerable" not in text
    assert "<feedback>" not in text
    assert not re.search(r"\{[a-z_]+\}", text), "unfilled template slot"


def test_question_prompt_unanswerable_with_feedback() -> None:
    msgs = prompts.question_messages(
        "DOC",
        "{}",
        answerable=False,
        topic=None,
        difficulty=None,
        feedback=["lexical_overlap: reuses 'ejection fraction'", "question_form: no '?'"],
    )
    text = str(msgs[1].content)
    assert "NOT answerable" in text and '"unanswerable"' in text
    assert "Focus on" not in text
    assert "<feedback>" in text
    assert "- lexical_overlap: reuses 'ejection fraction'" in text
    assert "- question_form: no '?'" in text


def test_prompt_version_is_set() -> None:
    assert re.fullmatch(r"qa-v\d+", prompts.PROMPT_VERSION)


def test_distill_prompt_has_document_and_question_only() -> None:
    system, user = prompts.distill_messages("DOC TEXT", "Which drug helped?")
    text = str(user.content)
    assert "<document>\nDOC TEXT\n</document>" in text
    assert "Question to answer from the document: Which drug helped?" in text
    assert "character for character" in str(system.content) and '"unanswerable"' in text
    assert not re.search(r"\{[a-z_]+\}", text + str(system.content)), "unfilled template slot"


def _render(variant: prompts.Variant) -> tuple[str, str]:
    summary = '{"conditions": ["HF"]}' if prompts.uses_summary(variant) else None
    system, user = prompts.question_messages(
        "DOC TEXT",
        summary,
        answerable=True,
        topic=None,
        difficulty=None,
        feedback=[],
        avoid_overlap=prompts.avoids_overlap(variant),
    )
    return str(system.content), str(user.content)


def test_the_four_variants_render_their_two_switches() -> None:
    rendered = {v: _render(v) for v in prompts.VARIANTS}
    for variant, (system, user) in rendered.items():
        assert "DOC TEXT" in user and "exact quote" in user
        has_summary = "Structured summary of the document" in user and '"conditions"' in user
        assert has_summary is variant.startswith("summary"), variant
        assert ("do not reuse the document's distinctive words" in system) is variant.endswith(
            "no_overlap"
        ), variant
        assert not re.search(r"\{[a-z_]+\}", system + user), variant
    assert len({system + user for system, user in rendered.values()}) == 4
