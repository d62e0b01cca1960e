"""The notes recipe: prompt rendering, tasks and retrieval, critic checks, per-item label check."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from clinsynth.config import ConfigError, RunConfig
from clinsynth.recipes import get_recipe
from clinsynth.recipes.notes import NoteDraft, NotesRecipe, prompts
from clinsynth.recipes.notes.recipe import label_leak_check
from clinsynth.schemas import SourceChunk, Task


def test_prompt_renders_examples_class_and_length() -> None:
    system, user = prompts.note_messages(
        "1",
        ["  First abstract.  ", "Second abstract."],
        description="neoplasms",
        length_words=150,
        topic="breast",
        feedback=[],
    )
    assert prompts.PROMPT_VERSION == "notes-v2"
    assert "Never name the class" in str(system.content)
    text = str(user.content)
    assert text.startswith("Class: 1 (neoplasms)\n")
    assert "<example>\nFirst abstract.\n</example>\n<example>\nSecond abstract.\n</example>" in text
    assert "Topic to write about: breast." in text and "about 150 words long" in text
    assert "<feedback>" not in text
    assert not re.search(r"\{[a-z_]+\}", text), "unfilled template slot"


def test_prompt_with_feedback_and_no_description() -> None:
    _, user = prompts.note_messages(
        "GENHX", ["x"], description=None, length_words=80, topic=None,
        feedback=["length: 3 words", "label_leak: names its own class"],
    )  # fmt: skip
    text = str(user.content)
    assert text.startswith("Class: GENHX\n") and "Topic" not in text
    assert "<feedback>" in text and "- length: 3 words\n- label_leak" in text


def test_tasks_cycle_labels_and_draw_examples_of_the_same_label() -> None:
    recipe = get_recipe("notes", {"labels": ["1", "2", "GENHX"], "label_field": "condition"})
    assert isinstance(recipe, NotesRecipe)
    run = RunConfig.model_validate({"recipe": "notes", "n": 6, "k": 3})
    tasks = [recipe.make_task(i, run, random.Random(i)) for i in range(4)]
    assert [t.label for t in tasks] == ["1", "2", "GENHX", "1"]
    assert tasks[0] == recipe.make_task(0, run, random.Random(0)), "deterministic"
    req = recipe.retrieval(tasks[0], run)
    assert req.k == 3 and req.query is None and req.sample_seed is not None
    assert req.where == {"$or": [{"condition": "1"}, {"condition": 1}]}
    assert recipe.retrieval(tasks[2], run).where == {"condition": "GENHX"}
    # quota-driven labels: make_task_for replaces the label
    quota_task = recipe.make_task_for(5, run, random.Random(5), label="2")
    assert quota_task.label == "2"


def test_label_set_comes_from_quotas_or_is_required() -> None:
    recipe = get_recipe("notes")
    run = RunConfig.model_validate({"recipe": "notes", "quotas": {"a": 2, "b": 1}})
    assert recipe.make_task(1, run, random.Random(0)).label == "b"
    with pytest.raises(ConfigError, match="needs a label set"):
        recipe.make_task(0, RunConfig.model_validate({"recipe": "notes"}), random.Random(0))


def _item(recipe: NotesRecipe, text: str, label: str = "4") -> dict[str, object]:
    task = Task(id="t", index=0, recipe="notes", label=label)
    chunks = [SourceChunk(id="ex#0", text="The echocardiogram showed a dilated left ventricle.")]
    return recipe.finalize(task, NoteDraft(text=text), chunks)


def _failed(recipe: NotesRecipe, item: dict[str, object]) -> dict[str, str]:
    task = Task(id="t", index=0, recipe="notes", label=str(item["label"]))
    chunks = [SourceChunk(id="ex#0", text=EXAMPLE)]
    return {c.name: c.on_fail for c in recipe.checks(task, item, chunks) if not c.passed}


EXAMPLE = (
    "Patients with chronic heart failure were randomised to the new drug or placebo and "
    "followed for two years for death or hospital admission in the trial."
)
GOOD = (
    "A 64-year-old man with long-standing hypertension presented with exertional dyspnoea; "
    "echocardiography found reduced systolic function and he was started on an ACE inhibitor "
    "and a beta blocker, with symptoms easing over six weeks of follow-up."
)


def test_checks_pass_a_good_note_and_record_provenance_fields() -> None:
    recipe = NotesRecipe({"label_names": {"4": "cardiovascular diseases"}, "min_words": 10})
    item = _item(recipe, GOOD)
    assert item["label"] == "4" and item["label_name"] == "cardiovascular diseases"
    assert item["example_ids"] == ["ex#0"]
    assert _failed(recipe, item) == {}
    assert recipe.text_for_similarity(item) == GOOD


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("Too short.", "length"),
        ("Here is a new abstract: " + GOOD, "format"),
        (GOOD + " Contact [Patient Name] for details.", "format"),
        (GOOD + " This is typical of cardiovascular  diseases.", "label_leak"),
        (EXAMPLE + " " + GOOD, "copied_from_example"),
    ],
)
def test_each_check_fails_on_its_flaw(text: str, check: str) -> None:
    recipe = NotesRecipe({"label_names": {"4": "cardiovascular diseases"}, "min_words": 10})
    assert _failed(recipe, _item(recipe, text)) == {check: "revise"}


def test_label_leak_matches_codes_and_names_but_not_bare_numbers() -> None:
    assert label_leak_check("Seen in room 4 today.", ["4", ""]).passed
    assert not label_leak_check("FAM/SOCHX: lives alone.", ["FAM/SOCHX"]).passed
    assert not label_leak_check("fam sochx reviewed", ["FAM/SOCHX"]).passed
    assert label_leak_check("familial history", ["FAM/SOCHX"]).passed
    assert label_leak_check("Naming it is fine here", ["neoplasms"], enabled=False).passed


class _Clf:
    def __init__(self, p_cardio: float) -> None:
        self.labels: list[object] = ["cardio", "neuro"]
        self.p = p_cardio

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return np.array([[self.p, 1 - self.p]] * len(texts))


def test_per_item_check_with_an_injected_classifier() -> None:
    task = Task(id="t", index=0, recipe="notes", label="neuro")
    item: dict[str, object] = {"text": "troponin", "label": "neuro", "example_ids": []}
    keep = get_recipe("notes", {}, classifier=_Clf(0.55)).correct_label(task, item)
    assert keep.item == item and keep.change is None, "margin 0.1 is below 0.3"
    flag = get_recipe("notes", {}, classifier=_Clf(0.9)).correct_label(task, item)
    assert flag.item is not None and flag.item["label"] == "neuro" and flag.item["label_flagged"]
    assert flag.change is not None and flag.change.method == "classifier:flag"
    relabel = get_recipe(
        "notes", {"on_classifier_disagreement": "relabel"}, classifier=_Clf(0.9)
    ).correct_label(task, item)
    assert relabel.item is not None and relabel.item["label"] == "cardio"
    assert relabel.change is not None and relabel.change.new == "cardio"
    assert relabel.change.probability == pytest.approx(0.9)
    reject = get_recipe(
        "notes", {"on_classifier_disagreement": "reject"}, classifier=_Clf(0.9)
    ).correct_label(task, item)
    assert reject.item is None and "prefers 'cardio'" in (reject.reason or "")
    assert NotesRecipe().correct_label(task, item).item == item, "no classifier: keep"


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        NotesRecipe({"min_words": 50, "max_words": 10})
    with pytest.raises(ConfigError):
        NotesRecipe({"on_classifier_disagreement": "shrug"})
