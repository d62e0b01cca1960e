"""LLM adjudication of flagged labels: the model's verdict is recorded on each decision."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clinsynth.tools.labels.models import Adjudication, LabelDecision

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

    from clinsynth.llm import StructuredLLM

ADJUDICATION_PROMPT_VERSION = "adjudicate-v1"

ADJUDICATION_SYSTEM = (
    "You check the labels of a clinical text-classification data set. A classifier disagrees "
    "with the label given to the text below. Read the text, weigh both candidates and any "
    "other listed label, and answer with the single label that fits best, spelled exactly as "
    "listed. Answer 'uncertain' when the text does not allow a choice."
)

ADJUDICATION_USER = (
    "Labels:\n{labels}\n\n<text>\n{text}\n</text>\n\n"
    "Given label: {given}\nClassifier's suggestion: {suggested} (probability {p:.2f})\n"
    "Which label is correct?"
)


def adjudication_messages(
    text: str,
    decision: LabelDecision,
    label_descriptions: dict[str, str] | None = None,
) -> list[BaseMessage]:
    """Messages asking an LLM to settle one flagged decision."""
    from langchain_core.messages import HumanMessage, SystemMessage

    descriptions = label_descriptions or {}
    listing = "\n".join(
        f"- {lab}" + (f": {descriptions[lab]}" if lab in descriptions else "")
        for lab in decision.probabilities
    )
    user = ADJUDICATION_USER.format(
        labels=listing,
        text=text,
        given=decision.old_label,
        suggested=decision.suggested_label,
        p=decision.probabilities.get(decision.suggested_label, 0.0),
    )
    return [SystemMessage(ADJUDICATION_SYSTEM), HumanMessage(user)]


def _apply_adjudication(decision: LabelDecision, verdict: Adjudication) -> LabelDecision:
    """The LLM's label wins when it names a known label; 'uncertain' keeps the policy's."""
    label = verdict.label.strip()
    update: dict[str, Any] = {"adjudication": verdict}
    if label in decision.probabilities:
        kept = label == decision.old_label
        if decision.action == "drop" and not kept:
            update["reason"] = f"{decision.reason}; LLM adjudication: {label}"
        elif kept:
            update.update(
                new_label=decision.old_label,
                action="keep",
                reason=f"{decision.reason}; LLM adjudication kept the given label",
            )
        else:
            update.update(
                new_label=label,
                action="relabel",
                reason=f"{decision.reason}; LLM adjudication chose {label}",
            )
    else:
        update["reason"] = f"{decision.reason}; LLM adjudication uncertain"
    return decision.model_copy(update=update)


async def adjudicate(
    texts: Sequence[str],
    decisions: Sequence[LabelDecision],
    llm: StructuredLLM | BaseChatModel,
    *,
    label_descriptions: dict[str, str] | None = None,
    concurrency: int = 4,
) -> list[LabelDecision]:
    """Ask ``llm`` about every flagged decision; the answers are recorded on the decisions.

    A known label from the LLM overrides the policy (keep the given label, or relabel; a
    dropped item stays dropped); 'uncertain', an unparsable reply or a request the endpoint
    refuses leaves the decision as it was, with the reply (or refusal) attached. A plain chat
    model is wrapped in a :class:`StructuredLLM`.
    """
    from clinsynth.llm import LLMRequestError, StructuredLLM

    structured = llm if isinstance(llm, StructuredLLM) else StructuredLLM(llm, name="adjudicator")
    gate = asyncio.Semaphore(concurrency)

    async def one(decision: LabelDecision) -> LabelDecision:
        if not decision.flagged:
            return decision
        messages = adjudication_messages(texts[decision.index], decision, label_descriptions)
        try:
            async with gate:
                result = await structured.ainvoke(messages, Adjudication, temperature=0.0)
        except LLMRequestError as exc:  # this text only; the others are still adjudicated
            verdict = Adjudication(rationale=f"no reply: {exc}", label="uncertain")
            return _apply_adjudication(decision, verdict)
        if result.parsed is None:
            verdict = Adjudication(rationale=f"no usable reply: {result.error}", label="uncertain")
        else:
            verdict = result.parsed
        return _apply_adjudication(decision, verdict)

    return list(await asyncio.gather(*(one(d) for d in decisions)))
