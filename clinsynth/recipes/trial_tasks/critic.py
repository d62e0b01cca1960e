"""The verifying checks of each trial task, and the TrialPanorama-style export row.

Every check recomputes the answer key from the record (or from statsmodels) and compares;
none trusts what the generator or ``finalize`` put in the item.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from clinsynth.datasets.trials import TrialRecord, reveals_outcome
from clinsynth.evaluators.sample_size import PowerScenario, sample_size_check
from clinsynth.evaluators.task_key import (
    LETTERS,
    answer_position_check,
    distractor_similarity_check,
    number_leak_check,
    option_length_check,
    option_match_check,
    pattern_leak_check,
    separability_check,
    text_leak_check,
)
from clinsynth.recipes.trial_tasks.prompts import INSTRUCTIONS
from clinsynth.recipes.trial_tasks.schema import ITEM_MODELS, MCQ_TASKS
from clinsynth.recipes.trial_tasks.sources import answer_text, facts_of, render_inputs
from clinsynth.schemas import CheckResult, Task

if TYPE_CHECKING:
    from clinsynth.recipes.trial_tasks.recipe import TrialTasksRecipe


def _result(name: str, passed: bool, reason: str, on_fail: str = "reject") -> CheckResult:
    return CheckResult(
        name=name,
        score=float(passed),
        passed=passed,
        reason=reason,
        on_fail=on_fail,  # type: ignore[arg-type]
    )


def schema_check(item: dict[str, Any]) -> CheckResult:
    """The item validates against its task type's schema."""
    model = ITEM_MODELS.get(str(item.get("task_type")))
    if model is None:
        return _result("item_schema", False, f"unknown task_type {item.get('task_type')!r}")
    try:
        model.model_validate(item)
    except ValidationError as exc:
        return _result("item_schema", False, f"not a valid {model.__name__}: {exc.errors()[0]}")
    return _result("item_schema", True, f"valid {model.__name__}")


_ASKING = {
    "which", "what", "how", "will", "would", "is", "are", "does", "do", "can", "select",
    "choose", "identify", "estimate", "compute", "calculate", "predict", "given", "based",
    "write", "list", "describe", "determine", "for", "in", "a", "an", "the", "assuming",
}  # fmt: skip


def _question_check(item: dict[str, Any]) -> CheckResult:
    """The question is a question (or an instruction) of at least four words, not a title."""
    text = str(item.get("question", "")).strip()
    words = text.split()
    first = words[0].lower().strip(",:") if words else ""
    asks = "?" in text or (first in _ASKING and text.endswith((".", ":")))
    passed = len(words) >= 4 and asks
    reason = f"question of {len(words)} words" + (
        "" if passed else "; write a full question that ends with '?'"
    )
    return _result("question_present", passed, reason, on_fail="revise")


