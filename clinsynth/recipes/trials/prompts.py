"""Versioned prompts of the ``trials`` recipe. Change PROMPT_VERSION whenever a template changes."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from clinsynth.recipes.passages import data_rule, quote

PROMPT_VERSION = "trials-v2"

OUTCOME_WORDS = {
    "success": ("succeed", "succeeded", "will succeed"),
    "failure": ("fail", "failed", "will fail"),
}
"""label → (verb, past, future) as the prompts use them."""

REASONS_SYSTEM = (
    "You are a clinical trial methodologist. You explain, from experience with trial design, "
    "why trials of a given intervention tend to reach or miss their goals. Give concrete, "
    "distinct reasons (population, dosing, endpoints, comparator, safety, recruitment, "
    "design). Each reason is one or two sentences."
) + data_rule("example")

REASONS_USER = (
    "Intervention: {intervention}\n"
    "Below are real trials of this intervention that {outcome_past}.\n\n"
    "{examples}\n\n"
    "List exactly five reasons why trials of {intervention} {outcome_verb}.{diversity}"
)

DIVERSITY_BLOCK = (
    "\nThis is round {round} of reasons for this intervention: earlier rounds already gave "
    "the most common reasons. Give five different ones, this time about {focus}."
)

DIVERSITY_FOCI = (
    "the studied population and eligibility",
    "dose, schedule and combination partners",
    "endpoints, comparators and statistical design",
    "safety, tolerability and drop-out",
    "recruitment, sites and trial operations",
)

GENERATOR_SYSTEM = (
    "You write realistic clinical trial registry records for training outcome-prediction "
    "models. A record is new: never copy sentences, criteria blocks or identifiers from the "
    "examples, and never include an NCT number. Do not state how the trial ended (no status, "
    "no termination, no results)."
) + data_rule("example", "reasons")

GENERATOR_USER = (
    "Write one new {phase_hint}clinical trial of the intervention '{intervention}' that "
    "{outcome_future}.\n\n"
    "Why trials of {intervention} {outcome_verb}:\n{reasons}\n\n"
    "Real trials of {intervention} that {outcome_past}, for style and content only:\n\n"
    "{examples}\n\n"
    "Give the title, phase, conditions, interventions (include '{intervention}'), "
    "eligibility criteria with an 'Inclusion Criteria:' and an 'Exclusion Criteria:' block, "
    "outcome measures and a brief summary. Let the design reflect the reasons above."
)

FEEDBACK_BLOCK = (
    "\n<feedback>\nYour previous record was sent back by the reviewer for these reasons:\n"
    "{reasons}\nWrite a new record that fixes every one of them.\n</feedback>\n"
)


def _examples(texts: Sequence[str]) -> str:
    return "\n\n".join(quote("example", text, n=i) for i, text in enumerate(texts, start=1))


def reasons_messages(
    intervention: str, label: str, examples: Sequence[str], round_: int = 0
) -> list[BaseMessage]:
    """Messages for the reasoning step: five reasons why such trials succeed or fail.
    ``round_`` > 0 (reasons regenerated) adds a diversity instruction with a new focus."""
    verb, past, _ = OUTCOME_WORDS[label]
    diversity = ""
    if round_ > 0:
        focus = DIVERSITY_FOCI[(round_ - 1) % len(DIVERSITY_FOCI)]
        diversity = DIVERSITY_BLOCK.format(round=round_ + 1, focus=focus)
    user = REASONS_USER.format(
        intervention=intervention,
        outcome_past=past,
        outcome_verb=verb,
        examples=_examples(examples),
        diversity=diversity,
    )
    return [SystemMessage(REASONS_SYSTEM), HumanMessage(user)]


def trial_messages(
    intervention: str,
    label: str,
    examples: Sequence[str],
    reasons: Sequence[str],
    feedback: Sequence[str],
    phase: str | None = None,
) -> list[BaseMessage]:
    """Messages for the generator: one new trial of ``intervention`` with outcome ``label``."""
    verb, past, future = OUTCOME_WORDS[label]
    listed = "\n".join(f"{i}. {r}" for i, r in enumerate(reasons, start=1)) or "(none given)"
    user = GENERATOR_USER.format(
        phase_hint=f"{phase} " if phase else "",
        intervention=intervention,
        outcome_future=future,
        outcome_verb=verb,
        outcome_past=past,
        reasons=quote("reasons", listed),
        examples=_examples(examples),
    )
    if feedback:
        user += FEEDBACK_BLOCK.format(reasons="\n".join(f"- {r}" for r in feedback))
    return [SystemMessage(GENERATOR_SYSTEM), HumanMessage(user)]
