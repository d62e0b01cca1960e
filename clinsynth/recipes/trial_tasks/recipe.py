"""Recipe ``trial-tasks``: TrialPanorama-style trial design and assessment tasks whose answer
key the critic verifies.

Method (TrialPanorama, arXiv 2505.16097): turn trial records into tasks for LLMs that help
design and assess trials. Here the answer always comes from the record (the trial's own
criteria, endpoints or arms; its enrollment; its registry status) or is recomputed (a power
scenario's N with statsmodels); the model writes only questions, distractors, scenarios and
the category of a stop reason, and the critic checks all of it. Sources are training-split
trials of the store; evaluation-split trials never feed generation.
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field

from clinsynth.config import ConfigError, RunConfig
from clinsynth.datasets.trials import TrialRecord, record_of
from clinsynth.evaluators.memorisation import copied_ids_check, memorisation_check
from clinsynth.evaluators.sample_size import (
    PowerScenario,
    ScenarioError,
    required_sample_size,
)
from clinsynth.evaluators.task_key import (
    LETTERS,
)
from clinsynth.recipes.base import Recipe, RecipeOptions, Relabel, RetrievalRequest
from clinsynth.recipes.trial_store import TrialStoreAccess
from clinsynth.recipes.trial_tasks import prompts
from clinsynth.recipes.trial_tasks.labels import check_termination
from clinsynth.recipes.trial_tasks.pool import TaskPool, answer_letter
from clinsynth.recipes.trial_tasks.schema import (
    MCQ_TASKS,
    CompletionDraft,
    CompletionItem,
    McqDraft,
    McqItem,
    QuestionDraft,
    SampleSizeItem,
    ScenarioDraft,
    TaskType,
    TextItem,
    draft_model,
)
from clinsynth.recipes.trial_tasks.sources import (
    answer_text,
    context_of,
    facts_of,
    inputs_of,
    render_inputs,
    what,
)
from clinsynth.schemas import CheckResult, SourceChunk, Task

if TYPE_CHECKING:
    from clinsynth.memory.store import VectorStore


class TrialTasksOptions(RecipeOptions):
    """Settings of the ``trial-tasks`` recipe (``--option key=value``)."""

    task: TaskType = Field("criteria_mcq", description="which task type this run makes")
    distractors: Literal["llm", "real"] = Field(
        "llm", description="design MCQ distractors: written by the model, or other real trials'"
    )
    store: str | None = Field(None, description="trial store directory [CLINSYNTH_STORE]")
    min_option_chars: int = Field(20, ge=1, description="shortest answer text a trial may have")
    max_option_chars: int = Field(1500, ge=20, description="longest answer text a trial may have")
    max_option_similarity: float = Field(0.9, gt=0, le=1, description="cosine, any two options")
    min_option_similarity: float = Field(
        -1.0,
        ge=-1,
        lt=1,
        description="cosine, each distractor to the correct option (-1: no lower bound)",
    )
    max_lexical_margin: float = Field(
        0.1,
        ge=0,
        le=1,
        description="correct option's word overlap with the trial over the "
        "best distractor's (lexical giveaway)",
    )
    min_length_ratio: float = Field(
        0.33, gt=0, le=1, description="shortest distractor / correct option length (and inverse)"
    )
    max_leak_share: float = Field(0.3, ge=0, le=1, description="answer n-grams a text may show")
    leak_ngram: int = Field(6, ge=2)
    scenario_tolerance: float = Field(
        0.05, ge=0, le=1, description="relative error of a scenario's N against the recomputed N"
    )
    score_tolerance: float = Field(0.2, ge=0, le=1, description="sample-size scoring tolerance")
    nearest_real: int = Field(3, ge=0, description="nearest real trials checked for copying")
    max_copied_run: int = Field(25, ge=2)
    max_ngram_overlap: float = Field(0.3, ge=0, le=1)
    ngram_n: int = Field(8, ge=2)
    on_disagreement: Literal["relabel", "reject"] = "relabel"


class TrialTasksRecipe(TrialStoreAccess, Recipe):
    """Trial design multiple choice, sample size, completion and criteria-generation tasks."""

    name: ClassVar[str] = "trial-tasks"
    prompt_version: ClassVar[str] = prompts.PROMPT_VERSION
    instructions: ClassVar[tuple[str, ...]] = prompts.SYSTEMS
    item_model: ClassVar[type[BaseModel]] = McqDraft
    options_model: ClassVar[type[RecipeOptions]] = TrialTasksOptions
    default_temperature: ClassVar[float] = 0.7
    uses_store: ClassVar[bool] = True
    export_task: ClassVar[str] = "text-generation"
    options: TrialTasksOptions

    def __init__(
        self, options: dict[str, Any] | None = None, *, store: VectorStore | None = None
    ) -> None:
        super().__init__(options)
        # the structured output depends on the run's task type
        self.item_model = draft_model(self.options.task, self.options.distractors)  # type: ignore[misc]
        self._init_store_access(store)
        self._pools: dict[str, TaskPool] = {}

    @property
    def task_type(self) -> str:
        return self.options.task

    # --- corpus ---------------------------------------------------------------------------

    def pool(self, collection: str) -> TaskPool:
        """The training trials that can serve this run's task type (read once)."""
        store = self.store(collection)
        with self._lock:
            if collection not in self._pools:
                self._pools[collection] = TaskPool.from_store(
                    store,
                    self.task_type,
                    min_chars=self.options.min_option_chars,
                    max_chars=self.options.max_option_chars,
                )
            pool = self._pools[collection]
        if not pool.ids:
            raise ConfigError(
                f"no training-split trial in collection '{collection}' at {store.path} can "
                f"serve task '{self.task_type}' — ingest trials with the fields it needs "
                "(`clinsynth ingest-trials`; CT.gov JSON has endpoints and arms, TrialBench "
                "enrollment and design, HINT status) or choose another --option task="
            )
        return pool

    # --- tasks ----------------------------------------------------------------------------

    def _task(self, index: int, run: RunConfig, rng: random.Random, label: str | None) -> Task:
        pool = self.pool(run.collection)
        order = pool.order(run.seed, label)
        if not order:
            raise ConfigError(f"no trial for task '{self.task_type}' with label {label!r}")
        source = order[index % len(order)]
        others: list[str] = []
        if self.task_type in MCQ_TASKS and self.options.distractors == "real":
            others = pool.distractor_ids(source, random.Random(f"{run.seed}:others:{index}"))
            if len(others) < 3:
                raise ConfigError(f"fewer than 3 trials with other {what(self.task_type)}")
        return Task(
            id=f"{self.name}-{run.seed}-{index:06d}",
            index=index,
            recipe=self.name,
            label=pool.labels.get(source) if self.task_type == "completion" else None,
            params={
                "task_type": self.task_type,
                "collection": run.collection,
                "source_id": source,
                "answer": answer_letter(run.seed, index),
                "other_ids": others,
                "seed": rng.randrange(2**32),
            },
        )

    def make_task(self, index: int, run: RunConfig, rng: random.Random) -> Task:
        return self._task(index, run, rng, None)

    def make_task_for(
        self,
        index: int,
        run: RunConfig,
        rng: random.Random,
        *,
        label: str | None = None,
        topic: str | None = None,
    ) -> Task:
        return self._task(index, run, rng, label if self.task_type == "completion" else None)

    def retrieval(self, task: Task, run: RunConfig) -> RetrievalRequest:
        """The source trial and the trials lending distractors, training split only."""
        ids = [task.params["source_id"], *task.params.get("other_ids", [])]
        return RetrievalRequest(
            k=len(ids),
            where={"trial_id": {"$in": ids}, "split": "train"},
            sample_seed=task.params["seed"],
        )

    def _records(self, task: Task, chunks: list[SourceChunk]) -> tuple[TrialRecord, list[str]]:
        by_id = {c.id: c for c in chunks}
        source = by_id.get(task.params["source_id"])
        if source is None:
            raise ConfigError(f"source trial {task.params['source_id']} is not in the store")
        others = [
            answer_text(self.task_type, record_of(by_id[i]))
            for i in task.params.get("other_ids", [])
            if i in by_id
        ]
        return record_of(source), others

    # --- generation -----------------------------------------------------------------------

    def generator_messages(
        self,
        task: Task,
        chunks: list[SourceChunk],
        reasoning: dict[str, Any] | None,
        feedback: list[str],
    ) -> list[BaseMessage]:
        record, _ = self._records(task, chunks)
        trial = render_inputs(inputs_of(self.task_type, record))
        kind = self.task_type
        if kind in MCQ_TASKS and self.options.distractors == "llm":
            return prompts.mcq_messages(what(kind), trial, answer_text(kind, record), feedback)
        if kind == "sample_size_scenario":
            return prompts.scenario_messages(trial, feedback)
        if kind == "completion":
            facts = facts_of(record)
            stop = facts.why_stop if facts.completion() == "terminated" else None
            return prompts.completion_messages(trial, stop, feedback)
        topic = "number of participants enrolled" if kind == "sample_size" else what(kind)
        return prompts.question_messages(topic, trial, feedback)

    def finalize(self, task: Task, draft: BaseModel, chunks: list[SourceChunk]) -> dict[str, Any]:
        record, other_texts = self._records(task, chunks)
        kind = self.task_type
        assert isinstance(draft, QuestionDraft | ScenarioDraft)
        base: dict[str, Any] = {
            "task_type": kind,
            "trial_id": record.id,
            "inputs": inputs_of(kind, record),
            "question": draft.question,
        }
        facts = facts_of(record)
        if kind in MCQ_TASKS:
            letter = task.params["answer"]
            if isinstance(draft, McqDraft):
                wrong, sources = list(draft.distractors), ["llm"] * 3
            else:
                wrong, sources = other_texts, list(task.params["other_ids"])
            options, origin = {letter: answer_text(kind, record)}, {letter: record.id}
            for other, text, src in zip(
                [x for x in LETTERS if x != letter], wrong, sources, strict=False
            ):
                options[other], origin[other] = text, src
            ordered = {x: options[x] for x in LETTERS if x in options}
            mcq = {**base, "options": ordered, "answer": letter, "option_sources": origin}
            return McqItem.model_validate(mcq).model_dump(mode="json")
        if kind == "sample_size":
            return SampleSizeItem(
                **base, answer=facts.enrollment or 0, tolerance=self.options.score_tolerance
            ).model_dump(mode="json")
        if kind == "sample_size_scenario":
            assert isinstance(draft, ScenarioDraft)
            scenario = PowerScenario.model_validate(draft.model_dump(exclude={"question"}))
            try:
                recomputed: int | None = required_sample_size(scenario)
            except (ScenarioError, ValueError, ArithmeticError):
                recomputed = None
            return SampleSizeItem(
                **base,
                answer=draft.required_n,
                tolerance=self.options.score_tolerance,
                scenario=scenario,
                recomputed_n=recomputed,
            ).model_dump(mode="json")
        if kind == "completion":
            assert isinstance(draft, CompletionDraft)
            outcome = facts.completion() or "completed"
            kind_of_stop = draft.termination_type if outcome == "terminated" else None
            labels = {"outcome": outcome, "terminate_type": kind_of_stop}
            done = {**base, "context": context_of(record), "labels": labels}
            return CompletionItem.model_validate(done).model_dump(mode="json")
        return TextItem(**base, answer=answer_text(kind, record)).model_dump(mode="json")

    # --- critic ---------------------------------------------------------------------------

    def shown_texts(self, item: dict[str, Any]) -> dict[str, str]:
        """Everything a solver of the item reads besides the options: question and inputs
        (and, for completion, the context blocks)."""
        texts = {"question": str(item.get("question", ""))}
        texts.update({f"inputs.{k}": str(v) for k, v in (item.get("inputs") or {}).items()})
        for i, block in enumerate(item.get("context") or []):
            texts[f"context[{i}]"] = json.dumps(block, ensure_ascii=False)
        return texts

    def checks(
        self, task: Task, item: dict[str, Any], chunks: list[SourceChunk]
    ) -> list[CheckResult]:
        from clinsynth.recipes.trial_tasks.critic import task_checks

        record, _ = self._records(task, chunks)
        results = task_checks(self, task, item, record)
        opts = self.options
        written = "\n".join(self.text_fields(item).values())
        store = self.store(task.params["collection"])
        references = {c.id: c.text for c in chunks if c.id != record.id}
        if opts.nearest_real and written.strip():
            near = store.query(written, k=opts.nearest_real + 1, where={"split": "train"})
            references.update({c.id: c.text for c in near if c.id != record.id})
        results.append(
            memorisation_check(
                written,
                references,
                max_run=opts.max_copied_run,
                max_ngram_overlap=opts.max_ngram_overlap,
                n=opts.ngram_n,
            )
        )
        results.append(copied_ids_check(written, set(references) | {record.id}))
        return results

    def text_fields(self, item: dict[str, Any]) -> dict[str, str]:
        """What the model wrote: the question and its own distractors."""
        fields = {"question": str(item.get("question", ""))}
        sources = item.get("option_sources") or {}
        for letter, text in (item.get("options") or {}).items():
            if sources.get(letter) == "llm":
                fields[f"options.{letter}"] = str(text)
        return fields

    def text_for_similarity(self, item: dict[str, Any]) -> str:
        answer = item.get("answer")
        if isinstance(answer, str) and answer in (item.get("options") or {}):
            answer = item["options"][answer]
        inputs = render_inputs(item.get("inputs") or {})
        return f"{inputs}\n{item.get('question', '')}\n{answer}"

    # --- label correction -----------------------------------------------------------------

    def correct_label(self, task: Task, item: dict[str, Any]) -> Relabel:
        """Completion: check the model's termination type against keyword rules on the
        recorded stop reason; relabel (or reject) on disagreement, with the audit entry."""
        if self.task_type != "completion":
            return Relabel(item=item)
        chunks = self.store(task.params["collection"]).get([str(item["trial_id"])])
        why_stop = facts_of(record_of(chunks[0])).why_stop if chunks else ""
        new, change, why = check_termination(
            item, why_stop, on_disagreement=self.options.on_disagreement
        )
        return Relabel(item=new, change=change, reason=why)

    # --- export ---------------------------------------------------------------------------

    def export_row(self, item: dict[str, Any]) -> dict[str, Any]:
        """One TrialPanorama-style row: task, instruction, the full input, the output."""
        from clinsynth.recipes.trial_tasks.critic import export_row

        return export_row(item)
