"""Run configuration (JSON-safe, per run) and settings (environment, read once at the edge)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

ROLES = ("reasoner", "generator", "critic")


DIFFICULTY_BANDS: dict[str, tuple[float, float]] = {
    "easy": (0.0, 0.4),
    "medium": (0.3, 0.7),
    "hard": (0.6, 1.0),
}


def parse_band(difficulty: str | float | None) -> tuple[float, float] | None:
    """A band from a name (easy/medium/hard), a number (minimum), or ``lo-hi``; None = any."""
    if difficulty is None or difficulty == "":
        return None
    if isinstance(difficulty, float | int):
        return (float(difficulty), 1.0)
    text = difficulty.strip().lower()
    if text in DIFFICULTY_BANDS:
        return DIFFICULTY_BANDS[text]
    match = re.fullmatch(r"(\d*\.?\d+)\s*(?:-\s*(\d*\.?\d+))?", text)
    if match is None:
        raise ValueError(
            "difficulty must be easy, medium, hard, a number in [0, 1] or lo-hi; "
            f"got {difficulty!r}"
        )
    lo = float(match.group(1))
    hi = float(match.group(2)) if match.group(2) else 1.0
    if not 0 <= lo <= hi <= 1:
        raise ValueError(f"difficulty band must lie in [0, 1] with lo <= hi; got {difficulty!r}")
    return (lo, hi)


class ConfigError(ValueError):
    """A configuration problem the user can fix; the message is one line."""


class RunConfig(BaseModel):
    """What one generation run makes. Stored in the run directory; identical configs resume."""

    model_config = ConfigDict(extra="forbid")

    recipe: str = "qa"
    n: int = Field(10, ge=1, description="accepted items to produce")
    max_attempts: int = Field(3, ge=1, le=20, description="generator attempts per item")
    max_concurrency: int = Field(
        4,
        ge=1,
        le=256,
        description=(
            "LLM requests in flight at once (with an endpoint the batch runner keeps twice as "
            "many items in flight, so requests never wait while items are between calls)"
        ),
    )
    max_candidates: int | None = Field(
        None, ge=1, description="stop after this many candidates (default 4 × n)"
    )
    token_budget: int | None = Field(None, ge=1, description="stop launching items past this")
    cost_budget: float | None = Field(
        None, gt=0, description="stop launching items once the spend (see price_per_1k_*) hits this"
    )
    price_per_1k_input: float = Field(0.0, ge=0, description="price of 1,000 prompt tokens")
    price_per_1k_output: float = Field(0.0, ge=0, description="price of 1,000 completion tokens")
    wall_time_s: float | None = Field(
        None, gt=0, description="stop this invocation after so many seconds (rerun to continue)"
    )
    quotas: dict[str, int] = Field(
        default_factory=dict,
        description="accepted items wanted per label (or per topic, see quota_by); n = their sum",
    )
    quota_by: Literal["label", "topic"] = "label"
    checkpoint: Literal["step", "item"] = Field(
        "step",
        description=(
            "step: checkpoint after every graph node (a killed run resumes mid-item, saving "
            "its LLM calls); item: only finished items (less overhead for fast local endpoints;"
            " items in flight restart)"
        ),
    )
    rpm: int | None = Field(None, ge=1, description="LLM requests per minute, all roles together")
    tpm: int | None = Field(None, ge=1, description="LLM tokens per minute, all roles together")
    seed: int = 0
    topic: str | None = None
    difficulty: str | None = None
    k: int = Field(4, ge=1, le=50, description="chunks retrieved per item")
    collection: str = "corpus"
    temperature: float | None = Field(None, ge=0, le=2)
    recipe_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("difficulty")
    @classmethod
    def _known_difficulty(cls, value: str | None) -> str | None:
        parse_band(value)
        return value

    @field_validator("quotas")
    @classmethod
    def _positive_quotas(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [key for key, count in value.items() if count < 1 or not key]
        if bad:
            raise ValueError(f"quotas need a non-empty key and a count ≥ 1 (bad: {bad})")
        return value

    @model_validator(mode="after")
    def _n_from_quotas(self) -> RunConfig:
        if self.quotas:
            total = sum(self.quotas.values())
            if "n" in self.model_fields_set and self.n != total:
                raise ValueError(f"n ({self.n}) must equal the sum of the quotas ({total})")
            self.n = total
        if self.cost_budget is not None and not (
            self.price_per_1k_input or self.price_per_1k_output
        ):
            raise ValueError("cost_budget needs price_per_1k_input and/or price_per_1k_output")
        return self

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """The price of so many tokens at this run's prices."""
        return (
            input_tokens * self.price_per_1k_input + output_tokens * self.price_per_1k_output
        ) / 1000

    @property
    def candidate_limit(self) -> int:
        return self.max_candidates if self.max_candidates is not None else 4 * self.n

    def fingerprint(self) -> dict[str, Any]:
        """The fields that decide which items a run makes; a resume must match them."""
        data = self.model_dump(mode="json")
        # Limits and budgets may change between invocations; so may quotas, because every
        # started task is logged with its label/topic and resumes from that log.
        for volatile in (
            "n",
            "max_concurrency",
            "max_candidates",
            "token_budget",
            "cost_budget",
            "price_per_1k_input",
            "price_per_1k_output",
            "wall_time_s",
            "quotas",
            "quota_by",
            "rpm",
            "tpm",
            "checkpoint",
        ):
            data.pop(volatile)
        return data


