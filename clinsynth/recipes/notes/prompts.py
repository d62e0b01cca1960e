"""Versioned prompts of the ``notes`` recipe. Change PROMPT_VERSION whenever a template changes."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from clinsynth.recipes.passages import data_rule, quote

PROMPT_VERSION = "notes-v2"

NOTE_SYSTEM = (
    "You write realistic, entirely fictional clinical texts used to train text classifiers. "
    "Each text must clearly belong to the requested class, read like the examples of that "
    "class in style, length and structure, and be new: do not copy sentences from the "
    "examples and do not reuse their patients, numbers or names. Never name the class "
    "itself in the text; let the clinical content show it. Invent no real person's details."
) + data_rule("example")

NOTE_USER = (
    "Class: {label}{description}\n\n"
    "Examples of texts in this class:\n{examples}\n\n"
    "{focus}"
    "Write one new text of class {label}, about {length} words long. "
    "Return only the text in the field 'text'."
)

FEEDBACK_BLOCK = (
    "\n<feedback>\nA reviewer sent your previous text back for these reasons:\n{reasons}\n"
    "Write a new text that fixes every one of them.\n</feedback>\n"
)


def note_messages(
    label: str,
    examples: Sequence[str],
    *,
    description: str | None,
    length_words: int,
    topic: str | None,
    feedback: Sequence[str],
) -> list[BaseMessage]:
    """Messages for the generator step: few-shot gold examples of one class → one new text."""
    focus = f"Topic to write about: {topic}.\n" if topic else ""
    user = NOTE_USER.format(
        label=label,
        description=f" ({description})" if description else "",
        examples="\n".join(quote("example", t.strip()) for t in examples),
        focus=focus,
        length=length_words,
    )
    if feedback:
        user += FEEDBACK_BLOCK.format(reasons="\n".join(f"- {r}" for r in feedback))
    return [SystemMessage(NOTE_SYSTEM), HumanMessage(user)]
