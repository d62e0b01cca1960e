"""A minimal third-party-style recipe: registered only through a ``clinsynth.recipes`` entry
point (see tests/unit/test_recipe_registry.py), never named inside clinsynth."""

from __future__ import annotations

import random
from typing import Any, ClassVar

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel

from clinsynth.config import RunConfig
from clinsynth.recipes import Recipe, RetrievalRequest
from clinsynth.schemas import CheckResult, SourceChunk, Task


class ToyItem(BaseModel):
    """One sentence about a passage."""

    text: str


class ToyRecipe(Recipe):
    """Asks for one sentence per passage; its only check wants a non-empty sentence."""

    name: ClassVar[str] = "toy"
    prompt_version: ClassVar[str] = "toy-v1"
    item_model: ClassVar[type[BaseModel]] = ToyItem

    def make_task(self, index: int, run: RunConfig, rng: random.Random) -> Task:
        return Task(id=f"toy-{run.seed}-{index:06d}", index=index, recipe=self.name)

    def retrieval(self, task: Task, run: RunConfig) -> RetrievalRequest:
        return RetrievalRequest(k=1, offset=task.index)

    def generator_messages(
        self,
        task: Task,
        chunks: list[SourceChunk],
        reasoning: dict[str, Any] | None,
        feedback: list[str],
    ) -> list[BaseMessage]:
        return [
            SystemMessage("Write one sentence about the passage."),
            HumanMessage("\n\n".join(c.text for c in chunks)),
        ]

    def checks(
        self, task: Task, item: dict[str, Any], chunks: list[SourceChunk]
    ) -> list[CheckResult]:
        ok = bool(item["text"].strip())
        return [CheckResult(name="non_empty", score=float(ok), passed=ok, reason="")]

    def text_for_similarity(self, item: dict[str, Any]) -> str:
        return str(item["text"])
