"""Versioned prompts of the ``trial-tasks`` recipe. Change PROMPT_VERSION whenever a template
changes. The answer of every task comes from the trial record; the model writes the question,
distractors, a power scenario, or the category of a stop reason."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from clinsynth.recipes.passages import data_rule, quote

PROMPT_VERSION = "trial-tasks-v1"

_NO_LEAK = (
    " Never put the answer, or words that give it away, into the question. Never include an "
    "NCT number or copy sentences from other trials."
)

MCQ_SYSTEM = (
    "You write multiple-choice questions that test clinical trial design. You are given a "
    "trial and its correct answer (the trial's own text). Write a question asking which "
    "option is the {what} of this trial, and three distractors: {what} that would suit a "
    "different trial of a similar kind but are wrong for this one. Each distractor differs "
    "clearly from the correct answer and from the other distractors, has about the same "
    "length and style, and is realistic. Distractors use the trial's own condition and "
    "intervention names where the correct answer does, so that words shared with the trial "
    "description do not give the answer away." + _NO_LEAK
) + data_rule("trial", "answer")

QUESTION_SYSTEM = (
    "You write questions that test clinical trial design. You are given a trial and what its "
    "answer is about; write one clear question that asks for it, using only the trial details "
    "shown." + _NO_LEAK
) + data_rule("trial", "answer")

SCENARIO_SYSTEM = (
    "You are a trial statistician writing sample-size exercises. For the trial shown, write a "
    "realistic two-arm scenario: the outcome type (continuous or binary), the expected effect "
    "(difference of means and common standard deviation, or the control and treatment event "
    "rates), two-sided alpha, power, allocation ratio (arm 2 size / arm 1 size) and expected "
    "dropout. State every assumption in the question. Give the total number of participants "
    "to enrol (both arms, after inflating for dropout) as required_n: per-arm sizes from a "
    "two-sample t-test (continuous) or from Cohen's h with a normal approximation (binary), "
    "each rounded up, summed, divided by (1 - dropout) and rounded up."
) + data_rule("trial")

COMPLETION_SYSTEM = (
    "You write trial completion-assessment questions: from a trial's design and eligibility "
    "criteria, will it complete or terminate early? Write the question using only the design "
    "details shown; never say how the trial ended. Separately, classify the registry's stop "
    "reason (if one is given) as poor_enrollment, safety, efficacy (futility or lack of "
    "efficacy), business (funding, sponsor or strategic decision), other, or none when there "
    "is no stop reason."
) + data_rule("trial", "stop_reason")

MCQ_USER = (
    "{trial}\n\nThe correct {what} of this trial:\n{answer}\n\n"
    "Write the question and exactly three distractors."
)
QUESTION_USER = "{trial}\n\nThe answer is this trial's {what}.\n\nWrite the question."
SCENARIO_USER = "{trial}\n\nWrite the scenario question and its required_n."
COMPLETION_USER = "{trial}\n\n{stop_reason}\n\nWrite the question and the termination_type."

FEEDBACK_BLOCK = (
    "\n<feedback>\nYour previous answer was sent back by the reviewer for these reasons:\n"
    "{reasons}\nWrite a new one that fixes every one of them.\n</feedback>\n"
)

INSTRUCTIONS = {
    "criteria_mcq": "You are a clinical trial design expert. Choose the eligibility criteria "
    "that belong to the trial described. Answer with the letter of one option.",
    "endpoint_mcq": "You are a clinical trial design expert. Choose the outcome measures that "
    "belong to the trial described. Answer with the letter of one option.",
    "arm_mcq": "You are a clinical trial design expert. Choose the arm design that belongs to "
    "the trial described. Answer with the letter of one option.",
    "sample_size": "You are a clinical trial statistician. Estimate how many participants the "
    "trial described enrols. Answer with one integer.",
    "sample_size_scenario": "You are a clinical trial statistician. Compute the total sample "
    "size the scenario requires. Answer with one integer.",
    "completion": "You are a clinical trial expert. From the design and eligibility criteria, "
    "predict whether the trial completes or terminates, and the termination type. Answer as "
    'JSON: {"outcome": "completed"|"terminated", "termination_type": ...}.',
    "criteria_generation": "You are a clinical trial design expert. Write the eligibility "
    "criteria (Inclusion and Exclusion) for the trial described.",
}
"""Task instructions for the exported rows and the benchmark's solver prompts."""

SYSTEMS = (MCQ_SYSTEM, QUESTION_SYSTEM, SCENARIO_SYSTEM, COMPLETION_SYSTEM)


def _with_feedback(user: str, feedback: Sequence[str]) -> str:
    if feedback:
        user += FEEDBACK_BLOCK.format(reasons="\n".join(f"- {r}" for r in feedback))
    return user


def mcq_messages(what: str, trial: str, answer: str, feedback: Sequence[str]) -> list[BaseMessage]:
    """Messages asking for a question and three distractors around the given ``answer``."""
    user = MCQ_USER.format(trial=quote("trial", trial), what=what, answer=quote("answer", answer))
    return [
        SystemMessage(MCQ_SYSTEM.format(what=what)),
        HumanMessage(_with_feedback(user, feedback)),
    ]


def question_messages(what: str, trial: str, feedback: Sequence[str]) -> list[BaseMessage]:
    """Messages asking for a question whose answer (``what``) comes from the record."""
    user = QUESTION_USER.format(trial=quote("trial", trial), what=what)
    return [SystemMessage(QUESTION_SYSTEM), HumanMessage(_with_feedback(user, feedback))]


def scenario_messages(trial: str, feedback: Sequence[str]) -> list[BaseMessage]:
    """Messages asking for a power scenario and its required N."""
    user = SCENARIO_USER.format(trial=quote("trial", trial))
    return [SystemMessage(SCENARIO_SYSTEM), HumanMessage(_with_feedback(user, feedback))]


def completion_messages(
    trial: str, why_stop: str | None, feedback: Sequence[str]
) -> list[BaseMessage]:
    """Messages asking for a completion question and the category of the stop reason."""
    reason = quote("stop_reason", why_stop) if why_stop else "No stop reason is recorded."
    user = COMPLETION_USER.format(trial=quote("trial", trial), stop_reason=reason)
    return [SystemMessage(COMPLETION_SYSTEM), HumanMessage(_with_feedback(user, feedback))]
