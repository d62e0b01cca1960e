"""Versioned prompts of the ``qa`` recipe. Change PROMPT_VERSION whenever a template changes.

Four prompt variants (the rows of arXiv 2412.04573's table) differ in two switches: whether the
question is written from the schema summary (``summary``) and whether the model is asked not to
reuse the document's words (``no_overlap``). Answers are distilled in a separate call.
"""

from __future__ import annotations

from typing import Literal

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from clinsynth.recipes.passages import data_rule, quote

PROMPT_VERSION = "qa-v3"

Variant = Literal["direct", "no_overlap", "summary", "summary+no_overlap"]
VARIANTS: tuple[Variant, ...] = ("direct", "no_overlap", "summary", "summary+no_overlap")


def uses_summary(variant: Variant) -> bool:
    """Whether questions are written from the schema summary (the reasoner step runs)."""
    return variant.startswith("summary")


def avoids_overlap(variant: Variant) -> bool:
    """Whether the prompt asks the model not to reuse the document's words."""
    return variant.endswith("no_overlap")


SUMMARY_SYSTEM = (
    "You are a clinical documentation specialist. Read the document and fill the summary "
    "schema with short factual phrases taken from it. Use an empty list for a field the "
    "document does not cover. Do not add facts that are not in the document."
) + data_rule("document")

SUMMARY_USER = (
    "Summarise this document into the fields history, conditions, symptoms, findings, "
    "diagnostics and treatments.\n\n{document}"
)

QUESTION_SYSTEM = (
    "You write hard reading-comprehension questions for training clinical question-answering "
    "models. A good question needs the reader to connect facts and is answered by one exact "
    "quote from the document."
) + data_rule("document", "summary")

NO_OVERLAP_RULE = (
    " Phrase it in your own words: do not reuse the document's distinctive words; use "
    "synonyms, lay terms or descriptions instead."
)

SUMMARY_BLOCK = "Structured summary of the document:\n{summary}\n\n"

QUESTION_USER = (
    "{summary_block}"
    "{document}\n\n"
    "{focus}"
    "Write one question about this patient{source}. {answer_rule}\n"
    "Return the question and the answer you have in mind."
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

DISTILL_SYSTEM = (
    "You answer questions strictly from one document. Reply with the shortest passage that "
    "answers the question, copied character for character from the document (no paraphrase, "
    'no added words). If the document does not answer the question, reply "unanswerable".'
) + data_rule("document")

DISTILL_USER = (
    "{document}\n\n"
    "Question to answer from the document: {question}\n\n"
    'Return the exact quote, or "unanswerable".'
)

SYSTEM_PROMPTS = (SUMMARY_SYSTEM, QUESTION_SYSTEM + NO_OVERLAP_RULE, DISTILL_SYSTEM)
"""Every system prompt of the recipe (the question prompt with its longest variant)."""


def summary_messages(document: str) -> list[BaseMessage]:
    """Messages for the schema-summary (reasoner) step."""
    return [
        SystemMessage(SUMMARY_SYSTEM),
        HumanMessage(SUMMARY_USER.format(document=quote("document", document))),
    ]


def question_messages(
    document: str,
    summary: str | None,
    *,
    answerable: bool,
    topic: str | None,
    difficulty: str | None,
    feedback: list[str],
    avoid_overlap: bool = True,
) -> list[BaseMessage]:
    """Messages for the question (generator) step; ``summary`` None = from the raw document."""
    focus = ""
    if topic:
        focus += f"Focus on: {topic}.\n"
    if difficulty:
        focus += f"Target difficulty: {difficulty}.\n"
    user = QUESTION_USER.format(
        summary_block=(
            SUMMARY_BLOCK.format(summary=quote("summary", summary)) if summary is not None else ""
        ),
        document=quote("document", document),
        focus=focus,
        source=", working from the structured summary" if summary is not None else "",
        answer_rule=ANSWERABLE_RULE if answerable else UNANSWERABLE_RULE,
    )
    if feedback:
        user += FEEDBACK_BLOCK.format(reasons="\n".join(f"- {r}" for r in feedback))
    system = QUESTION_SYSTEM + (NO_OVERLAP_RULE if avoid_overlap else "")
    return [SystemMessage(system), HumanMessage(user)]


def distill_messages(document: str, question: str) -> list[BaseMessage]:
    """Messages for the answer-distillation step: the document and the question only."""
    return [
        SystemMessage(DISTILL_SYSTEM),
        HumanMessage(DISTILL_USER.format(document=quote("document", document), question=question)),
    ]
