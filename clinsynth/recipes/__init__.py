"""Recipes: the published methods, each plugged into the generation core."""

from __future__ import annotations

from typing import Any

from clinsynth.config import ConfigError
from clinsynth.recipes.base import Recipe, RecipeOptions, Relabel, RetrievalRequest


def recipe_names() -> list[str]:
    """Names accepted by :func:`get_recipe`."""
    return ["qa"]


def get_recipe(name: str, options: dict[str, Any] | None = None) -> Recipe:
    """Build a recipe by name with its options validated."""
    if name == "qa":
        from clinsynth.recipes.qa import QARecipe

        return QARecipe(options)
    raise ConfigError(f"unknown recipe '{name}' (available: {', '.join(recipe_names())})")


__all__ = ["Recipe", "RecipeOptions", "Relabel", "RetrievalRequest", "get_recipe", "recipe_names"]
