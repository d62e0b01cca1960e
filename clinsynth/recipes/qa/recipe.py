"""Recipe ``qa``: hard clinical questions grounded in one retrieved passage.

Method (arXiv 2412.04573): summarise the document into a fixed schema, ask for a question
from the summary that avoids the document's words, then distil the answer in a separate call
as an exact quote or "unanswerable". The prompt variant (``direct``, ``no_overlap``,
``summary``, ``summary+no_overlap``) is a setting. We measure word overlap, answer validity
and difficulty (a trained reader when one is configured) instead of trusting the prompt.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, ClassVar, Literal

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field, field_validator

from clinsynth.config import RunConfig, parse_band
from clinsynth.evaluators.answer import (
    UNANSWERABLE,
    answer_validity_check,
    is_unanswerable,
    locate_answer,
)
from clinsynth.evaluators.difficulty import (
    DifficultyScorer,
    LexicalDifficulty,
    QAReaderLike,
    ReaderSentenceDifficulty,
    difficulty_check,
)
from clinsynth.evaluators.form import question_form_check
from clinsynth.evaluators.overlap import overlap_check
from clinsynth.recipes.base import Recipe, RecipeOptions, Relabel, RetrievalRequest
from clinsynth.recipes.qa import prompts
from clinsynth.recipes.qa.reader import TrainedReader
from clinsynth.schemas import CheckResult, CriticReport, LabelChange, SourceChunk, Task

NO_READER_NOTE = "lexical proxy: no reader configured (recipe option reader_path)"


class ClinicalSummary(BaseModel):
    """Fixed summary schema of a clinical document (the reasoner's output)."""

    history: list[str] = Field(default_factory=list)
    conditions: list[str] = Field(default_factory=list)
    symptoms: list[str] = Field(default_factory=list)
    findings: list[str] = Field(default_factory=list)
    diagnostics: list[str] = Field(default_factory=list)
    treatments: list[str] = Field(default_factory=list)


class QADraft(BaseModel):
    """The generator's structured output: the question and the answer it has in mind."""

    # Length caps bound constrained decoding too: a small local model otherwise fills a
    # string until max_tokens cuts the JSON off.
    question: str = Field(description="one question ending with '?'", max_length=400)
    answer: str = Field(
        description='an exact quote from the document, or "unanswerable"', max_length=300
    )


class QAAnswer(BaseModel):
    """The distiller's structured output: the answer found in the document for a question."""

    answer: str = Field(
        description='the shortest exact quote of the document that answers, or "unanswerable"',
        max_length=300,
    )


class QAOptions(RecipeOptions):
    """Settings of the ``qa`` recipe."""

    variant: prompts.Variant = Field(
        "summary+no_overlap", description="prompt variant (the paper's four rows)"
    )
    gate_overlap: bool | None = Field(
        None,
        description="fail items above max_overlap; None: only in the no_overlap variants "
        "(the others still measure and record the overlap)",
    )
    max_overlap: float = Field(0.5, ge=0, le=1, description="max share of reused content words")
    distill_answers: bool = Field(
        True, description="answer in a separate call (document + question → quote/unanswerable)"
    )
    unanswerable_share: float = Field(0.1, ge=0, le=1)
    on_unlocated_answer: str = Field(
        "relabel", pattern="^(relabel|reject)$", description="answer not in document"
    )
    min_question_words: int = 5
    max_question_words: int = 60
    reader_path: str | None = Field(
        None, description="saved extractive-QA reader directory (difficulty + answerability)"
    )
    reader_recheck: bool = Field(
        True, description="with a reader: re-check items labelled unanswerable"
    )
    recheck_confidence: float = Field(
        0.8, ge=0, le=1, description="reader confidence needed to overrule 'unanswerable'"
    )
    on_reader_disagrees: Literal["reject", "relabel"] = Field(
        "reject", description="unanswerable item the reader confidently answers"
    )

    @field_validator("reader_path")
    @classmethod
    def _reader_exists(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_dir():
            raise ValueError(f"reader_path {value!r} is not a directory")
        return value

    def overlap_gated(self) -> bool:
        """Whether the overlap check can fail an item under these settings."""
        if self.gate_overlap is not None:
            return self.gate_overlap
        return prompts.avoids_overlap(self.variant)


class QARecipe(Recipe):
    """Hard extractive QA items: question + context + answer span (or unanswerable)."""

    name: ClassVar[str] = "qa"
    prompt_version: ClassVar[str] = prompts.PROMPT_VERSION
    instructions: ClassVar[tuple[str, ...]] = prompts.SYSTEM_PROMPTS
    item_model: ClassVar[type[BaseModel]] = QADraft
    reasoning_model: ClassVar[type[BaseModel] | None] = ClinicalSummary
    refine_model: ClassVar[type[BaseModel] | None] = QAAnswer
    refine_role: ClassVar[str] = "distiller"
    options_model: ClassVar[type[RecipeOptions]] = QAOptions
    export_task: ClassVar[str] = "question-answering"
    options: QAOptions

    def __init__(
        self,
        options: dict[str, Any] | None = None,
        *,
        scorer: DifficultyScorer | None = None,
        reader: QAReaderLike | None = None,
    ) -> None:
        """``reader`` (or option ``reader_path``) enables the reader-based difficulty score and
        the answerability re-check; ``scorer`` overrides the difficulty scorer outright."""
        super().__init__(options)
        if reader is None and self.options.reader_path is not None:
            reader = TrainedReader(self.options.reader_path)
        self.reader = reader
        if scorer is None:
            scorer = ReaderSentenceDifficulty(reader) if reader is not None else LexicalDifficulty()
        self.scorer: DifficultyScorer = scorer

    def load_models(self) -> None:
        """Load the reader (when it is one that loads, such as a :class:`TrainedReader`)."""
        load = getattr(self.reader, "load", None)
        if callable(load):
            load()

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

    def reasoner_messages(self, task: Task, chunks: list[SourceChunk]) -> list[BaseMessage] | None:
        if not prompts.uses_summary(self.options.variant):
            return None
        return prompts.summary_messages(self._document(task, chunks).text)

    def generator_messages(
        self,
        task: Task,
        chunks: list[SourceChunk],
        reasoning: dict[str, Any] | None,
        feedback: list[str],
    ) -> list[BaseMessage]:
        variant = self.options.variant
        summary = None
        if prompts.uses_summary(variant):
            summary = json.dumps(reasoning or {}, indent=1, ensure_ascii=False)
        return prompts.question_messages(
            self._document(task, chunks).text,
            summary,
            answerable=task.label != "unanswerable",
            topic=task.topic,
            difficulty=task.difficulty,
            feedback=feedback,
            avoid_overlap=prompts.avoids_overlap(variant),
        )

    def finalize(self, task: Task, draft: BaseModel, chunks: list[SourceChunk]) -> dict[str, Any]:
        assert isinstance(draft, QADraft)
        doc = self._document(task, chunks)
        item: dict[str, Any] = {
            "question": draft.question.strip(),
            "context_id": doc.id,
            "context": doc.text,
            "variant": self.options.variant,
        }
        if self.options.distill_answers:
            item["draft_answer"] = draft.answer.strip()
        return self._with_answer(item, draft.answer)

    @staticmethod
    def _with_answer(item: dict[str, Any], answer: str) -> dict[str, Any]:
        """``item`` with ``answer`` set: an exact span (offsets recorded) or unanswerable."""
        answer = answer.strip()
        out = dict(item, answer=answer, answerable=not is_unanswerable(answer))
        out["answer_start"] = out["answer_end"] = None
        if not out["answerable"]:
            out["answer"] = UNANSWERABLE
            return out
        span = locate_answer(answer, item["context"])
        if span is not None:
            out["answer_start"], out["answer_end"] = span
            out["answer"] = item["context"][span[0] : span[1]]
        return out

    def refine_messages(
        self, task: Task, chunks: list[SourceChunk], item: dict[str, Any]
    ) -> list[BaseMessage] | None:
        if not self.options.distill_answers:
            return None
        return prompts.distill_messages(item["context"], item["question"])

    def apply_refinement(
        self, task: Task, chunks: list[SourceChunk], item: dict[str, Any], refined: BaseModel
    ) -> dict[str, Any]:
        """The distilled answer replaces the generator's; the latter stays as ``draft_answer``."""
        assert isinstance(refined, QAAnswer)
        return self._with_answer(item, refined.answer)

    def checks(
        self, task: Task, item: dict[str, Any], chunks: list[SourceChunk]
    ) -> list[CheckResult]:
        opts = self.options
        validity = answer_validity_check(item["answer"], item["context"])
        if opts.on_unlocated_answer == "reject":
            validity = validity.model_copy(update={"on_fail": "reject"})
        measured = self.scorer.score(item["question"], item["context"], item["answer"])
        if self.reader is None and measured.note is None:
            measured = measured.model_copy(update={"note": NO_READER_NOTE})
        band = parse_band(task.difficulty) or (0.0, 1.0)
        overlap = overlap_check(item["question"], item["context"], max_overlap=opts.max_overlap)
        if not opts.overlap_gated():
            overlap = overlap.model_copy(
                update={
                    "passed": True,
                    "reason": f"measured, not gated (variant {opts.variant}): {overlap.reason}",
                }
            )
        return [
            question_form_check(
                item["question"],
                min_words=opts.min_question_words,
                max_words=opts.max_question_words,
            ),
            overlap,
            validity,
            difficulty_check(measured, band),
        ]

    def text_for_similarity(self, item: dict[str, Any]) -> str:
        return str(item["question"])

    def export_row(self, item: dict[str, Any]) -> dict[str, Any]:
        """SQuAD v2 style: ``context``, ``question`` and ``answers`` (``text`` and
        ``answer_start`` lists, both empty for an unanswerable question)."""
        context, start = item.get("context"), item.get("answer_start")
        if not isinstance(context, str):
            raise ValueError("the item has no passage (context); is passages.jsonl missing?")
        answers: dict[str, list[Any]] = {"text": [], "answer_start": []}
        if item.get("answerable"):
            if start is None or context[start : start + len(item["answer"])] != item["answer"]:
                raise ValueError("the answer is not located in the passage")
            answers = {"text": [item["answer"]], "answer_start": [start]}
        return {"context": context, "question": item["question"], "answers": answers}

    def text_fields(self, item: dict[str, Any]) -> dict[str, str]:
        """The question, the generator's draft answer and the (distilled) answer."""
        names = ("question", "draft_answer", "answer")
        return {n: item[n] for n in names if isinstance(item.get(n), str)}

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

    def correct_label(self, task: Task, item: dict[str, Any]) -> Relabel:
        """With a reader, re-check items labelled unanswerable: when the reader answers with
        confidence ≥ ``recheck_confidence``, reject the item or relabel it with the reader's
        span (``on_reader_disagrees``). Either decision is recorded as a label change."""
        opts = self.options
        if self.reader is None or not opts.reader_recheck or item.get("answerable"):
            return Relabel(item=item)
        got = self.reader.answer(item["question"], item["context"])
        if got.abstained or got.confidence < opts.recheck_confidence or not got.text:
            return Relabel(item=item)
        evidence = f"the reader answered {got.text!r} with confidence {got.confidence:.2f}"
        if opts.on_reader_disagrees == "relabel":
            new = self._with_answer(item, got.text)
            if new["answer_start"] is not None:
                change = LabelChange(
                    field="answer",
                    old=UNANSWERABLE,
                    new=new["answer"],
                    method="reader-recheck",
                    reason=f"labelled unanswerable, but {evidence}",
                    probability=got.confidence,
                )
                return Relabel(item=new, change=change)
        change = LabelChange(
            field="answerable",
            old=False,
            new=None,
            method="reader-recheck",
            reason=f"labelled unanswerable, but {evidence}; item rejected",
            probability=got.confidence,
        )
        return Relabel(item=None, change=change, reason=f"answerability doubtful: {evidence}")