def task_checks(
    recipe: TrialTasksRecipe, task: Task, item: dict[str, Any], record: TrialRecord
) -> list[CheckResult]:
    """The checks of one item of ``recipe``'s task type, against its source ``record``."""
    opts = recipe.options
    kind = str(item.get("task_type"))
    checks = [schema_check(item), _question_check(item)]
    if not checks[0].passed:
        return checks
    shown = recipe.shown_texts(item)
    facts = facts_of(record)
    if kind in MCQ_TASKS:
        options: dict[str, str] = item["options"]
        truth = answer_text(kind, record)
        letters = [x for x in LETTERS if x in options]
        store = recipe.store(task.params["collection"])
        vectors = store.embedder.embed([options[x] for x in letters])
        checks += [
            option_match_check(options, item["answer"], truth),
            answer_position_check(item["answer"], task.params["answer"]),
            _result("four_options", len(letters) == 4, f"{len(letters)} options"),
            distractor_similarity_check(
                vectors,
                letters.index(item["answer"]),
                max_similarity=opts.max_option_similarity,
                min_similarity=opts.min_option_similarity,
            ),
            text_leak_check(truth, shown, n=opts.leak_ngram, max_share=opts.max_leak_share),
            option_length_check(options, item["answer"], min_ratio=opts.min_length_ratio),
            separability_check(
                mcq_view(item)["prompt"],
                options,
                item["answer"],
                max_margin=opts.max_lexical_margin,
            ),
        ]
    elif kind == "sample_size":
        truth_n = facts.enrollment or 0
        checks += [
            _result(
                "answer_from_record",
                item["answer"] == truth_n and truth_n > 0,
                f"answer {item['answer']}, recorded enrollment {truth_n}",
            ),
            number_leak_check(truth_n, shown),
        ]
    elif kind == "sample_size_scenario":
        scenario = PowerScenario.model_validate(item["scenario"])
        checks += [
            sample_size_check(int(item["answer"]), scenario, tolerance=opts.scenario_tolerance),
            number_leak_check(int(item["answer"]), {"question": shown["question"]}),
        ]
    elif kind == "completion":
        truth_label = facts.completion()
        labels = item["labels"]
        consistent = (labels["outcome"] == "terminated") or labels.get("terminate_type") is None
        checks += [
            _result(
                "label_from_record",
                labels["outcome"] == truth_label,
                f"outcome {labels['outcome']}, registry status says {truth_label}",
            ),
            _result("labels_consistent", consistent, "a completed trial has no termination type"),
            pattern_leak_check(shown, reveals_outcome),
        ]
    else:
        truth = answer_text(kind, record)
        checks += [
            _result(
                "answer_from_record",
                item["answer"] == truth and bool(truth),
                "the answer is the trial's own text"
                if item["answer"] == truth
                else "the answer is not the trial's own text",
            ),
            text_leak_check(truth, shown, n=opts.leak_ngram, max_share=opts.max_leak_share),
        ]
    return checks


def mcq_view(item: dict[str, Any]) -> dict[str, Any]:
    """What a solver sees of a multiple-choice item: the prompt, options and the key."""
    prompt = render_inputs(item.get("inputs") or {}) + "\n\n" + str(item.get("question", ""))
    return {"prompt": prompt, "options": item["options"], "answer": item["answer"]}


def input_text(item: dict[str, Any]) -> str:
    """The full input of an item as a model would be asked it (TrialPanorama joins the trial
    description, the question and the lettered options into one ``question``)."""
    parts = [render_inputs(item.get("inputs") or {})]
    for block in item.get("context") or []:
        if block.get("type") == "eligibility_criteria":
            parts.append(f"Eligibility criteria:\n{block.get('criteria', '')}")
        elif block.get("type") == "arm_design":
            arms = block.get("arms") or []
            lines = [
                f"- {a.get('title')} ({a.get('group_type')}): {a.get('description')}" for a in arms
            ]
            parts.append("Arms:\n" + "\n".join(lines))
    parts.append(str(item.get("question", "")))
    options = item.get("options") or {}
    if options:
        parts.append("\n".join(f"{k}. {v}" for k, v in sorted(options.items())))
    return "\n\n".join(p for p in parts if p)


def output_text(item: dict[str, Any]) -> str:
    """The expected output of an item as text: a letter, an integer, the completion labels as
    JSON, or the criteria."""
    kind = item.get("task_type")
    if kind == "completion":
        labels = item["labels"]
        return json.dumps(
            {"outcome": labels["outcome"], "termination_type": labels.get("terminate_type")}
        )
    return str(item["answer"])


def export_row(item: dict[str, Any]) -> dict[str, Any]:
    """The flat export row of an accepted item (same keys and types for every task type)."""
    kind = item.get("task_type")
    if kind not in INSTRUCTIONS:
        raise ValueError(f"not a trial-tasks item (task_type {kind!r})")
    return {
        "task_type": str(kind),
        "trial_id": str(item.get("trial_id", "")),
        "instruction": INSTRUCTIONS[str(kind)],
        "input": input_text(item),
        "output": output_text(item),
    }
