"""Recipe ``qa`` (first cut): hard clinical questions grounded in one retrieved passage.

Method (arXiv 2412.04573): summarise the document into a fixed schema, ask for a question
from the summary that avoids the document's words, answer with an exact quote or
"unanswerable". We measure word overlap and answer validity instead of trusting the prompt.
"""

from __future__ import annotations

import json
import random
from typing import Any, ClassVar

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field

from clinsynth.config import RunConfig
from clinsynth.evaluators.answer import (
    UNANSWERABLE,
    answer_validity_check,
    is_unanswerable,
    locate_answer,
)
from clinsynth.evaluators.difficulty import (
    DifficultyScorer,
    LexicalDifficulty,
    difficulty_check,
    parse_band,
)
from clinsynth.evaluators.form import question_form_check
from clinsynth.evaluators.overlap import overlap_check
from clinsynth.recipes.base import Recipe, RecipeOptions, Relabel, RetrievalRequest
from clinsynth.recipes.qa import prompts
from clinsynth.schemas import CheckResult, CriticReport, LabelChange, SourceChunk, Task


class ClinicalSummary(BaseModel):
    """Fixed summary schema of a clinical document (the reasoner's output)."""

    history: list[str] = Field(default_factory=list)
    conditions: list[str] = Field(default_factory=list)
    symptoms: list[str] = Field(default_factory=list)
    findings: list[str] = Field(default_factory=list)
    diagnostics: list[str] = Field(default_factory=list)
    treatments: list[str] = Field(default_factory=list)


class QADraft(BaseModel):
    """The generator's structured output."""

    question: str = Field(description="one question, in your own words, ending with '?'")
    answer: str = Field(description='an exact quote from the document, or "unanswerable"')


class QAOptions(RecipeOptions):
    """Settings of the ``qa`` recipe."""

    max_overlap: float = Field(0.5, ge=0, le=1, description="max share of reused content words")
    unanswerable_share: float = Field(0.1, ge=0, le=1)
    on_unlocated_answer: str = Field(
        "relabel", pattern="^(relabel|reject)$", description="answer not in document"
    )
    min_question_words: int = 5
    max_question_words: int = 60


class QARecipe(Recipe):
    """Hard extractive QA items: question + context + answer span (or unanswerable)."""

    name: ClassVar[str] = "qa"
    prompt_version: ClassVar[str] = prompts.PROMPT_VERSION
    item_model: ClassVar[type[BaseModel]] = QADraft
    reasoning_model: ClassVar[type[BaseModel] | None] = ClinicalSummary
    options_model: ClassVar[type[RecipeOptions]] = QAOptions
    options: QAOptions

    def __init__(
        self, options: dict[str, Any] | None = None, *, scorer: DifficultyScorer | None = None
    ) -> None:
        super().__init__(options)
        self.scorer: DifficultyScorer = scorer or LexicalDifficulty()

    def make_task(self, index: int, run: RunConfig, rng: random.Random) -> Task:
        answerable = rng.random() >= self.options.unanswerable_share
        return Task(
            id=f"{self.name}-{run.seed}-{index:06d}",
            index=index,
            recipe=self.name,
            topic=run.topic,
            difficulty=run.difficulty,
            label="answerable" if answerable else "unanswerable",
        )

    def label_of(self, task: Task, item: dict[str, Any]) -> str | None:
        return "answerable" if item.get("answerable") else "unanswerable"

    def retrieval(self, task: Task, run: RunConfig) -> RetrievalRequest:
        if task.topic:
            return RetrievalRequest(query=task.topic, k=run.k)
        return RetrievalRequest(offset=task.index, k=1)

    def _document(self, task: Task, chunks: list[SourceChunk]) -> SourceChunk:
        # With a topic, spread items over the top-k passages rather than reusing the best one.
        return chunks[task.index % len(chunks)]

    def reasoner_messages(self, task: Task, chunks: list[SourceChunk]) -> list[BaseMessage]:
        return prompts.summary_messages(self._document(task, chunks).text)

    def generator_messages(
        self,
        task: Task,
        chunks: list[SourceChunk],
        reasoning: dict[str, Any] | None,
        feedback: list[str],
    ) -> list[BaseMessage]:
        summary = json.dumps(reasoning or {}, indent=1, ensure_ascii=False)
        return prompts.question_messages(
            self._document(task, chunks).text,
            summary,
            answerable=task.label != "unanswerable",
            topic=task.topic,
            difficulty=task.difficulty,
            feedback=feedback,
        )

    def finalize(self, task: Task, draft: BaseModel, chunks: list[SourceChunk]) -> dict[str, Any]:
        assert isinstance(draft, QADraft)
        doc = self._document(task, chunks)
        answer = draft.answer.strip()
        item: dict[str, Any] = {
            "question": draft.question.strip(),
            "context_id": doc.id,
            "context": doc.text,
            "answer": answer,
            "answerable": not is_unanswerable(answer),
            "answer_start": None,
            "answer_end": None,
        }
        if item["answerable"]:
            span = locate_answer(answer, doc.text)
            if span is not None:
                item["answer_start"], item["answer_end"] = span
                item["answer"] = doc.text[span[0] : span[1]]
        else:
            item["answer"] = UNANSWERABLE
        return item

    def checks(
        self, task: Task, item: dict[str, Any], chunks: list[SourceChunk]
    ) -> list[CheckResult]:
        opts = self.options
        validity = answer_validity_check(item["answer"], item["context"])
        if opts.on_unlocated_answer == "reject":
            validity = validity.model_copy(update={"on_fail": "reject"})
        measured = self.scorer.score(item["question"], item["context"], item["answer"])
        band = parse_band(task.difficulty) or (0.0, 1.0)
        return [
            question_form_check(
                item["question"],
                min_words=opts.min_question_words,
                max_words=opts.max_question_words,
            ),
            overlap_check(item["question"], item["context"], max_overlap=opts.max_overlap),
            validity,
            difficulty_check(measured, band),
        ]

    def text_for_similarity(self, item: dict[str, Any]) -> str:
        return str(item["question"])

    def relabel(self, task: Task, item: dict[str, Any], report: CriticReport) -> Relabel:
        """An answer that cannot be located in the document makes the item unanswerable."""
        new = dict(item, answer=UNANSWERABLE, answerable=False, answer_start=None, answer_end=None)
        change = LabelChange(
            field="answer",
            old=item["answer"],
            new=UNANSWERABLE,
            method="answer-not-located",
            reason="the answer is not an exact quote of the document",
        )
        return Relabel(item=new, change=change)
