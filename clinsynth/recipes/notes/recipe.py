"""Recipe ``notes``: labelled clinical texts written from gold examples of the same label.

Method (arXiv 2403.19511): show the LLM a few real texts of one class and ask for a new text
of that class; afterwards a classifier trained on the gold data corrects the labels. Here the
few-shot examples are drawn at random (seeded per task) among the stored chunks whose label
metadata matches; per-label quotas come from the run; the critic measures length, format,
label leakage and copying from the examples (privacy and near-duplicates come from the core).
Label correction is a batch pass over the accepted items (``clinsynth correct-labels --run``),
because confident learning needs cross-validated probabilities over many items; an injected
classifier can also check items one by one (:meth:`NotesRecipe.correct_label`).

Label leakage: a text that names its own class verbatim teaches a classifier a shortcut. In
the gold data this is rare (medical_abstracts_tc: ≤ 4.5 % of a class's abstracts contain the
class name; mts_dialog: ≤ 11 % contain the section code), so the check asks for a revision.
"""

from __future__ import annotations

import random
import re
import threading
from typing import Any, ClassVar, Protocol

import numpy as np
from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field, model_validator

from clinsynth.config import ConfigError, RunConfig
from clinsynth.evaluators.overlap import longest_common_token_run
from clinsynth.recipes.base import Recipe, RecipeOptions, Relabel, RetrievalRequest
from clinsynth.recipes.notes import prompts
from clinsynth.schemas import CheckResult, LabelChange, SourceChunk, Task

_META_OPENERS = re.compile(
    r"^\s*(sure|certainly|here is|here's|below is|as an ai|i cannot|i can't)\b", re.I
)
_PLACEHOLDER = re.compile(r"\[(?:[A-Z][A-Za-z ]{1,30}|X+|\.\.\.)\]|<[A-Z_ ]{3,30}>|\{\w+\}")


class NoteDraft(BaseModel):
    """The generator's structured output."""

    text: str = Field(description="the new clinical text, and nothing else")


class ProbaClassifier(Protocol):
    """What the per-item label check needs: ``predict_proba`` over ``labels``."""

    labels: list[Any]

    def predict_proba(self, texts: list[str]) -> np.ndarray: ...


class NotesOptions(RecipeOptions):
    """Settings of the ``notes`` recipe."""

    labels: list[str] = Field(
        default_factory=list, description="label set (default: the run's quota keys)"
    )
    label_field: str = Field("label", description="chunk metadata key that holds the label")
    label_names: dict[str, str] = Field(
        default_factory=dict, description="label → human-readable class name for the prompt"
    )
    length_words: int = Field(180, ge=5, le=2000, description="asked length in words")
    min_words: int = Field(20, ge=1)
    max_words: int = Field(600, ge=2)
    max_copied_run: int = Field(
        12, ge=3, description="longest run of words shared with one example"
    )
    forbid_label_name: bool = Field(True, description="revise texts that name their class")
    min_classifier_margin: float = Field(
        0.3, ge=0, le=1, description="per-item check: relabel only past this margin"
    )
    on_classifier_disagreement: str = Field(
        "flag", pattern="^(flag|relabel|reject)$", description="per-item check with a classifier"
    )

    @model_validator(mode="after")
    def _words(self) -> NotesOptions:
        if self.min_words >= self.max_words:
            raise ValueError("min_words must be smaller than max_words")
        return self


def _label_matches(text: str, label: str) -> bool:
    """Whole-word, case-insensitive match of ``label`` in ``text`` (separators count as one)."""
    words = [re.escape(w) for w in re.split(r"[\s_/-]+", label.strip()) if w]
    if not words or (len(words) == 1 and words[0].isdigit()):
        return False
    return re.search(r"\b" + r"[\s_/-]+".join(words) + r"\b", text, re.I) is not None


