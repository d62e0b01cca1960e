"""The live objects a generation graph needs, injected by the caller (never built at import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clinsynth.config import RunConfig
from clinsynth.recipes.base import Recipe

if TYPE_CHECKING:
    from clinsynth.llm import LLMRouter
    from clinsynth.memory.cache import ReasoningCache
    from clinsynth.memory.registry import AcceptedRegistry
    from clinsynth.memory.store import VectorStore


@dataclass
class Deps:
    """Everything the nodes use: models per role, the corpus, memory and the recipe."""

    llm: LLMRouter
    store: VectorStore
    registry: AcceptedRegistry
    recipe: Recipe
    run: RunConfig
    cache: ReasoningCache | None = None
    extra: dict[str, object] = field(default_factory=dict)
