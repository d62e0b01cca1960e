"""What every CLI command shares: consoles, one-line errors, settings from the environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from clinsynth.config import ConfigError, Settings, one_line

StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="vector store directory [env CLINSYNTH_STORE]")
]
EmbedderOpt = Annotated[
    str | None,
    typer.Option("--embedder", help="minilm (default) or hashing (fast, low quality, for tests)"),
]
"""Options every command that opens the vector store shares (same flag, same help)."""

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2."""


def fail(message: str, code: int) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _user_errors() -> tuple[type[BaseException], ...]:
    from clinsynth.llm import LLMConfigError
    from clinsynth.memory.embeddings import EmbeddingError
    from clinsynth.memory.ingest import IngestError
    from clinsynth.memory.store import StoreError

    return (UserError, ConfigError, IngestError, StoreError, EmbeddingError, LLMConfigError)


def _run_errors() -> tuple[type[BaseException], ...]:
    from clinsynth.graphs.batch import RunAborted
    from clinsynth.llm import LLMEndpointError

    return (RunAborted, LLMEndpointError)


def guard(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``, turning expected failures into one-line errors (never a traceback)."""
    from pydantic import ValidationError

    try:
        return fn(*args, **kwargs)
    except ValidationError as exc:
        fail(one_line(exc), 2)
    except _user_errors() as exc:
        fail(str(exc), 2)
    except _run_errors() as exc:
        fail(f"{exc} (rerun the same command to resume)", 1)
    except KeyboardInterrupt:
        fail("interrupted; rerun the same command to resume", 130)


def settings_from_env(store: Path | None = None, embedder: str | None = None) -> Settings:
    """Settings from ``CLINSYNTH_*`` with command-line overrides."""
    from pydantic import ValidationError

    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(f"bad CLINSYNTH_* environment: {one_line(exc)}") from exc
    update: dict[str, Any] = {}
    if store is not None:
        update["store"] = store
    if embedder is not None:
        if embedder not in ("minilm", "hashing"):
            raise UserError(f"unknown embedder '{embedder}' (use minilm or hashing)")
        update["embedder"] = embedder
    return settings.model_copy(update=update)