class EndpointSettings(BaseModel):
    """How to reach a chat model for one role (see ``clinsynth.llm.EndpointConfig``)."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["openai", "local"] = "openai"
    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int = 1024
    timeout_s: float = 60.0
    max_retries: int = 4
    structured_method: Literal["auto", "json_schema", "function_calling", "json_mode"] = "auto"
    gguf_path: str | None = None
    n_ctx: int = 4096
    routing: Literal["least-loaded", "round-robin"] = "least-loaded"
    """How requests spread over the replicas of a comma-separated ``base_url``."""
    endpoint_rpm: int | None = Field(None, ge=1, description="requests per minute per replica")


class Settings(BaseSettings):
    """Environment settings (prefix ``CLINSYNTH_``); per-role overrides use ``CLINSYNTH_<ROLE>_*``.

    With no base URL configured the in-process local model is used.
    """

    model_config = SettingsConfigDict(env_prefix="CLINSYNTH_", extra="ignore")

    provider: Literal["auto", "openai", "local"] = "auto"
    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    gguf_path: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 4
    max_tokens: int = 1024
    structured_method: Literal["auto", "json_schema", "function_calling", "json_mode"] = "auto"
    routing: Literal["least-loaded", "round-robin"] = "least-loaded"
    endpoint_rpm: int | None = Field(default=None, ge=1)
    store: Path = Path(".clinsynth/store")
    embedder: Literal["minilm", "hashing"] = "minilm"
    inference_workers: int = Field(
        default=2,
        ge=1,
        description="threads a run gives reader, classifier and embedding inference",
    )
    reasoner_model: str | None = None
    generator_model: str | None = None
    critic_model: str | None = None

    def resolved_provider(self) -> Literal["openai", "local"]:
        if self.provider == "auto":
            return "openai" if self.base_url else "local"
        return self.provider

    def endpoints(self) -> dict[str, EndpointSettings]:
        """One endpoint per role; roles without an override share the default."""
        provider = self.resolved_provider()
        if provider == "openai" and not self.base_url and not self.api_key:
            raise ConfigError(
                "provider 'openai' needs CLINSYNTH_BASE_URL (and CLINSYNTH_API_KEY for hosted APIs)"
            )
        base = EndpointSettings(
            provider=provider,
            base_url=self.base_url,
            api_key=self.api_key,
            model=self.model or ("local-gguf" if provider == "local" else "gpt-4o-mini"),
            max_tokens=self.max_tokens,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            structured_method=self.structured_method,
            gguf_path=self.gguf_path,
            routing=self.routing,
            endpoint_rpm=self.endpoint_rpm,
        )
        out: dict[str, EndpointSettings] = {}
        for role in ROLES:
            override = getattr(self, f"{role}_model")
            out[role] = base.model_copy(update={"model": override}) if override else base
        return out


class FileConfig(BaseModel):
    """A ``--config`` file: run fields at top level, optional ``[endpoints.<role>]`` tables."""

    model_config = ConfigDict(extra="forbid")

    run: dict[str, Any] = Field(default_factory=dict)
    endpoints: dict[str, EndpointSettings] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        if isinstance(data, dict) and "run" not in data:
            data = dict(data)
            endpoints = data.pop("endpoints", {})
            return {"run": data, "endpoints": endpoints}
        return data


def load_config_file(path: Path) -> FileConfig:
    """Read a TOML or JSON config file, with one-line errors for every user mistake."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            raise ConfigError(f"config file must be .toml or .json, got {path.name}")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text ({exc.reason}); save it as UTF-8"
        ) from exc
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot parse {path}: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        cfg = FileConfig.model_validate(data)
        RunConfig.model_validate(cfg.run)
    except ValidationError as exc:
        raise ConfigError(f"bad config {path}: {one_line(exc)}") from exc
    unknown = set(cfg.endpoints) - set(ROLES) - {"default"}
    if unknown:
        raise ConfigError(f"bad config {path}: unknown endpoint role(s) {sorted(unknown)}")
    return cfg


def one_line(exc: ValidationError) -> str:
    """Summarise a pydantic validation error in one line."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "value"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
