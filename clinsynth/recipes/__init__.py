"""Recipes: the published methods, each plugged into the generation core.

A recipe registers under the entry-point group ``clinsynth.recipes`` (name = recipe name,
value = ``module:RecipeClass``); the built-in ones are declared in clinsynth's own
``pyproject.toml`` the same way, so a third-party package adds a recipe without editing
clinsynth.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from clinsynth.config import ConfigError
from clinsynth.recipes.base import Recipe, RecipeOptions, Relabel, RetrievalRequest

ENTRY_POINT_GROUP = "clinsynth.recipes"


def _registered() -> dict[str, EntryPoint]:
    """The recipe entry points installed now (read on every call: installs may change)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def recipe_names() -> list[str]:
    """Names of the recipes available in this installation, sorted."""
    return sorted(_registered())


def recipe_class(name: str) -> type[Recipe]:
    """The recipe class registered under ``name``."""
    registered = _registered()
    if name not in registered:
        raise ConfigError(f"unknown recipe '{name}' (available: {', '.join(sorted(registered))})")
    target = registered[name].value
    try:
        cls = registered[name].load()
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"recipe '{name}' ({target}) cannot be loaded: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Recipe)):
        raise ConfigError(f"recipe '{name}' ({target}) is not a Recipe class")
    return cls


def get_recipe(name: str, options: dict[str, Any] | None = None, **inject: Any) -> Recipe:
    """Build a recipe by name with its options validated; ``inject`` passes live objects
    (e.g. a trained classifier) to recipes that accept them."""
    return recipe_class(name)(options, **inject)


__all__ = [
    "ENTRY_POINT_GROUP",
    "Recipe",
    "RecipeOptions",
    "Relabel",
    "RetrievalRequest",
    "get_recipe",
    "recipe_class",
    "recipe_names",
]
