"""The recipe interface: what a method must supply to run on the generation core.

A recipe owns its item schema, its versioned prompts, its domain checks and its label policy.
The graph nodes are recipe-agnostic and call these hooks.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clinsynth.config import ConfigError, RunConfig, one_line
from clinsynth.schemas import (
    Attempt,
    CheckResult,
    CriticReport,
    LabelChange,
    SourceChunk,
    Task,
)


class RetrievalRequest(BaseModel):
    """What the retriever should fetch for a task."""

    query: str | None = None
    k: int = 4
    where: dict[str, Any] | None = None
    offset: int | None = Field(
        default=None, description="with no query: take the chunk at this position of the corpus"
    )
    sample_seed: int | None = Field(
        default=None,
        description="with no query: draw k chunks at random (this seed) among those matching where",
    )


class RecipeOptions(BaseModel):
    """Base class for a recipe's own settings (``recipe_options`` in the run config)."""

    model_config = ConfigDict(extra="forbid")

    near_duplicate_threshold: float = Field(0.92, gt=0, le=1)


class Relabel(BaseModel):
    """The label corrector's outcome for one item."""

    item: dict[str, Any] | None
    change: LabelChange | None = None
    reason: str | None = None


class Recipe(ABC):
    """A generation method plugged into the core graph."""

    name: ClassVar[str]
    prompt_version: ClassVar[str]
    item_model: ClassVar[type[BaseModel]]
    reasoning_model: ClassVar[type[BaseModel] | None] = None
    options_model: ClassVar[type[RecipeOptions]] = RecipeOptions
    default_temperature: ClassVar[float] = 0.7
    uses_store: ClassVar[bool] = False
    """Whether the constructor takes the run's vector store (``store=``), e.g. to index it."""
    refine_model: ClassVar[type[BaseModel] | None] = None
    """Schema of the optional refinement call made after a draft parses (None: no such step)."""
    refine_role: ClassVar[str] = "refiner"
    """LLM role of the refinement call; an unconfigured role falls back to the default model."""
    refine_temperature: ClassVar[float | None] = 0.0
    """Sampling temperature of the refinement call (None: the endpoint's default)."""
    instructions: ClassVar[tuple[str, ...]] = ()
    """The recipe's system prompts: an item must not repeat them (the injection check)."""
    export_task: ClassVar[str] = "other"
    """Hugging Face task category of :meth:`export_row`'s rows (the dataset card's
    ``task_categories``), e.g. ``question-answering`` or ``text-classification``."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        try:
            self.options = self.options_model.model_validate(options or {})
        except ValidationError as exc:
            raise ConfigError(f"bad recipe_options for '{self.name}': {one_line(exc)}") from exc

    @abstractmethod
    def make_task(self, index: int, run: RunConfig, rng: random.Random) -> Task:
        """The task for position ``index`` of a run; must depend only on its inputs."""

    def make_task_for(
        self,
        index: int,
        run: RunConfig,
        rng: random.Random,
        *,
        label: str | None = None,
        topic: str | None = None,
    ) -> Task:
        """The task at ``index`` asked to carry ``label`` / ``topic`` (per-label or per-topic
        quotas); default: :meth:`make_task` with the field replaced. Override when the label
        or topic shapes more of the task."""
        task = self.make_task(index, run, rng)
        update = {key: value for key, value in (("label", label), ("topic", topic)) if value}
        return task.model_copy(update=update)

    def label_of(self, task: Task, item: dict[str, Any]) -> str | None:
        """The label a finished item ends with (after label correction), for per-label quotas;
        default: the item's ``label`` field, else the task's label."""
        label = item.get("label")
        return label if isinstance(label, str) else task.label

    @abstractmethod
    def retrieval(self, task: Task, run: RunConfig) -> RetrievalRequest:
        """What to retrieve for the task."""

    def reasoner_messages(self, task: Task, chunks: list[SourceChunk]) -> list[BaseMessage] | None:
        """Messages for the reasoning step, or None when the recipe has none."""
        return None

    def reasoning_cache_key(self, task: Task, chunks: list[SourceChunk]) -> str | None:
        """A key to share reasoning between items (None: do not cache)."""
        return None

    @abstractmethod
    def generator_messages(
        self,
        task: Task,
        chunks: list[SourceChunk],
        reasoning: dict[str, Any] | None,
        feedback: list[str],
    ) -> list[BaseMessage]:
        """Messages that ask for one item; ``feedback`` holds the critic's reasons, if any."""

    def finalize(self, task: Task, draft: BaseModel, chunks: list[SourceChunk]) -> dict[str, Any]:
        """Turn the generator's structured output into the stored item."""
        return draft.model_dump(mode="json")

    def refine_messages(
        self, task: Task, chunks: list[SourceChunk], item: dict[str, Any]
    ) -> list[BaseMessage] | None:
        """Messages for a second structured call on a finalized draft (e.g. answer distillation
        against the document), or None to skip it; default: no refinement."""
        return None

    def apply_refinement(
        self, task: Task, chunks: list[SourceChunk], item: dict[str, Any], refined: BaseModel
    ) -> dict[str, Any]:
        """Merge the refinement call's parsed output into the item; default: unchanged."""
        return item

    @abstractmethod
    def checks(
        self, task: Task, item: dict[str, Any], chunks: list[SourceChunk]
    ) -> list[CheckResult]:
        """The recipe's own measurable checks of one candidate."""

    @abstractmethod
    def text_for_similarity(self, item: dict[str, Any]) -> str:
        """The text the near-duplicate check looks at."""

    def text_fields(self, item: dict[str, Any]) -> dict[str, str]:
        """Every text the model generated for ``item``, by field (list entries as ``name[i]``);
        default: the fields of :attr:`item_model`. The privacy and injection checks read these."""
        fields: dict[str, str] = {}
        for name in self.item_model.model_fields:
            value = item.get(name)
            if isinstance(value, str):
                fields[name] = value
            elif isinstance(value, list):
                fields.update(
                    {f"{name}[{i}]": v for i, v in enumerate(value) if isinstance(v, str)}
                )
        return fields

    def safety_checks(self, item: dict[str, Any]) -> list[CheckResult]:
        """The privacy and injection checks over :meth:`text_fields`, run on every recipe."""
        from clinsynth.evaluators.injection import injection_check
        from clinsynth.evaluators.privacy import privacy_check

        fields = self.text_fields(item)
        return [privacy_check(fields), injection_check(fields, self.instructions)]

    def redacted(self, item: dict[str, Any]) -> dict[str, Any]:
        """``item`` with PHI masked in every field :meth:`text_fields` reads."""
        from clinsynth.evaluators.privacy import redact_value

        names = {name.split("[", 1)[0] for name in self.text_fields(item)}
        return {k: redact_value(v) if k in names else v for k, v in item.items()}

    def redacted_attempt(self, attempt: Attempt) -> Attempt:
        """``attempt`` with PHI masked in its raw model output, its error and its item."""
        from clinsynth.evaluators.privacy import redact

        return attempt.model_copy(
            update={
                "raw_output": redact(attempt.raw_output) if attempt.raw_output else None,
                "error": redact(attempt.error) if attempt.error else None,
                "item": self.redacted(attempt.item) if attempt.item is not None else None,
            }
        )

    def load_models(self) -> None:
        """Load the models the checks use (a reader, a classifier); a run calls this once, in
        a worker thread, before its first item. Default: none to load."""
        return None

    def load_checks(self) -> None:
        """Build what :meth:`safety_checks` uses (the PHI recognizers, once per process); a run
        calls this with :meth:`load_models`, so that its first items do not wait seconds for
        it in the middle of their LLM calls."""
        from clinsynth.evaluators.phi_recognizers import recognizers

        recognizers()

    def relabel(self, task: Task, item: dict[str, Any], report: CriticReport) -> Relabel:
        """Apply the critic's relabel request; default: reject, as there is no label policy."""
        return Relabel(item=None, reason="recipe has no relabel policy")

    def export_row(self, item: dict[str, Any]) -> dict[str, Any]:
        """The training-ready row of one accepted item, as ``clinsynth export`` writes it.

        ``item`` is an accepted record's item with its passage restored. The row is flat;
        every item gives the same keys, each with one type (None where a value is missing),
        so Parquet and ``datasets`` infer one schema. Pure; raise ``ValueError`` for an item
        that cannot be converted. Default: the fields of :attr:`item_model`."""
        return {name: item.get(name) for name in self.item_model.model_fields}

    def correct_label(self, task: Task, item: dict[str, Any]) -> Relabel:
        """Check an accepted item's label (e.g. with a classifier); default: keep it."""
        return Relabel(item=item)
