"""Recipes: the published methods, each plugged into the generation core."""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import Any

from clinsynth.config import ConfigError
from clinsynth.recipes.base import Recipe, RecipeOptions, Relabel, RetrievalRequest

_RECIPES: dict[str, str] = {
    "qa": "clinsynth.recipes.qa:QARecipe",
    "trials": "clinsynth.recipes.trials:TrialsRecipe",
    "notes": "clinsynth.recipes.notes:NotesRecipe",
    "trial-tasks": "clinsynth.recipes.trial_tasks:TrialTasksRecipe",
}


def recipe_names() -> list[str]:
    """Names of the recipes available in this installation."""
    return [name for name, target in _RECIPES.items() if find_spec(target.split(":")[0])]


def recipe_class(name: str) -> type[Recipe]:
    """The recipe class registered under ``name``."""
    if name not in recipe_names():
        raise ConfigError(f"unknown recipe '{name}' (available: {', '.join(recipe_names())})")
    module, cls_name = _RECIPES[name].split(":")
    cls: type[Recipe] = getattr(import_module(module), cls_name)
    return cls


def get_recipe(name: str, options: dict[str, Any] | None = None, **inject: Any) -> Recipe:
    """Build a recipe by name with its options validated; ``inject`` passes live objects
    (e.g. a trained classifier) to recipes that accept them."""
    return recipe_class(name)(options, **inject)


__all__ = [
    "Recipe",
    "RecipeOptions",
    "Relabel",
    "RetrievalRequest",
    "get_recipe",
    "recipe_class",
    "recipe_names",
]
