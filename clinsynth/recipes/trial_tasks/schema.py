"""Item schemas of the ``trial-tasks`` recipe: what the model writes (drafts) and what is
stored (items), in TrialPanorama's sample shape.

TrialPanorama (github.com/RyanWangZf/TrialPanorama) stores design tasks as ``question`` /
``options`` (letter → text) / ``answer`` (a letter), sample-size estimation as ``question`` /
``answer`` (an integer, scored correct within ±20 %), and completion assessment as ``inputs``
(design characteristics) / ``context`` (typed blocks: eligibility criteria, arm design) /
``labels`` (``outcome``, ``terminate_type``). Our items keep those fields and add
``task_type``, ``trial_id`` and the verification fields (option sources, recomputed N).
Differences: the trial description of a design question is kept apart in ``inputs`` instead of
being pasted into ``question`` (the exporter joins them), and the text task answers with the
real trial's criteria instead of a chosen option.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from clinsynth.evaluators.sample_size import PowerScenario

TaskType = Literal[
    "criteria_mcq",
    "endpoint_mcq",
    "arm_mcq",
    "sample_size",
    "sample_size_scenario",
    "completion",
    "criteria_generation",
]
TASK_TYPES: tuple[str, ...] = TaskType.__args__  # type: ignore[attr-defined]
MCQ_TASKS = ("criteria_mcq", "endpoint_mcq", "arm_mcq")
Letter = Literal["A", "B", "C", "D"]
TerminationType = Literal["poor_enrollment", "safety", "efficacy", "business", "other", "none"]
TERMINATION_TYPES: tuple[str, ...] = TerminationType.__args__  # type: ignore[attr-defined]


# --- what the model writes -----------------------------------------------------------------


class QuestionDraft(BaseModel):
    """A question about the trial; the answer comes from the record, not from the model."""

    question: str = Field(description="the question, which must not contain the answer")


class McqDraft(QuestionDraft):
    """A multiple-choice question whose correct option is given; the model adds distractors."""

    distractors: list[str] = Field(
        min_length=3,
        max_length=3,
        description="three plausible options that are wrong for this trial",
    )


class ScenarioDraft(PowerScenario):
    """A sample-size scenario and the model's required total N (recomputed by the critic)."""

    question: str = Field(description="the scenario as a question stating every assumption")
    required_n: int = Field(gt=0, description="total participants to enrol, both arms")


class CompletionDraft(QuestionDraft):
    """A completion-assessment question; the model also reads the stop reason for its type."""

    termination_type: TerminationType = Field(
        description="the category of the stop reason, or 'none' when the trial completed"
    )


# --- what is stored ------------------------------------------------------------------------


class TaskItem(BaseModel):
    """Fields every trial-task item has."""

    task_type: TaskType
    trial_id: str
    inputs: dict[str, str] = Field(description="what the question shows of the trial")
    question: str


class McqItem(TaskItem):
    """Design multiple choice (criteria, endpoints, arms)."""

    options: dict[Letter, str]
    answer: Letter
    option_sources: dict[Letter, str] = Field(description="trial id of each option, or 'llm'")


class SampleSizeItem(TaskItem):
    """Sample size: the real enrollment, or a scenario's recomputed N."""

    answer: int
    tolerance: float = Field(0.2, description="relative error scored as correct")
    scenario: PowerScenario | None = None
    recomputed_n: int | None = None


class CompletionLabels(BaseModel):
    outcome: Literal["completed", "terminated"]
    terminate_type: TerminationType | None = None


class CompletionItem(TaskItem):
    """Completion assessment: design inputs and criteria in, the record's outcome out."""

    context: list[dict[str, Any]] = Field(default_factory=list)
    labels: CompletionLabels
    label_check: dict[str, Any] | None = None


class TextItem(TaskItem):
    """Criteria generation: the trial's title, conditions and interventions in, its real
    eligibility criteria out."""

    answer: str


ITEM_MODELS: dict[str, type[TaskItem]] = {
    "criteria_mcq": McqItem,
    "endpoint_mcq": McqItem,
    "arm_mcq": McqItem,
    "sample_size": SampleSizeItem,
    "sample_size_scenario": SampleSizeItem,
    "completion": CompletionItem,
    "criteria_generation": TextItem,
}


def draft_model(task_type: str, distractors: str) -> type[BaseModel]:
    """The structured output asked of the model for ``task_type``."""
    if task_type in MCQ_TASKS:
        return McqDraft if distractors == "llm" else QuestionDraft
    special: dict[str, type[BaseModel]] = {
        "sample_size_scenario": ScenarioDraft,
        "completion": CompletionDraft,
    }
    return special.get(task_type, QuestionDraft)
