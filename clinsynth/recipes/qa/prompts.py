"""Versioned prompts of the ``qa`` recipe. Change PROMPT_VERSION whenever a template changes."""

from __future__ import annotations

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

PROMPT_VERSION = "qa-v1"

SUMMARY_SYSTEM = (
    "You are a clinical documentation specialist. Read the document and fill the summary "
    "schema with short factual phrases taken from it. Use an empty list for a field the "
    "document does not cover. Do not add facts that are not in the document."
)

SUMMARY_USER = (
    "Summarise this document into the fields history, conditions, symptoms, findings, "
    "diagnostics and treatments.\n\n<document>\n{document}\n</document>"
)

QUESTION_SYSTEM = (
    "You write hard reading-comprehension questions for training clinical question-answering "
    "models. A good question needs the reader to connect facts, is answered by one exact "
    "quote from the document, and is phrased in your own words: do not reuse the document's "
    "distinctive words; use synonyms, lay terms or descriptions instead."
)

QUESTION_USER = (
    "Structured summary of the document:\n{summary}\n\n"
    "<document>\n{document}\n</document>\n\n"
    "{focus}"
    "Write one question about this patient. {answer_rule}\n"
    "Return the question and the answer."
)

ANSWERABLE_RULE = (
    "The answer must be a short exact quote copied character for character from the document."
)
UNANSWERABLE_RULE = (
    "Make the question plausible for this document but NOT answerable from it; the answer "
    'must then be exactly "unanswerable".'
)

FEEDBACK_BLOCK = (
    "\n<feedback>\nYour previous question was sent back by the reviewer for these reasons:\n"
    "{reasons}\nWrite a new question that fixes every one of them.\n</feedback>\n"
)


def summary_messages(document: str) -> list[BaseMessage]:
    """Messages for the schema-summary (reasoner) step."""
    return [
        SystemMessage(SUMMARY_SYSTEM),
        HumanMessage(SUMMARY_USER.format(document=document)),
    ]


def question_messages(
    document: str,
    summary: str,
    *,
    answerable: bool,
    topic: str | None,
    difficulty: str | None,
    feedback: list[str],
) -> list[BaseMessage]:
    """Messages for the question (generator) step."""
    focus = ""
    if topic:
        focus += f"Focus on: {topic}.\n"
    if difficulty:
        focus += f"Target difficulty: {difficulty}.\n"
    user = QUESTION_USER.format(
        summary=summary,
        document=document,
        focus=focus,
        answer_rule=ANSWERABLE_RULE if answerable else UNANSWERABLE_RULE,
    )
    if feedback:
        user += FEEDBACK_BLOCK.format(reasons="\n".join(f"- {r}" for r in feedback))
    return [SystemMessage(QUESTION_SYSTEM), HumanMessage(user)]
