"""The options of ``clinsynth generate`` in one typed model, and the one place they map onto a
run: :func:`resolve` merges them with a ``--config`` file and the environment into a
:class:`RunConfig`, settings and per-role endpoints.

Each field carries its help text (``description``) and, as :class:`Flag` metadata, its
command-line names and the ``RunConfig`` field it sets; the CLI builds its parameters from
these fields, so an option is declared once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from clinsynth.config import ConfigError, EndpointSettings, FileConfig, RunConfig, Settings

STORE_HELP = "vector store directory [default: $CLINSYNTH_STORE, else .clinsynth/store]"
EMBEDDER_HELP = (
    "minilm or hashing (fast, low quality, for tests) [default: $CLINSYNTH_EMBEDDER, else minilm]"
)


@dataclass(frozen=True)
class Flag:
    """How an option appears on the command line and where it lands in the run."""

    names: tuple[str, ...] = ()
    """Flag names (empty: derived from the field name, e.g. ``--max-attempts``)."""
    run: str | None = None
    """The ``RunConfig`` field the option sets (None: not a run field)."""


class GenerateOptions(BaseModel):
    """Everything ``clinsynth generate`` accepts; None means "not given"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipe: Annotated[str, Flag(("--recipe", "-r"), run="recipe")] = Field(
        "qa", description="recipe name"
    )
    n: Annotated[int | None, Flag(("-n",), run="n")] = Field(
        None, description="accepted items wanted"
    )
    topic: Annotated[str | None, Flag(run="topic")] = Field(
        None, description="retrieve passages about this topic"
    )
    difficulty: Annotated[str | None, Flag(run="difficulty")] = Field(
        None, description="target difficulty, e.g. hard"
    )
    out_dir: Annotated[Path | None, Flag(("--out", "-o"))] = Field(
        None, description="run directory"
    )
    config: Annotated[Path | None, Flag()] = Field(
        None, description="TOML/JSON run + endpoint config"
    )
    max_attempts: Annotated[int | None, Flag(run="max_attempts")] = Field(
        None, description="generator attempts per item"
    )
    concurrency: Annotated[int | None, Flag(run="max_concurrency")] = Field(
        None, description="LLM requests in flight at once (an endpoint gets 2x as many items)"
    )
    max_candidates: Annotated[int | None, Flag(run="max_candidates")] = Field(
        None, description="stop after N candidates"
    )
    token_budget: Annotated[int | None, Flag(run="token_budget")] = Field(
        None, description="stop after N tokens"
    )
    cost_budget: Annotated[float | None, Flag(run="cost_budget")] = Field(
        None, description="stop after this spend (needs --price-in/--price-out)"
    )
    price_in: Annotated[float | None, Flag(("--price-in",), run="price_per_1k_input")] = Field(
        None, description="price per 1,000 prompt tokens"
    )
    price_out: Annotated[float | None, Flag(("--price-out",), run="price_per_1k_output")] = Field(
        None, description="price per 1,000 completion tokens"
    )
    wall_time: Annotated[float | None, Flag(run="wall_time_s")] = Field(
        None, description="stop after this many seconds (rerun to continue)"
    )
    quota: Annotated[list[str], Flag()] = Field(
        default_factory=list,
        description="accepted items per label (or topic): KEY=N, repeatable; n = the sum",
    )
    quota_by: Annotated[str | None, Flag(run="quota_by")] = Field(
        None, description="what --quota keys name: label or topic"
    )
    rpm: Annotated[int | None, Flag(run="rpm")] = Field(
        None, description="max LLM requests per minute"
    )
    tpm: Annotated[int | None, Flag(run="tpm")] = Field(
        None, description="max LLM tokens per minute"
    )
    checkpoint: Annotated[str | None, Flag(run="checkpoint")] = Field(
        None, description="step (resume mid-item) or item (less overhead)"
    )
    seed: Annotated[int | None, Flag(run="seed")] = Field(
        None, description="run seed (task ids depend on it)"
    )
    temperature: Annotated[float | None, Flag(run="temperature")] = Field(
        None, description="generator temperature"
    )
    option: Annotated[list[str], Flag(("--option",))] = Field(
        default_factory=list, description="recipe option key=value (repeatable)"
    )
    store: Annotated[Path | None, Flag(("--store",))] = Field(None, description=STORE_HELP)
    collection: Annotated[str | None, Flag(run="collection")] = Field(
        None, description="collection name in the store"
    )
    embedder: Annotated[str | None, Flag(("--embedder",))] = Field(None, description=EMBEDDER_HELP)
    provider: Annotated[str | None, Flag()] = Field(
        None, description="openai (any compatible endpoint) or local (GGUF)"
    )
    base_url: Annotated[str | None, Flag()] = Field(
        None, description="OpenAI-compatible base URL; several (replicas): comma-separated"
    )
    routing: Annotated[str | None, Flag()] = Field(
        None, description="least-loaded (default) or round-robin over the base URLs"
    )
    endpoint_rpm: Annotated[int | None, Flag()] = Field(
        None, ge=1, description="max requests per minute to each base URL"
    )
    model: Annotated[str | None, Flag()] = Field(None, description="model name at the endpoint")
    gguf: Annotated[Path | None, Flag()] = Field(None, description="GGUF file for the local model")
    overwrite: Annotated[bool, Flag()] = Field(
        False, description="replace the run in --out (once the endpoint answers; runs only)"
    )
    wait: Annotated[bool, Flag()] = Field(
        False, description="wait while another process writes --out (default: stop)"
    )
    progress: Annotated[bool, Flag()] = Field(True, description="show live progress")
    workers: Annotated[int | None, Flag()] = Field(
        None, ge=1, description="worker processes on Ray, one exact target (needs [scale])"
    )
    ray_address: Annotated[str | None, Flag()] = Field(
        None, description="join this Ray cluster (e.g. auto, or HOST:6379) instead of a local one"
    )


