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
