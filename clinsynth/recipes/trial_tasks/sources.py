"""What a task shows of a trial and what its answer is, read from the record (never from the
model): the answer texts of the design questions, the inputs each task shows, and which
trials can serve a task at all."""

from __future__ import annotations

import re

from clinsynth.datasets.trials import TrialFacts, TrialRecord

_WHAT = {
    "criteria_mcq": "eligibility criteria",
    "endpoint_mcq": "outcome measures (endpoints)",
    "arm_mcq": "arm design",
    "criteria_generation": "eligibility criteria",
}


def what(task_type: str) -> str:
    """What the answer of a design task is, in words."""
    return _WHAT.get(task_type, task_type)


def facts_of(record: TrialRecord) -> TrialFacts:
    return record.facts or TrialFacts()


def _lines(text: str) -> str:
    squashed = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in squashed if line)


def answer_text(task_type: str, record: TrialRecord) -> str:
    """The trial's own text that answers a design or text task ("" when it has none)."""
    if task_type in ("criteria_mcq", "criteria_generation"):
        return _lines(record.eligibility_criteria)
    if task_type == "endpoint_mcq":
        return "\n".join(m.strip() for m in record.outcome_measures if m.strip())
    if task_type == "arm_mcq":
        return facts_of(record).design_text()
    return ""


def mask_number(text: str, number: int | None) -> str:
    """``text`` with the stand-alone ``number`` replaced by ``[N]`` (the answer of a
    sample-size task must not be readable from the criteria it shows)."""
    if number is None:
        return text
    pattern = rf"(?<![\d.,])(?:{number:,}|{number})(?![\d])"
    return re.sub(pattern, "[N]", text)


def inputs_of(task_type: str, record: TrialRecord) -> dict[str, str]:
    """The trial fields a task shows, by name (empty fields left out)."""
    facts = facts_of(record)
    base = {
        "title": record.title,
        "phase": record.phase,
        "conditions": "; ".join(record.conditions),
        "interventions": "; ".join(record.interventions),
    }
    if task_type in ("criteria_mcq", "endpoint_mcq", "arm_mcq"):
        base["summary"] = record.summary
    if task_type == "arm_mcq":
        base.pop("interventions")  # the arms name them: a giveaway
    if task_type == "sample_size":
        base.update(facts.design_inputs())
        base["eligibility_criteria"] = mask_number(
            _lines(record.eligibility_criteria), facts.enrollment
        )
        base["summary"] = mask_number(record.summary, facts.enrollment)
    if task_type == "completion":
        base.update(facts.design_inputs())
    return {key: value for key, value in base.items() if value and value.strip()}


def context_of(record: TrialRecord) -> list[dict[str, object]]:
    """The typed context blocks of a completion task (TrialPanorama: eligibility criteria and
    arm design)."""
    facts = facts_of(record)
    blocks: list[dict[str, object]] = []
    if record.eligibility_criteria.strip():
        blocks.append(
            {"type": "eligibility_criteria", "criteria": _lines(record.eligibility_criteria)}
        )
    if facts.arms:
        blocks.append({"type": "arm_design", "arms": [a.model_dump() for a in facts.arms]})
    return blocks


def eligible(
    task_type: str, record: TrialRecord, *, min_chars: int = 20, max_chars: int = 1500
) -> bool:
    """Whether ``record`` can serve ``task_type`` (its answer exists and fits an option)."""
    facts = facts_of(record)
    if task_type in ("criteria_mcq", "endpoint_mcq", "arm_mcq", "criteria_generation"):
        text = answer_text(task_type, record)
        if not (min_chars <= len(text) <= max_chars):
            return False
        return task_type != "criteria_generation" or bool(record.title or record.conditions)
    if task_type == "sample_size":
        return bool(facts.enrollment) and bool(record.title or record.conditions)
    if task_type == "sample_size_scenario":
        return bool(record.conditions or record.title)
    if task_type == "completion":
        return facts.completion() is not None
    return False


def render_inputs(inputs: dict[str, str]) -> str:
    """Inputs as ``Name: value`` lines for prompts and exports."""
    return "\n".join(f"{k.replace('_', ' ').capitalize()}: {v}" for k, v in inputs.items())