def flag_of(name: str) -> Flag:
    """The :class:`Flag` metadata of option ``name``."""
    return next(m for m in GenerateOptions.model_fields[name].metadata if isinstance(m, Flag))


@dataclass(frozen=True)
class ResolvedRun:
    """What :func:`resolve` makes of the options: the run, settings, endpoints, directory."""

    run: RunConfig
    settings: Settings
    endpoints: dict[str, EndpointSettings]
    out_dir: Path


def resolve(
    options: GenerateOptions,
    file_cfg: FileConfig | None,
    env_settings: Callable[[Path | None, str | None], Settings],
) -> ResolvedRun:
    """Map the options onto a run: a given option overrides the config file (an option left
    at a non-None default, such as ``--recipe qa``, does not override a file that sets it),
    the file overrides ``RunConfig``'s defaults; endpoints come from the environment
    (``env_settings(store, embedder)``) with option and per-role file overrides."""
    run_data: dict[str, Any] = dict(file_cfg.run) if file_cfg else {}
    for name, field in GenerateOptions.model_fields.items():
        target, value = flag_of(name).run, getattr(options, name)
        if target is None or value is None:
            continue
        if value != field.default or target not in run_data:
            run_data[target] = value
    if options.option:
        run_data["recipe_options"] = {
            **run_data.get("recipe_options", {}),
            **parse_recipe_options(options.option),
        }
    if options.quota:
        run_data["quotas"] = parse_quotas(options.quota)
    run = RunConfig.model_validate(run_data)

    env_update: dict[str, Any] = {
        key: getattr(options, key)
        for key in ("provider", "base_url", "model", "routing", "endpoint_rpm")
        if getattr(options, key) is not None
    }
    if options.gguf is not None:
        if not options.gguf.is_file():
            raise ConfigError(f"GGUF file not found: {options.gguf}")
        env_update["gguf_path"] = str(options.gguf)
    if options.routing not in (None, "least-loaded", "round-robin"):
        raise ConfigError(f"unknown routing '{options.routing}' (use least-loaded or round-robin)")
    if options.provider not in (None, "openai", "local", "auto"):
        raise ConfigError(f"unknown provider '{options.provider}' (use openai or local)")
    settings = env_settings(options.store, options.embedder).model_copy(update=env_update)
    endpoints = settings.endpoints()
    if file_cfg and file_cfg.endpoints:
        default = file_cfg.endpoints.get("default")
        for role in endpoints:
            ep = file_cfg.endpoints.get(role, default)
            if ep is not None:
                endpoints[role] = ep
    out_dir = options.out_dir or Path("runs") / f"{run.recipe}-{run.seed}"
    return ResolvedRun(run, settings, endpoints, out_dir)


def parse_recipe_options(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; a value that parses as JSON is taken as JSON, else as text."""
    options: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--option expects key=value, got '{pair}'")
        key, value = pair.split("=", 1)
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def parse_quotas(pairs: list[str]) -> dict[str, int]:
    """``KEY=N`` pairs with a whole number N."""
    quotas: dict[str, int] = {}
    for pair in pairs:
        key, _, count = pair.rpartition("=")
        if not key.strip() or not count.strip().isdigit():
            raise ConfigError(f"--quota expects KEY=N with a whole number N, got '{pair}'")
        quotas[key.strip()] = int(count)
    return quotas
