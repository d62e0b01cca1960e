"""Recipe ``trials``: retrieval-reasoning synthetic clinical trials with outcome labels.

Method (arXiv 2410.12476): take interventions with enough successful and failed real trials,
ask for five reasons why trials of the intervention succeed / fail, then write a new trial of
the target outcome from K=3 real examples at temperature 1. Unlike the paper's public code,
examples are drawn at random per item (seeded per run) from the training split only, and the
same leak scrubber cleans real and synthetic records. A classifier trained on real trials may
check each synthetic label.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field

from clinsynth.config import ConfigError, RunConfig
from clinsynth.datasets.trials import (
    LabelCheck,
    TrialContent,
    TrialIndex,
    TrialRecord,
    balanced_interventions,
    label_of,
    scrub_leaks,
    trial_text,
)
from clinsynth.evaluators.memorisation import copied_ids_check, memorisation_check
from clinsynth.evaluators.realism import realism_check
from clinsynth.evaluators.trial_form import completeness_check, intervention_check
from clinsynth.memory.cache import cache_key
from clinsynth.recipes.base import Recipe, RecipeOptions, Relabel, RetrievalRequest
from clinsynth.recipes.trial_store import TrialStoreAccess
from clinsynth.recipes.trials import prompts
from clinsynth.schemas import CheckResult, LabelChange, SourceChunk, Task

if TYPE_CHECKING:
    from clinsynth.finetune import Classifier
    from clinsynth.memory.store import VectorStore


class TrialReasons(BaseModel):
    """The reasoner's structured output."""

    reasons: list[str] = Field(description="exactly five distinct reasons, one or two sentences")


class TrialsOptions(RecipeOptions):
    """Settings of the ``trials`` recipe (``--option key=value``)."""

    k_examples: int = Field(3, ge=1, le=10, description="real example trials per item")
    min_success: int = Field(3, ge=1, description="balance filter: successful trials needed")
    min_failure: int = Field(3, ge=1, description="balance filter: failed trials needed")
    exclude_interventions: list[str] = Field(default_factory=lambda: ["placebo"])
    interventions: list[str] | None = Field(None, description="only these interventions")
    store: str | None = Field(None, description="trial store directory [CLINSYNTH_STORE]")
    reasons_refresh_every: int = Field(
        0, ge=0, description="items per (intervention, label) before new reasons; 0: never"
    )
    nearest_real: int = Field(3, ge=0, description="nearest real trials checked for copying")
    max_copied_run: int = Field(25, ge=2, description="longest verbatim token run allowed")
    max_ngram_overlap: float = Field(0.3, ge=0, le=1)
    ngram_n: int = Field(8, ge=2)
    realism_neighbours: int = Field(5, ge=1)
    realism_min_distance: float = Field(0.02, ge=0, le=2)
    realism_max_distance: float = Field(0.6, ge=0, le=2)
    classifier_path: str | None = Field(None, description="classifier dir from `clinsynth train`")
    disagreement_threshold: float = Field(
        0.2, ge=0, le=0.5, description="P(target label) below this is a strong disagreement"
    )
    on_disagreement: Literal["relabel", "reject"] = "relabel"