class NotesRecipe(Recipe):
    """Labelled clinical texts for a label set, from few-shot gold examples of each label."""

    name: ClassVar[str] = "notes"
    prompt_version: ClassVar[str] = prompts.PROMPT_VERSION
    instructions: ClassVar[tuple[str, ...]] = (prompts.NOTE_SYSTEM,)
    item_model: ClassVar[type[BaseModel]] = NoteDraft
    options_model: ClassVar[type[RecipeOptions]] = NotesOptions
    default_temperature: ClassVar[float] = 0.9
    export_task: ClassVar[str] = "text-classification"
    options: NotesOptions

    def __init__(
        self, options: dict[str, Any] | None = None, *, classifier: ProbaClassifier | None = None
    ) -> None:
        super().__init__(options)
        self.classifier = classifier
        # The label check runs in the run's inference threads; a classifier (its tokenizer)
        # need not be safe to call from two threads at once.
        self._predict_lock = threading.Lock()

    def _labels(self, run: RunConfig) -> list[str]:
        labels = self.options.labels or list(run.quotas)
        if not labels:
            raise ConfigError(
                "recipe 'notes' needs a label set: --option 'labels=[\"a\",\"b\"]' or --quota"
            )
        return labels

    def make_task(self, index: int, run: RunConfig, rng: random.Random) -> Task:
        labels = self._labels(run)
        return Task(
            id=f"{self.name}-{run.seed}-{index:06d}",
            index=index,
            recipe=self.name,
            topic=run.topic,
            label=labels[index % len(labels)],
            params={"example_seed": rng.randrange(2**31)},
        )

    def retrieval(self, task: Task, run: RunConfig) -> RetrievalRequest:
        label = task.label or ""
        field = self.options.label_field
        # CSV metadata holds strings, JSONL may hold numbers: match either spelling.
        where: dict[str, Any] = {field: label}
        if re.fullmatch(r"-?\d+", label):
            where = {"$or": [{field: label}, {field: int(label)}]}
        seed = int(task.params.get("example_seed", task.index))
        return RetrievalRequest(where=where, k=run.k, sample_seed=seed)

    def generator_messages(
        self,
        task: Task,
        chunks: list[SourceChunk],
        reasoning: dict[str, Any] | None,
        feedback: list[str],
    ) -> list[BaseMessage]:
        label = task.label or ""
        return prompts.note_messages(
            label,
            [c.text for c in chunks],
            description=self.options.label_names.get(label),
            length_words=self.options.length_words,
            topic=task.topic,
            feedback=feedback,
        )

    def finalize(self, task: Task, draft: BaseModel, chunks: list[SourceChunk]) -> dict[str, Any]:
        assert isinstance(draft, NoteDraft)
        label = task.label or ""
        return {
            "text": draft.text.strip(),
            "label": label,
            "label_name": self.options.label_names.get(label),
            "example_ids": [c.id for c in chunks],
        }

    def checks(
        self, task: Task, item: dict[str, Any], chunks: list[SourceChunk]
    ) -> list[CheckResult]:
        text = str(item["text"])
        return [
            length_check(text, self.options.min_words, self.options.max_words),
            format_check(text),
            label_leak_check(
                text,
                [item["label"], item.get("label_name") or ""],
                enabled=self.options.forbid_label_name,
            ),
            copy_check(text, [c.text for c in chunks], self.options.max_copied_run),
        ]

    def text_for_similarity(self, item: dict[str, Any]) -> str:
        return str(item["text"])

    def export_row(self, item: dict[str, Any]) -> dict[str, Any]:
        """``text`` and its ``label`` (the class code, after label correction)."""
        return {"text": str(item["text"]), "label": item.get("label")}

    def correct_label(self, task: Task, item: dict[str, Any]) -> Relabel:
        """With an injected classifier, check the label of one item; without, keep it (the
        batch pass ``clinsynth correct-labels --run`` does confident learning over the run)."""
        if self.classifier is None:
            return Relabel(item=item)
        labels = [str(v) for v in self.classifier.labels]
        with self._predict_lock:
            proba = self.classifier.predict_proba([str(item["text"])])[0]
        given = str(item["label"])
        best = int(np.argmax(proba))
        p_given = float(proba[labels.index(given)]) if given in labels else 0.0
        margin = float(proba[best]) - p_given
        if labels[best] == given or margin < self.options.min_classifier_margin:
            return Relabel(item=item)
        policy = self.options.on_classifier_disagreement
        reason = (
            f"classifier prefers {labels[best]!r} (p={proba[best]:.2f}) over {given!r} "
            f"(p={p_given:.2f})"
        )
        if policy == "reject":
            return Relabel(item=None, reason=reason)
        new = labels[best] if policy == "relabel" else given
        change = LabelChange(
            field="label",
            old=given,
            new=new,
            method=f"classifier:{policy}",
            reason=reason,
            probability=float(proba[best]),
        )
        updated = dict(item, label=new, label_flagged=policy == "flag")
        if policy == "relabel":
            updated["label_name"] = self.options.label_names.get(new)
        return Relabel(item=updated, change=change)


def length_check(text: str, min_words: int, max_words: int) -> CheckResult:
    """The text has between ``min_words`` and ``max_words`` words."""
    n = len(text.split())
    ok = min_words <= n <= max_words
    return CheckResult(
        name="length",
        score=float(n),
        passed=ok,
        reason=f"{n} words; write between {min_words} and {max_words}",
        threshold=float(min_words if n < min_words else max_words),
        details={"min": min_words, "max": max_words},
    )


def format_check(text: str) -> CheckResult:
    """No chatty preamble ("Here is…") and no template placeholders ("[Patient Name]")."""
    problems = []
    if _META_OPENERS.search(text):
        problems.append("starts with a remark to the reader instead of the text itself")
    holes = _PLACEHOLDER.findall(text)
    if holes:
        problems.append(f"contains placeholders {sorted(set(holes))[:3]}; write concrete text")
    return CheckResult(
        name="format",
        score=float(len(problems)),
        passed=not problems,
        reason="; ".join(problems) or "plain clinical text",
        threshold=0.0,
    )


def label_leak_check(text: str, names: list[str], *, enabled: bool = True) -> CheckResult:
    """The text does not name its own class verbatim (label code or class name)."""
    leaked = [n for n in names if n and _label_matches(text, n)] if enabled else []
    return CheckResult(
        name="label_leak",
        score=float(len(leaked)),
        passed=not leaked,
        reason=(
            f"names its own class ({', '.join(repr(n) for n in leaked)}); show it through "
            "clinical content instead"
            if leaked
            else "does not name its class"
        ),
        threshold=0.0,
    )


def copy_check(text: str, examples: list[str], max_run: int) -> CheckResult:
    """The text shares no run of more than ``max_run`` consecutive words with an example."""
    run = max((longest_common_token_run(text, e) for e in examples), default=0)
    return CheckResult(
        name="copied_from_example",
        score=float(run),
        passed=run <= max_run,
        reason=f"shares a run of {run} words with an example; write new sentences",
        threshold=float(max_run),
    )
