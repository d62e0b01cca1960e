"""Recipes register through the ``clinsynth.recipes`` entry-point group, built-in ones too."""

from __future__ import annotations

import asyncio
import importlib
import tomllib
from pathlib import Path

import pytest

from clinsynth.agents.deps import Deps
from clinsynth.config import ConfigError, RunConfig
from clinsynth.graphs.batch import BatchRunner
from clinsynth.llm import LLMRouter, StructuredLLM, UsageMeter
from clinsynth.memory.embeddings import HashingEmbedder
from clinsynth.memory.registry import AcceptedRegistry
from clinsynth.memory.store import VectorStore
from clinsynth.recipes import ENTRY_POINT_GROUP, Recipe, get_recipe, recipe_class, recipe_names
from clinsynth.runtime.runfiles import iter_jsonl
from tests.support.fakes import fake_chat
from tests.support.toy_recipe import ToyRecipe

ROOT = Path(__file__).resolve().parents[2]
BUILT_IN = {
    "qa": "clinsynth.recipes.qa:QARecipe",
    "trials": "clinsynth.recipes.trials:TrialsRecipe",
    "notes": "clinsynth.recipes.notes:NotesRecipe",
    "trial-tasks": "clinsynth.recipes.trial_tasks:TrialTasksRecipe",
}


def install_entry_points(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lines: str) -> None:
    """Make a distribution declaring ``lines`` under the recipe group visible on sys.path."""
    dist = tmp_path / "toy_recipes-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-recipes\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_pyproject_registers_exactly_the_built_in_recipes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    table = project["entry-points"][ENTRY_POINT_GROUP]
    assert table == BUILT_IN
    for name, target in table.items():
        module, attr = target.split(":")
        cls = getattr(importlib.import_module(module), attr)
        assert issubclass(cls, Recipe)
        assert cls.name == name


def test_installed_recipes_are_the_built_in_ones() -> None:
    assert recipe_names() == sorted(BUILT_IN)


def test_a_third_party_recipe_registers_by_entry_point(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install_entry_points(monkeypatch, tmp_path, "toy = tests.support.toy_recipe:ToyRecipe\n")
    assert recipe_names() == sorted([*BUILT_IN, "toy"])
    assert recipe_class("toy") is ToyRecipe
    assert isinstance(get_recipe("toy"), ToyRecipe)


def test_unknown_and_broken_recipes_are_one_line_config_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install_entry_points(
        monkeypatch,
        tmp_path,
        "gone = tests.support.no_such_module:Recipe\nplain = tests.support.fakes:usage\n",
    )
    with pytest.raises(ConfigError, match=r"^unknown recipe 'no-such' \(available: gone, "):
        recipe_class("no-such")
    with pytest.raises(ConfigError, match=r"^recipe 'gone' \(tests\.support\.no_such_module:"):
        recipe_class("gone")
    with pytest.raises(ConfigError, match=r"^recipe 'plain' .* is not a Recipe class$"):
        recipe_class("plain")


def test_the_toy_recipe_runs_through_the_batch_runner(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, demo_store_path: Path
) -> None:
    install_entry_points(monkeypatch, tmp_path, "toy = tests.support.toy_recipe:ToyRecipe\n")
    replies = [{"text": f"Sentence number {i} is about something else entirely."} for i in range(3)]
    meter = UsageMeter()
    llm = StructuredLLM(fake_chat(replies), name="fake", method="json_schema", meter=meter)
    emb = HashingEmbedder()
    run = RunConfig(recipe="toy", n=3, max_concurrency=1)
    deps = Deps(
        llm=LLMRouter({"generator": llm}, default="generator"),
        store=VectorStore(demo_store_path, emb, collection="corpus"),
        registry=AcceptedRegistry(emb),
        recipe=get_recipe(run.recipe),
        run=run,
    )
    summary = asyncio.run(BatchRunner(deps, tmp_path / "run", meter=meter).run())
    assert (summary.accepted, summary.rejected, summary.candidates) == (3, 0, 3)
    items = list(iter_jsonl(tmp_path / "run" / "accepted.jsonl"))
    assert sorted(row["item"]["text"] for row in items) == sorted(r["text"] for r in replies)
    assert {row["provenance"]["recipe"] for row in items} == {"toy"}
