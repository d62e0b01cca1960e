"""The ``trials`` recipe: prompts, tasks, retrieval, the reasoning cache, label correction."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clinsynth.agents.deps import Deps
from clinsynth.agents.reasoner import make_reasoner
from clinsynth.agents.retriever import make_retriever
from clinsynth.config import ConfigError, RunConfig
from clinsynth.datasets.trials import TrialContent, ingest_trials, load_trials
from clinsynth.graphs.generation import initial_state
from clinsynth.llm import LLMRouter, StructuredLLM, UsageMeter
from clinsynth.memory.cache import ReasoningCache
from clinsynth.memory.embeddings import HashingEmbedder
from clinsynth.memory.registry import AcceptedRegistry
from clinsynth.memory.store import VectorStore
from clinsynth.recipes import get_recipe
from clinsynth.recipes.trials import TrialsRecipe, prompts
from clinsynth.schemas import SourceChunk, Task
from clinsynth.testing.trials_responder import write_hint_table
from tests.support.fakes import fake_chat

RUN = RunConfig(recipe="trials", n=4, collection="trials", seed=7)


@pytest.fixture
def store(tmp_path: Path) -> VectorStore:
    vs = VectorStore(tmp_path / "store", HashingEmbedder(), collection="trials")
    recs = load_trials(write_hint_table(tmp_path / "h.csv", per_label=6))
    ingest_trials(recs[:2], vs, split="eval")  # two alphamab successes held out
    ingest_trials(recs, vs, split="train")
    return vs


def recipe_with(store: VectorStore, **options: Any) -> TrialsRecipe:
    recipe = get_recipe("trials", options, store=store)
    assert isinstance(recipe, TrialsRecipe)
    return recipe


def test_reason_prompt_renders_examples_and_diversity() -> None:
    first = prompts.reasons_messages("cisplatin", "failure", ["trial one", "trial two"])
    user = str(first[1].content)
    assert "Intervention: cisplatin" in user and "that failed" in user
    assert '<example n="2">\ntrial two\n</example>' in user
    assert "List exactly five reasons why trials of cisplatin fail." in user
    assert "round" not in user
    again = str(prompts.reasons_messages("cisplatin", "success", ["t"], round_=2)[1].content)
    assert "This is round 3" in again and "Give five different ones" in again
    assert prompts.DIVERSITY_FOCI[1] in again


def test_trial_prompt_renders_reasons_examples_feedback() -> None:
    msgs = prompts.trial_messages(
        "cisplatin", "success", ["ex A"], ["r1", "r2"], ["memorisation: copied"], phase="phase 2"
    )
    system, user = str(msgs[0].content), str(msgs[1].content)
    assert "never include an NCT number" in system
    assert "new phase 2 clinical trial of the intervention 'cisplatin' that will succeed" in user
    assert "1. r1\n2. r2" in user and '<example n="1">\nex A\n</example>' in user
    assert "<feedback>" in user and "- memorisation: copied" in user
    plain = str(prompts.trial_messages("x", "failure", [], [], [])[1].content)
    assert "<feedback>" not in plain and "will fail" in plain and "(none given)" in plain


def test_tasks_cover_balanced_pairs_deterministically(store: VectorStore) -> None:
    recipe = recipe_with(store)
    tasks = [recipe.make_task(i, RUN, random.Random(f"7:{i}")) for i in range(4)]
    pairs = {(t.params["intervention"], t.label) for t in tasks}
    assert pairs == {(d, lab) for d in ("alphamab", "betatinib") for lab in ("success", "failure")}
    assert tasks[0] == recipe.make_task(0, RUN, random.Random("7:0"))
    assert all(t.topic == t.params["intervention"] for t in tasks)
    quota = recipe.make_task_for(5, RUN, random.Random("x"), label="failure")
    assert quota.label == "failure"
    with pytest.raises(ConfigError, match="≥9 successful"):
        recipe_with(store, min_success=9).make_task(0, RUN, random.Random(0))
    only = recipe_with(store, interventions=["Betatinib"])
    assert {only.make_task(i, RUN, random.Random(i)).topic for i in range(6)} == {"betatinib"}


def _deps(store: VectorStore, recipe: TrialsRecipe, replies: list[Any], cache: Any = None) -> Deps:
    llm = StructuredLLM(fake_chat(replies), name="fake", method="json_schema", meter=UsageMeter())
    return Deps(
        llm=LLMRouter({"generator": llm, "reasoner": llm}, default="generator"),
        store=store,
        registry=AcceptedRegistry(HashingEmbedder()),
        recipe=recipe,
        run=RUN,
        cache=cache,
    )


def test_examples_random_per_item_and_never_from_eval(store: VectorStore) -> None:
    recipe = recipe_with(store)
    deps = _deps(store, recipe, [])
    held = set(store.ids(where={"split": "eval"}))
    assert len(held) == 2
    seen: set[tuple[str, ...]] = set()
    for i in range(12):
        task = recipe.make_task_for(i, RUN, random.Random(f"7:{i}"), label="success")
        task = task.model_copy(update={"params": dict(task.params, intervention="alphamab")})
        out = asyncio.run(make_retriever(deps)({"task": task.model_dump()}))
        chunks = [SourceChunk.model_validate(c) for c in out["chunks"]]
        assert len(chunks) == 3
        assert all(c.metadata["label"] == "success" for c in chunks)
        assert all("alphamab" in c.metadata["interventions"] for c in chunks)
        assert not {c.id for c in chunks} & held
        seen.add(tuple(sorted(c.id for c in chunks)))
    assert len(seen) > 1  # a different random draw per item, not one fixed set


def test_reasoning_cached_per_intervention_and_label(store: VectorStore, tmp_path: Path) -> None:
    recipe = recipe_with(store, reasons_refresh_every=2)
    reasons = {"reasons": [f"reason {i}" for i in range(5)]}
    cache = ReasoningCache(tmp_path / "cache.sqlite")
    deps = _deps(store, recipe, [reasons, dict(reasons, reasons=["new"] * 5)], cache=cache)
    chunk = SourceChunk(id="c", text="an example trial")

    def state(task: Task) -> dict[str, Any]:
        return dict(initial_state(task, 3, 0.0), chunks=[chunk.model_dump()])

    tasks = [recipe.make_task(i, RUN, random.Random(i)) for i in range(12)]
    same_pair = [t for t in tasks if (t.topic, t.label) == (tasks[0].topic, tasks[0].label)]
    assert [t.params["reason_round"] for t in same_pair] == [0, 0, 1]
    first = asyncio.run(make_reasoner(deps)(state(same_pair[0])))
    assert first["reasoning"] == reasons and first["usage"]["calls"] == 1
    second = asyncio.run(make_reasoner(deps)(state(same_pair[1])))
    assert second == {"reasoning": reasons}  # from the cache: no call, no usage
    assert len(cache) == 1
    third = asyncio.run(make_reasoner(deps)(state(same_pair[2])))
    assert third["reasoning"]["reasons"] == ["new"] * 5  # round 2: regenerated
    assert len(cache) == 2
    regenerated_prompt = str(recipe.reasoner_messages(same_pair[2], [chunk])[1].content)
    assert "This is round 2" in regenerated_prompt


def test_finalize_scrubs_and_checks_on_store(store: VectorStore) -> None:
    recipe = recipe_with(store)
    task = recipe.make_task_for(0, RUN, random.Random(1), label="failure", topic="betatinib")
    draft = TrialContent(
        title="Betatinib in lung cancer",
        phase="phase 2",
        conditions=["lung cancer"],
        interventions=["betatinib"],
        eligibility_criteria="Inclusion Criteria:\n- adults with lung cancer\n"
        "Exclusion Criteria:\n- pregnancy\nThe study was terminated early due to poor accrual.",
        outcome_measures=["objective response"],
        summary="Tests betatinib. The trial was stopped early for futility.",
    )
    item = recipe.finalize(task, draft, [])
    assert item["label"] == "failure" and item["source"] == "synthetic"
    assert item["id"] == f"SYN-{task.id}"
    assert "terminated" not in item["eligibility_criteria"] and "futility" not in item["summary"]
    names = [c.name for c in recipe.checks(task, item, [])]
    assert names == [
        "schema_completeness",
        "intervention_named",
        "memorisation",
        "copied_ids",
        "realism",
    ]
    copied = store.get([store.ids(where={"split": "train"})[0]])[0]
    bad = dict(item, eligibility_criteria=copied.text, interventions=["other"])
    failed = {c.name for c in recipe.checks(task, bad, [copied]) if not c.passed}
    assert {"memorisation", "intervention_named"} <= failed


class FakeClassifier:
    """Stands in for a trained Classifier: P(success) fixed per call."""

    def __init__(self, p_success: float, labels: Sequence[Any] = ("failure", "success")) -> None:
        self.labels = list(labels)
        self.p = p_success
        self.seen: list[str] = []

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        row = [1 - self.p, self.p] if self.labels[1] in ("success", 1) else [self.p, 1 - self.p]
        return np.array([row] * len(texts))


ITEM = {"id": "SYN-1", "label": "success", "source": "synthetic", "interventions": ["x"]}
TASK = Task(id="trials-0-000001", index=1, recipe="trials", label="success")


def test_label_corrector_keeps_agreeing_label() -> None:
    clf = FakeClassifier(0.7, labels=[0, 1])
    recipe = TrialsRecipe({}, classifier=clf)  # type: ignore[arg-type]
    out = recipe.correct_label(TASK, ITEM)
    assert out.item is not None and out.change is None
    assert out.item["label"] == "success"
    assert out.item["label_check"]["decision"] == "kept"
    assert out.item["label_check"]["probability"] == pytest.approx(0.7)
    assert clf.seen and "Interventions: x" in clf.seen[0]


def test_label_corrector_relabels_on_strong_disagreement() -> None:
    recipe = TrialsRecipe({"disagreement_threshold": 0.2}, classifier=FakeClassifier(0.05))  # type: ignore[arg-type]
    out = recipe.correct_label(TASK, ITEM)
    assert out.item is not None and out.item["label"] == "failure"
    assert out.change is not None and out.change.old == "success" and out.change.new == "failure"
    assert out.change.probability == pytest.approx(0.05)
    assert out.item["label_check"]["decision"] == "relabelled"


def test_label_corrector_rejects_by_policy() -> None:
    recipe = TrialsRecipe({"on_disagreement": "reject"}, classifier=FakeClassifier(0.1))  # type: ignore[arg-type]
    out = recipe.correct_label(TASK, ITEM)
    assert out.item is None and out.change is not None
    assert "probability 0.100" in (out.reason or "")


def test_label_corrector_without_classifier_keeps_item() -> None:
    out = TrialsRecipe({}).correct_label(TASK, ITEM)
    assert out.item == ITEM and out.change is None
    with pytest.raises(ConfigError, match="not a directory"):
        TrialsRecipe({"classifier_path": "/nonexistent/dir"}).correct_label(TASK, ITEM)


def test_empty_store_names_the_fix(tmp_path: Path) -> None:
    empty = VectorStore(tmp_path / "empty", HashingEmbedder(), collection="trials")
    with pytest.raises(ConfigError, match="ingest-trials"):
        recipe_with(empty).make_task(0, RUN, random.Random(0))
