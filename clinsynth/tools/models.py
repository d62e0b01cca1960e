"""The host tools' argument and result models (pydantic), and the one error a tool raises.

Each tool of :class:`~clinsynth.tools.toolkit.ClinsynthToolkit` takes one ``*Args`` model and
returns one ``*Result`` model; the LangChain and MCP adapters publish these as tool schemas.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clinsynth.schemas import CheckResult, Verdict


class ToolError(RuntimeError):
    """A tool could not do what it was asked; the message is one line meant for the caller."""


class SearchArgs(BaseModel):
    """Arguments of ``search_corpus``."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, description="what to look for in the ingested corpus")
    k: int = Field(default=5, ge=1, le=50, description="passages to return")
    collection: str = Field(default="corpus", description="collection name in the store")


class Passage(BaseModel):
    """One retrieved passage."""

    id: str
    score: float | None
    source: str | None = None
    text: str


class SearchResult(BaseModel):
    """What ``search_corpus`` found, best first."""

    query: str
    passages: list[Passage]


def check_difficulty(value: str | None) -> str | None:
    """Validate a difficulty target (a band name, a minimum, or ``lo-hi``)."""
    from clinsynth.config import parse_band

    parse_band(value)
    return value


class GenerateArgs(BaseModel):
    """Arguments of ``generate_items``."""

    model_config = ConfigDict(extra="forbid")

    topic: str | None = Field(default=None, description="retrieve passages about this topic")
    n: int = Field(default=5, ge=1, le=500, description="accepted items wanted")
    difficulty: str | None = Field(
        default=None,
        description="target difficulty: easy, medium, hard, a minimum such as 0.7, or lo-hi",
    )
    recipe: str = Field(default="qa", description="generation recipe")
    max_attempts: int = Field(default=3, ge=1, le=10, description="generator attempts per item")
    concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="LLM requests in flight at once (an endpoint gets 2x as many items)",
    )
    seed: int = Field(
        default=0, description="run seed; change it for different items on the same ask"
    )
    out_dir: str | None = Field(
        default=None,
        description="run directory; default: one per distinct request under the data dir "
        "(so an identical request resumes and returns the same run)",
    )

    @field_validator("difficulty")
    @classmethod
    def _known_band(cls, value: str | None) -> str | None:
        return check_difficulty(value)


class DifficultyStats(BaseModel):
    """Measured difficulty (the critic's ``difficulty`` score) over accepted items."""

    mean: float
    min: float
    max: float
    count: int


class GeneratedItem(BaseModel):
    """One accepted item with the critic's measurements."""

    id: str
    item: dict[str, Any]
    difficulty: float | None = Field(
        description="graded by the critic (0 easy … 1 hard); None when the measure may not grade"
    )
    scores: dict[str, float] = Field(description="every critic check's score")
    attempts: int
    source_ids: list[str]
    topic: str | None = None


class GenerateResult(BaseModel):
    """What ``generate_items`` produced."""

    run_dir: str
    recipe: str
    topic: str | None
    difficulty_target: str | None
    accepted: int
    rejected: int
    surplus: int = Field(
        default=0, description="stopped or set aside because the target was reached first"
    )
    acceptance_rate: float | None = Field(
        default=None, description="accepted / (accepted + rejected); surplus items not counted"
    )
    candidates: int
    stop_reason: str
    detail: str
    tokens: int
    measured_difficulty: DifficultyStats | None
    items: list[GeneratedItem]


class CritiqueArgs(BaseModel):
    """Arguments of ``critique_item``."""

    model_config = ConfigDict(extra="forbid")

    item: dict[str, Any] = Field(
        description="the item as the recipe's generator writes it (qa: question and answer)"
    )
    context: str = Field(min_length=1, description="the passage the item is grounded in")
    recipe: str = Field(default="qa", description="recipe whose checks apply")
    difficulty: str | None = Field(
        default=None, description="target difficulty band the difficulty check uses (default: any)"
    )

    @field_validator("difficulty")
    @classmethod
    def _known_band(cls, value: str | None) -> str | None:
        return check_difficulty(value)


class CritiqueResult(BaseModel):
    """The critic's report on one item: reasons first, then the verdict."""

    verdict: Verdict
    reasons: list[str]
    checks: list[CheckResult]
    item: dict[str, Any] = Field(description="the item as the recipe stores it")


class CorrectLabelsArgs(BaseModel):
    """Arguments of ``correct_labels``."""

    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(min_length=2, description="the texts")
    labels: list[str] = Field(min_length=2, description="their given labels, in the same order")
    policy: Literal["flag", "relabel", "drop"] = Field(
        default="flag", description="flag suspect labels, relabel them, or drop the items"
    )
    method: Literal["ours", "cleanlab", "argmax"] = Field(
        default="ours", description="how suspect labels are detected"
    )
    backbone: str | None = Field(
        default=None,
        description="minilm (default: frozen sentence embeddings), hashing (instant, low "
        "quality), or a BERT name / local directory fine-tuned in every fold (slow)",
    )
    folds: int = Field(default=5, ge=2, le=20, description="cross-validation folds")
    seed: int = 0


class CorrectLabelsResult(BaseModel):
    """One decision per input text."""

    flagged: int
    changed: int
    decisions: list[dict[str, Any]]


class FinetuneArgs(BaseModel):
    """Arguments of ``finetune_evaluate``."""

    model_config = ConfigDict(extra="forbid")

    task: Literal["classification", "qa"] = Field(
        description="sequence classification or extractive QA"
    )
    train: str = Field(
        description="training data: a run directory, an accepted.jsonl, a JSONL file, or "
        "(qa) a SQuAD JSON file"
    )
    eval: str = Field(description="evaluation data, same formats")
    text_field: str = Field(
        default="text", description="classification: text field of each row/item"
    )
    label_field: str = Field(
        default="label", description="classification: label field of each row/item"
    )
    backbone: str | None = Field(
        default=None, description="model name or local path (default BioBERT)"
    )
    epochs: float | None = Field(
        default=None, gt=0, description="default: the fine-tune's (classification) or 2 (qa)"
    )
    max_steps: int | None = Field(default=None, ge=1, description="overrides epochs when set")
    max_length: int | None = Field(
        default=None, ge=16, le=512, description="tokens per input; default: the fine-tune's"
    )
    decision: Literal["argmax", "val_f1"] | None = Field(
        default=None,
        description="classification: argmax, or val_f1 (threshold chosen on 20% of train)",
    )
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)


class FinetuneResult(BaseModel):
    """Metrics per seed and their mean ± sd."""

    task: str
    backbone: str
    fell_back: bool
    n_train: int
    n_eval: int
    runs: list[dict[str, Any]]
    summary: dict[str, Any]
    baselines: dict[str, Any] = Field(
        default_factory=dict,
        description="classification: majority class and TF-IDF + LR on the same split and text",
    )
    beats_baselines: bool | None = Field(
        default=None,
        description="classification: mean ROC-AUC and F1 above every baseline's (None for qa)",
    )
    warnings: list[str] = Field(
        default_factory=list, description="e.g. the metrics on which the model loses a baseline"
    )
