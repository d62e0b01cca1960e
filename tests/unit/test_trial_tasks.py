"""The ``trial-tasks`` recipe: every task's schema, every verifying critic, the split rule,
the prompts, label correction of termination types and the export row."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from clinsynth.config import ConfigError, RunConfig
from clinsynth.datasets.trials import (
    TrialRecord,
    ingest_trials,
    load_trials,
    record_of,
    trial_text,
)
from clinsynth.evaluators.sample_size import PowerScenario, required_sample_size
from clinsynth.evaluators.task_key import (
    distractor_similarity_check,
    embedding_solver,
    lexical_solver,
    longest_solver,
    position_balance,
    solver_accuracy,
)
from clinsynth.memory.embeddings import HashingEmbedder
from clinsynth.memory.store import VectorStore
from clinsynth.recipes import get_recipe
from clinsynth.recipes.trial_tasks import TrialTasksRecipe, prompts
from clinsynth.recipes.trial_tasks.critic import export_row, mcq_view, schema_check
from clinsynth.recipes.trial_tasks.labels import check_termination, termination_type_of
from clinsynth.recipes.trial_tasks.pool import answer_letter, nearest_distinct
from clinsynth.recipes.trial_tasks.schema import ITEM_MODELS, TASK_TYPES
from clinsynth.recipes.trial_tasks.sources import inputs_of
from clinsynth.schemas import SourceChunk, Task
from clinsynth.testing.trial_tasks_responder import trial_tasks_reply, write_ctgov_studies
from clinsynth.testing.trials_responder import write_hint_table

RUN = RunConfig(recipe="trial-tasks", n=4, collection="ttasks", seed=5)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> VectorStore:
    tmp = tmp_path_factory.mktemp("tt")
    vs = VectorStore(tmp / "store", HashingEmbedder(), collection="ttasks")
    recs = load_trials(write_ctgov_studies(tmp / "s.json", n=20))
    ingest_trials(recs[:5], vs, split="eval")
    ingest_trials(recs, vs, split="train")  # the five eval trials stay eval
    return vs


def recipe(store: VectorStore, task: str, **options: Any) -> TrialTasksRecipe:
    r = get_recipe("trial-tasks", {"task": task, **options}, store=store)
    assert isinstance(r, TrialTasksRecipe)
    return r


def draft(
    r: TrialTasksRecipe, index: int = 1, mode: str = "accept"
) -> tuple[Task, list[SourceChunk], dict[str, Any]]:
    """Task, chunks and finalized item for task ``index``, drafted by the scripted model."""
    task = r.make_task(index, RUN, random.Random(index))
    req = r.retrieval(task, RUN)
    chunks = r.store("ttasks").get(r.store("ttasks").ids(where=req.where))
    messages = r.generator_messages(task, chunks, None, [])
    body = {
        "messages": [{"role": "user", "content": m.content} for m in messages if m.type == "human"],
        "response_format": {"type": "json_schema", "json_schema": {"name": r.item_model.__name__}},
    }
    parsed = r.item_model.model_validate_json(trial_tasks_reply(body, mode))
    return task, chunks, r.finalize(task, parsed, chunks)


def failed(checks: list[Any]) -> dict[str, Any]:
    return {c.name: c for c in checks if not c.passed}


# --- sources -----------------------------------------------------------------------------


def test_facts_stay_out_of_record_text_and_json(store: VectorStore, tmp_path: Path) -> None:
    recs = load_trials(write_ctgov_studies(tmp_path / "s.json", n=3))
    rec = recs[0]
    assert rec.facts is not None and rec.facts.enrollment and rec.facts.arms
    assert rec.facts.status in ("COMPLETED", "TERMINATED")
    assert "facts" not in json.loads(rec.model_dump_json())
    assert "TERMINATED" not in trial_text(rec) and "COMPLETED" not in trial_text(rec)
    chunk = store.get([rec.id])[0]
    assert record_of(chunk).facts == rec.facts  # the store keeps them beside the record
    hint = load_trials(write_hint_table(tmp_path / "h.csv"))
    assert {r.facts.completion() for r in hint if r.facts} == {"completed", "terminated"}


def test_trialbench_facts_from_the_shared_table() -> None:
    path = Path("/work/shared/data/trialbench_approval_phase4/train.csv")
    if not path.exists():
        pytest.skip("shared data not present")
    recs = load_trials(path)
    first = next(r for r in recs if r.id == "NCT00046813")
    assert first.facts is not None and first.facts.enrollment == 100
    assert first.facts.masking == "Double" and first.facts.gender == "All"


# --- schemas and prompts -------------------------------------------------------------------


@pytest.mark.parametrize("task", TASK_TYPES)
def test_every_task_schema(store: VectorStore, task: str) -> None:
    r = recipe(store, task)
    t, chunks, item = draft(r)
    assert item["task_type"] == task and item["trial_id"] == t.params["source_id"]
    ITEM_MODELS[task].model_validate(item)
    assert schema_check(item).passed
    assert not failed(r.checks(t, item, chunks) + r.safety_checks(item))
    broken = {k: v for k, v in item.items() if k != "question"}
    assert not schema_check(broken).passed


def test_prompts_render_answer_feedback_and_stop_reason() -> None:
    assert prompts.PROMPT_VERSION == "trial-tasks-v1"
    sys_msg, user = prompts.mcq_messages("endpoints", "Title: T", "Overall survival", ["x: bad"])
    assert "the endpoints of this trial" in str(sys_msg.content)
    assert "<answer>\nOverall survival\n</answer>" in str(user.content)
    assert "<feedback>" in str(user.content) and "- x: bad" in str(user.content)
    _, user = prompts.completion_messages("Title: T", "slow accrual", [])
    assert "<stop_reason>\nslow accrual\n</stop_reason>" in str(user.content)
    _, user = prompts.completion_messages("Title: T", None, [])
    assert "No stop reason is recorded." in str(user.content)
    _, user = prompts.scenario_messages("Title: T", [])
    assert "<trial>\nTitle: T\n</trial>" in str(user.content) and "<feedback>" not in str(
        user.content
    )


# --- verifying critics ---------------------------------------------------------------------


def test_correct_option_must_be_the_source_text(store: VectorStore) -> None:
    r = recipe(store, "criteria_mcq")
    t, chunks, item = draft(r)
    letter = item["answer"]
    item["options"][letter] = item["options"][letter].replace("Inclusion", "Exclusion", 1)
    bad = failed(r.checks(t, item, chunks))
    assert bad["correct_option"].on_fail == "reject"


def test_duplicated_distractor_is_caught(store: VectorStore) -> None:
    r = recipe(store, "endpoint_mcq")
    t, chunks, item = draft(r, mode="flawed")  # first draft copies the answer as a distractor
    bad = failed(r.checks(t, item, chunks))
    assert set(bad) == {"distractor_similarity"}
    assert "near duplicates" in bad["distractor_similarity"].reason
    assert bad["distractor_similarity"].on_fail == "revise"


def test_similarity_bounds() -> None:
    vectors = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.6, 0.8]]
    assert distractor_similarity_check(vectors, 0).passed  # max pairwise 0.8 (B, D)
    low = distractor_similarity_check(vectors, 0, min_similarity=0.1)
    assert not low.passed and "unrelated" in low.reason
    high = distractor_similarity_check(vectors, 0, max_similarity=0.7)
    assert not high.passed and "B and D" in high.reason


def test_leaked_labels_are_caught(store: VectorStore) -> None:
    r = recipe(store, "arm_mcq")
    t, chunks, item = draft(r)
    item["question"] = f"Is this the design: {item['options'][item['answer']]}?"
    assert "label_leak" in failed(r.checks(t, item, chunks))
    r = recipe(store, "sample_size")
    t, chunks, item = draft(r)
    item["question"] = f"The trial enrolled {item['answer']} people. How many did it enrol?"
    assert "label_leak" in failed(r.checks(t, item, chunks))
    r = recipe(store, "completion")
    t, chunks, item = draft(r)
    item["question"] = "The study was terminated early due to poor accrual. Did it complete?"
    assert "label_leak" in failed(r.checks(t, item, chunks))


def test_sample_size_inputs_mask_the_enrollment(store: VectorStore) -> None:
    r = recipe(store, "sample_size")
    _, chunks, item = draft(r)
    record = record_of(next(c for c in chunks if c.id == item["trial_id"]))
    record.eligibility_criteria += f"\nSubjects: {item['answer']} outpatients"
    shown = inputs_of("sample_size", record)["eligibility_criteria"]
    assert "Subjects: [N] outpatients" in shown


def test_wrong_sample_size_is_caught(store: VectorStore) -> None:
    s = PowerScenario(outcome_type="continuous", mean_difference=5, standard_deviation=10)
    assert required_sample_size(s) == 128  # d = 0.5, 80 % power, alpha 0.05: 64 per arm
    r = recipe(store, "sample_size_scenario")
    t, chunks, item = draft(r, mode="flawed")  # N 50 % too high
    bad = failed(r.checks(t, item, chunks))
    assert set(bad) == {"sample_size_recomputed"}
    assert bad["sample_size_recomputed"].details["recomputed"] == item["recomputed_n"]
    t, chunks, item = draft(r, mode="accept")
    assert not failed(r.checks(t, item, chunks))
    r = recipe(store, "sample_size")
    t, chunks, item = draft(r)
    item["answer"] += 1
    assert "answer_from_record" in failed(r.checks(t, item, chunks))


def test_completion_label_comes_from_the_record(store: VectorStore) -> None:
    r = recipe(store, "completion")
    t, chunks, item = draft(r)
    record = record_of(next(c for c in chunks if c.id == item["trial_id"]))
    assert record.facts is not None
    assert item["labels"]["outcome"] == record.facts.completion() == t.label
    item["labels"] = {"outcome": "completed" if t.label == "terminated" else "terminated"}
    assert "label_from_record" in failed(r.checks(t, item, chunks))


def test_unbalanced_answer_positions_are_caught(store: VectorStore) -> None:
    letters = [answer_letter(3, i) for i in range(40)]
    assert position_balance(letters).balanced and set(letters[:4]) == {"A", "B", "C", "D"}
    skewed = position_balance(["A"] * 30 + ["B", "C", "D"])
    assert not skewed.balanced and skewed.counts["A"] == 30 and skewed.p_value < 0.01
    r = recipe(store, "criteria_mcq")
    t, chunks, item = draft(r)
    moved = "A" if item["answer"] != "A" else "B"
    item["options"][moved], item["options"][item["answer"]] = (
        item["options"][item["answer"]],
        item["options"][moved],
    )
    item["answer"] = moved
    assert "answer_position" in failed(r.checks(t, item, chunks))


def test_lexical_giveaway_is_caught(store: VectorStore) -> None:
    r = recipe(store, "arm_mcq")
    t, chunks, item = draft(r)
    assert "lexical_separability" in {c.name for c in r.checks(t, item, chunks)}
    for letter in item["options"]:  # distractors without the trial's own drug name
        if letter != item["answer"]:
            item["options"][letter] = f"Experimental: placebo tablets, schedule {letter}"
    bad = failed(r.checks(t, item, chunks))
    assert "lexical_separability" in bad
    assert "gives the answer away" in bad["lexical_separability"].reason


def test_junk_distractors_and_titles_for_questions_are_caught(store: VectorStore) -> None:
    # what the 270M local model wrote: one-letter distractors and the title as the question
    r = recipe(store, "criteria_mcq")
    t, chunks, item = draft(r)
    for letter in item["options"]:
        if letter != item["answer"]:
            item["options"][letter] = letter
    item["question"] = "A study of testumab-18 in adults"
    bad = failed(r.checks(t, item, chunks))
    assert {"option_length", "question_present"} <= set(bad)
    assert bad["option_length"].on_fail == "revise"


def test_trivial_solvers_report_accuracy() -> None:
    items = [
        {"prompt": "asthma inhaler children", "answer": "B",
         "options": {"A": "knee pain", "B": "children asthma inhaler dose", "C": "x", "D": "yy"}},
        {"prompt": "diabetes", "answer": "C",
         "options": {"A": "short", "B": "a much longer distractor text", "C": "c", "D": "d"}},
    ]  # fmt: skip
    lexical = solver_accuracy(items, lexical_solver, "lexical")
    assert lexical.correct == 1 and lexical.chance == 0.25
    assert solver_accuracy(items, longest_solver, "longest").correct == 1
    embed = HashingEmbedder().embed
    assert solver_accuracy(items, embedding_solver(embed), "embedding").n == 2


def test_mcq_view_joins_inputs_and_question(store: VectorStore) -> None:
    _, _, item = draft(recipe(store, "endpoint_mcq"))
    view = mcq_view(item)
    assert item["question"] in view["prompt"] and view["answer"] == item["answer"]


# --- the split rule ------------------------------------------------------------------------


def test_eval_split_trials_never_feed_generation(store: VectorStore) -> None:
    eval_ids = set(store.ids(where={"split": "eval"}))
    assert len(eval_ids) == 5
    for task in ("criteria_mcq", "completion", "sample_size"):
        r = recipe(store, task, distractors="real")
        assert not eval_ids & set(r.pool("ttasks").ids)
        for i in range(30):
            t = r.make_task(i, RUN, random.Random(i))
            assert t.params["source_id"] not in eval_ids
            assert not eval_ids & set(t.params["other_ids"])
            assert r.retrieval(t, RUN).where["split"] == "train"


def test_empty_pool_is_a_config_error(tmp_path: Path) -> None:
    vs = VectorStore(tmp_path / "s", HashingEmbedder(), collection="ttasks")
    ingest_trials(load_trials(write_hint_table(tmp_path / "h.csv")), vs)
    r = recipe(vs, "endpoint_mcq")  # HINT tables have no outcome measures
    with pytest.raises(ConfigError, match="can serve task 'endpoint_mcq'"):
        r.make_task(0, RUN, random.Random(0))


# --- label correction ------------------------------------------------------------------------


def test_termination_type_rules_and_relabel() -> None:
    assert termination_type_of("Slow accrual") == "poor_enrollment"
    assert termination_type_of("sponsor decision") == "business"
    assert termination_type_of("low accrual and safety concerns") is None  # not sure
    item = {"labels": {"outcome": "terminated", "terminate_type": "other"}}
    new, change, _ = check_termination(item, "poor accrual", on_disagreement="relabel")
    assert new is not None and new["labels"]["terminate_type"] == "poor_enrollment"
    assert change is not None and change.old == "other" and change.method == "why_stop-rules"
    assert new["label_check"]["decision"] == "relabelled"
    gone, change, why = check_termination(item, "poor accrual", on_disagreement="reject")
    assert gone is None and change is not None and change.new is None and why
    kept, change, _ = check_termination(item, "the PI moved", on_disagreement="relabel")
    assert kept is not None and change is None and kept["label_check"]["decision"] == "kept"
    typeless = {"labels": {"outcome": "terminated", "terminate_type": "none"}}
    fixed, change, _ = check_termination(typeless, "", on_disagreement="relabel")
    assert fixed is not None and fixed["labels"]["terminate_type"] == "other"
    assert change is not None and change.old == "none"


def test_recipe_relabels_from_the_stored_stop_reason(store: VectorStore) -> None:
    r = recipe(store, "completion")
    for i in range(20):
        t, _, item = draft(r, index=i, mode="flawed")  # calls every stop reason 'other'
        if item["labels"]["outcome"] == "terminated" and t.label == "terminated":
            chunk = store.get([item["trial_id"]])[0]
            why = record_of(chunk).facts.why_stop  # type: ignore[union-attr]
            if termination_type_of(why) not in (None, "other"):
                out = r.correct_label(t, item)
                assert out.change is not None and out.item is not None
                assert out.item["labels"]["terminate_type"] == termination_type_of(why)
                return
    pytest.fail("no terminated trial with a clear stop reason in the fixture")


# --- export --------------------------------------------------------------------------------


def test_export_rows_share_keys_and_types(store: VectorStore) -> None:
    rows = [export_row(draft(recipe(store, task))[2]) for task in TASK_TYPES]
    assert {tuple(row) for row in rows} == {
        ("task_type", "trial_id", "instruction", "input", "output")
    }
    assert all(isinstance(v, str) for row in rows for v in row.values())
    by_task = {row["task_type"]: row for row in rows}
    assert by_task["criteria_mcq"]["output"] in ("A", "B", "C", "D")
    assert "\nA. " in by_task["criteria_mcq"]["input"]
    assert by_task["sample_size"]["output"].isdigit()
    assert json.loads(by_task["completion"]["output"])["outcome"] in ("completed", "terminated")
    with pytest.raises(ValueError, match="not a trial-tasks item"):
        export_row({"task_type": "other"})


def test_record_of_without_facts_still_reads() -> None:
    rec = TrialRecord(id="NCT1", source="synthetic", title="t")
    chunk = SourceChunk(id="NCT1", text="t", metadata={"record": rec.model_dump_json()})
    assert record_of(chunk).facts is None


def test_real_distractors_come_from_the_nearest_topics() -> None:
    topics = {
        "src": {"heart", "failure", "furosemide"},
        "near1": {"heart", "failure", "digoxin"},
        "near2": {"heart", "failure"},
        "copy": {"heart", "failure", "furosemide"},  # a sister trial: same topic, same criteria
        "dup": {"heart", "failure", "torsemide"},  # answer identical to near1's
        "far1": {"asthma", "inhaler"},
        "far2": {"psoriasis"},
        "far3": {"migraine"},
    }
    answers = {
        "src": "adults with reduced ejection fraction on loop diuretics",
        "near1": "adults with atrial fibrillation and preserved ejection fraction",
        "near2": "children with congenital heart disease",
        "copy": "adults with reduced ejection fraction on loop diuretics and stable",
        "dup": "adults with atrial fibrillation and preserved ejection fraction",
        "far1": "adolescents with moderate asthma",
        "far2": "plaque psoriasis over 10 percent of body surface",
        "far3": "episodic migraine for a year",
    }
    ids = sorted(topics)
    picked = nearest_distinct("src", ids, topics, answers, random.Random(0))
    # near1 and dup tie on topic and share one answer: exactly one of them is taken
    assert "near2" in picked[:2] and len({"near1", "dup"} & set(picked[:2])) == 1
    assert "copy" not in picked and "src" not in picked
    assert len(picked) == 3 and picked[2].startswith("far")
    assert picked == nearest_distinct("src", ids, topics, answers, random.Random(0))
