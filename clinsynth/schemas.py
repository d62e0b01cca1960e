"""Pydantic models: the single source of truth for items, critic reports, state rows and JSONL.

Everything that crosses a boundary (LLM structured output, graph state, files on disk, tool
arguments) is one of these models or is validated into one.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, field_validator

Verdict = Literal["accept", "revise", "relabel", "reject"]
"""What the critic asks for. Ordered by severity: reject > revise > relabel > accept."""

VERDICT_SEVERITY: dict[str, int] = {"accept": 0, "relabel": 1, "revise": 2, "reject": 3}


class SourceChunk(BaseModel):
    """A retrieved piece of the corpus that an item is grounded in."""

    id: str
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    score: float | None = None


class CheckResult(BaseModel):
    """One measurable critic check. ``passed`` is decided by ``score`` against ``threshold``."""

    name: str
    score: float
    passed: bool
    reason: str
    threshold: float | None = None
    on_fail: Verdict = "revise"
    details: dict[str, Any] = Field(default_factory=dict)


class CriticReport(BaseModel):
    """The critic's judgement of one candidate: reasons first, then the verdict."""

    reasons: list[str] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)
    verdict: Verdict = "accept"

    @classmethod
    def from_checks(cls, checks: list[CheckResult]) -> CriticReport:
        """Combine checks: the most severe failing check decides the verdict."""
        failed = [c for c in checks if not c.passed]
        verdict: Verdict = "accept"
        for c in failed:
            if VERDICT_SEVERITY[c.on_fail] > VERDICT_SEVERITY[verdict]:
                verdict = c.on_fail
        return cls(
            reasons=[f"{c.name}: {c.reason}" for c in failed], checks=checks, verdict=verdict
        )

    def scores(self) -> dict[str, float]:
        """Check name → score, for provenance."""
        return {c.name: c.score for c in self.checks}


class LabelChange(BaseModel):
    """A change of an item's label by the label corrector, with the evidence for it."""

    field: str
    old: Any
    new: Any
    method: str
    reason: str
    probability: float | None = None


class Usage(BaseModel):
    """Token usage of one or more LLM calls."""

    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            calls=self.calls + other.calls,
        )


RAW_OUTPUT_CHARS = 16_000
"""Most characters of a model's raw reply kept on an attempt (a runaway reply is cut)."""


class Attempt(BaseModel):
    """One generator attempt and what the critic said of it."""

    number: int
    item: dict[str, Any] | None = None
    raw_output: str | None = None
    """The model's reply as sent, cut to ``RAW_OUTPUT_CHARS`` with a note of what was cut."""
    error: str | None = None
    report: CriticReport | None = None

    @field_validator("raw_output")
    @classmethod
    def _cap_raw_output(cls, value: str | None) -> str | None:
        if value is None or len(value) <= RAW_OUTPUT_CHARS:
            return value
        return f"{value[:RAW_OUTPUT_CHARS]}… [{len(value) - RAW_OUTPUT_CHARS} characters cut]"


class Task(BaseModel):
    """One unit of work: which item to make. Ids are deterministic per run and index."""

    model_config = ConfigDict(frozen=True)

    id: str
    index: int
    recipe: str
    topic: str | None = None
    label: str | None = None
    difficulty: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class Provenance(BaseModel):
    """Where an item came from and what happened to it on the way."""

    source_ids: list[str] = Field(default_factory=list)
    recipe: str
    model: str
    prompt_version: str
    attempts: int
    critic_scores: dict[str, float] = Field(default_factory=dict)
    label_changes: list[LabelChange] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    duration_s: float | None = None


class ItemRecord(BaseModel):
    """One line of ``accepted.jsonl``, ``rejected.jsonl`` or ``surplus.jsonl``.

    ``surplus``: the item was stopped or set aside because the target (or its quota) was
    reached first; it is neither accepted nor a rejection."""

    id: str
    status: Literal["accepted", "rejected", "surplus"]
    task: Task
    item: dict[str, Any] | None
    provenance: Provenance
    reasons: list[str] = Field(default_factory=list)
    history: list[Attempt] = Field(default_factory=list)
    passages: list[SourceChunk] = Field(default_factory=list, exclude=True)
    """The chunks the item was grounded in, in memory only: the run writes each once to
    ``passages.jsonl``, and rows keep their ids (``provenance.source_ids``, ``context_id``)."""


class ItemState(TypedDict, total=False):
    """LangGraph state of one item. Values are JSON dumps of the models above, so checkpoints
    stay plain data; nodes validate them back into models."""

    task: dict[str, Any]
    max_attempts: int
    chunks: list[dict[str, Any]]
    reasoning: dict[str, Any] | None
    candidate: dict[str, Any] | None
    attempts: list[dict[str, Any]]
    report: dict[str, Any] | None
    label_changes: list[dict[str, Any]]
    usage: dict[str, Any]
    status: Literal["accepted", "rejected"] | None
    reasons: list[str]
    started_at: float