class TrialsRecipe(TrialStoreAccess, Recipe):
    """Synthetic trial records of a target outcome for a balanced intervention."""

    name: ClassVar[str] = "trials"
    prompt_version: ClassVar[str] = prompts.PROMPT_VERSION
    instructions: ClassVar[tuple[str, ...]] = (prompts.REASONS_SYSTEM, prompts.GENERATOR_SYSTEM)
    item_model: ClassVar[type[BaseModel]] = TrialContent
    reasoning_model: ClassVar[type[BaseModel] | None] = TrialReasons
    options_model: ClassVar[type[RecipeOptions]] = TrialsOptions
    default_temperature: ClassVar[float] = 1.0
    uses_store: ClassVar[bool] = True
    export_task: ClassVar[str] = "text-classification"
    options: TrialsOptions

    def __init__(
        self,
        options: dict[str, Any] | None = None,
        *,
        store: VectorStore | None = None,
        classifier: Classifier | None = None,
    ) -> None:
        super().__init__(options)
        self._init_store_access(store)
        self._indexes: dict[str, TrialIndex] = {}
        self._classifier = classifier
        self._predict_lock = threading.Lock()

    # --- corpus ---------------------------------------------------------------------

    def index(self, collection: str) -> TrialIndex:
        """Which training trials name which intervention (built once per collection)."""
        store = self.store(collection)
        if store.count() == 0:
            raise ConfigError(
                f"trial collection '{collection}' at {store.path} is empty — run "
                "`clinsynth ingest-trials` first; the trials recipe reads the store named by "
                "CLINSYNTH_STORE or --option store=DIR"
            )
        with self._lock:
            if collection not in self._indexes:
                self._indexes[collection] = TrialIndex.from_store(store)
            return self._indexes[collection]

    def pairs(self, run: RunConfig) -> list[tuple[str, str]]:
        """(intervention, label) pairs that pass the balance filter, in a seeded order."""
        opts = self.options
        balanced = balanced_interventions(
            self.index(run.collection).rows,
            min_success=opts.min_success,
            min_failure=opts.min_failure,
            exclude=opts.exclude_interventions,
        )
        names = sorted(balanced)
        wanted = opts.interventions or ([run.topic] if run.topic else None)
        if wanted:
            keep = {" ".join(w.lower().split()) for w in wanted}
            names = [n for n in names if n in keep]
        if not names:
            raise ConfigError(
                f"no intervention in collection '{run.collection}' has ≥{opts.min_success} "
                f"successful and ≥{opts.min_failure} failed training trials"
                + (f" among {sorted(wanted)}" if wanted else "")
                + " — ingest more trials (`clinsynth ingest-trials`) or lower the thresholds"
            )
        pairs = [(n, lab) for n in names for lab in ("success", "failure")]
        random.Random(f"{run.seed}:pairs").shuffle(pairs)
        return pairs

    # --- tasks ------------------------------------------------------------------------

    def _task(
        self, index: int, run: RunConfig, rng: random.Random, pairs: list[tuple[str, str]]
    ) -> Task:
        intervention, label = pairs[index % len(pairs)]
        every = self.options.reasons_refresh_every
        round_ = (index // len(pairs)) // every if every else 0
        return Task(
            id=f"{self.name}-{run.seed}-{index:06d}",
            index=index,
            recipe=self.name,
            topic=intervention,
            label=label,
            params={
                "intervention": intervention,
                "collection": run.collection,
                "sample_seed": rng.randrange(2**32),
                "reason_round": round_,
            },
        )

    def make_task(self, index: int, run: RunConfig, rng: random.Random) -> Task:
        return self._task(index, run, rng, self.pairs(run))

    def make_task_for(
        self,
        index: int,
        run: RunConfig,
        rng: random.Random,
        *,
        label: str | None = None,
        topic: str | None = None,
    ) -> Task:
        pairs = [
            (n, lab)
            for n, lab in self.pairs(run)
            if (label is None or lab == label) and (topic is None or n == topic)
        ]
        if not pairs:
            raise ConfigError(f"no balanced intervention for label={label!r} topic={topic!r}")
        return self._task(index, run, rng, pairs)

    def retrieval(self, task: Task, run: RunConfig) -> RetrievalRequest:
        """K random training trials of the intervention with the target outcome."""
        ids = self.index(task.params["collection"]).ids(task.params["intervention"], task.label)
        return RetrievalRequest(
            k=self.options.k_examples,
            where={"trial_id": {"$in": ids}, "split": "train", "label": task.label},
            sample_seed=task.params["sample_seed"],
        )

    # --- reasoning and generation -------------------------------------------------------

    def reasoner_messages(self, task: Task, chunks: list[SourceChunk]) -> list[BaseMessage]:
        return prompts.reasons_messages(
            task.params["intervention"],
            str(task.label),
            [c.text for c in chunks],
            round_=int(task.params.get("reason_round", 0)),
        )

    def reasoning_cache_key(self, task: Task, chunks: list[SourceChunk]) -> str:
        """One set of reasons per (intervention, label, round), shared by the whole batch."""
        return cache_key(
            self.name,
            self.prompt_version,
            task.params["collection"],
            task.params["intervention"],
            task.label,
            int(task.params.get("reason_round", 0)),
        )

    def generator_messages(
        self,
        task: Task,
        chunks: list[SourceChunk],
        reasoning: dict[str, Any] | None,
        feedback: list[str],
    ) -> list[BaseMessage]:
        reasons = [str(r) for r in (reasoning or {}).get("reasons", [])][:5]
        phases = [str(c.metadata.get("phase")) for c in chunks if c.metadata.get("phase")]
        phase = phases[0] if phases and phases[0] != "unknown" else None
        return prompts.trial_messages(
            task.params["intervention"],
            str(task.label),
            [c.text for c in chunks],
            reasons,
            feedback,
            phase=phase,
        )

    def finalize(self, task: Task, draft: BaseModel, chunks: list[SourceChunk]) -> dict[str, Any]:
        assert isinstance(draft, TrialContent)
        record = TrialRecord(
            **draft.model_dump(),
            id=f"SYN-{task.id}",
            label=label_of(task.label),
            source="synthetic",
        )
        return scrub_leaks(record).model_dump(mode="json")

    # --- critic -------------------------------------------------------------------------

    def checks(
        self, task: Task, item: dict[str, Any], chunks: list[SourceChunk]
    ) -> list[CheckResult]:
        opts = self.options
        intervention = task.params["intervention"]
        collection = task.params["collection"]
        text = trial_text(item)
        store = self.store(collection)
        references = {c.id: c.text for c in chunks}
        if opts.nearest_real:
            references.update({c.id: c.text for c in store.query(text, k=opts.nearest_real)})
        kin = self.index(collection).ids(intervention)
        neighbours = (
            store.query(text, k=opts.realism_neighbours, where={"trial_id": {"$in": kin}})
            if kin
            else []
        )
        return [
            completeness_check(item),
            intervention_check(intervention, item.get("interventions") or []),
            memorisation_check(
                text,
                references,
                max_run=opts.max_copied_run,
                max_ngram_overlap=opts.max_ngram_overlap,
                n=opts.ngram_n,
            ),
            copied_ids_check(text, set(references)),
            realism_check(
                [c.score for c in neighbours if c.score is not None],
                min_distance=opts.realism_min_distance,
                max_distance=opts.realism_max_distance,
            ),
        ]

    def text_for_similarity(self, item: dict[str, Any]) -> str:
        return trial_text(item)

    def export_row(self, item: dict[str, Any]) -> dict[str, Any]:
        """``text`` (the trial as classifiers read it, scrubbed of outcome leaks) and its
        outcome ``label``."""
        return {"text": trial_text(item), "label": item.get("label")}

    # --- label correction ---------------------------------------------------------------

    def classifier(self) -> Classifier | None:
        """The outcome classifier (injected, or loaded from ``classifier_path`` once)."""
        if self._classifier is None and self.options.classifier_path:
            with self._lock:
                if self._classifier is None:
                    from clinsynth.finetune import Classifier, FinetuneError

                    path = Path(self.options.classifier_path)
                    if not path.is_dir():
                        raise ConfigError(f"classifier_path is not a directory: {path}")
                    try:
                        self._classifier = Classifier.load(path)
                    except (FinetuneError, OSError, ValueError) as exc:
                        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                        raise ConfigError(f"classifier_path {path}: {why}") from exc
        return self._classifier

    def load_models(self) -> None:
        """Load the outcome classifier (option ``classifier_path``), if one is configured."""
        self.classifier()

    def correct_label(self, task: Task, item: dict[str, Any]) -> Relabel:
        """Score the trial with the classifier; on strong disagreement relabel or reject."""
        model = self.classifier()
        target = label_of(item.get("label"))
        if model is None or target is None:
            return Relabel(item=item)
        names = [label_of(lab) for lab in model.labels]
        if target not in names:
            raise ConfigError(f"the classifier's labels {model.labels} lack '{target}'")
        with self._predict_lock:
            proba = model.predict_proba([trial_text(item)])[0]
        p_target = float(proba[names.index(target)])
        name = str(self.options.classifier_path or type(model).__name__)
        if p_target >= self.options.disagreement_threshold:
            check = LabelCheck(model=name, target=target, probability=p_target, decision="kept")
            return Relabel(item=dict(item, label_check=check.model_dump(mode="json")))
        other = "failure" if target == "success" else "success"
        why = (
            f"the outcome classifier gives '{target}' probability {p_target:.3f}, below "
            f"{self.options.disagreement_threshold:.2f}"
        )
        if self.options.on_disagreement == "reject":
            change = LabelChange(
                field="label",
                old=target,
                new=None,
                method="classifier-reject",
                reason=why,
                probability=p_target,
            )
            return Relabel(item=None, change=change, reason=why)
        check = LabelCheck(model=name, target=target, probability=p_target, decision="relabelled")
        change = LabelChange(
            field="label",
            old=target,
            new=other,
            method="classifier",
            reason=why,
            probability=p_target,
        )
        new = dict(item, label=other, label_check=check.model_dump(mode="json"))
        return Relabel(item=new, change=change)
