"""What every CLI command shares: consoles, one-line errors, settings from the environment."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from clinsynth.config import ConfigError, Settings, one_line
from clinsynth.generate_options import EMBEDDER_HELP, STORE_HELP

StoreOpt = Annotated[Path | None, typer.Option("--store", help=STORE_HELP)]
EmbedderOpt = Annotated[str | None, typer.Option("--embedder", help=EMBEDDER_HELP)]
"""Options every command that opens the vector store shares (same flag, same help)."""

_SQLITE_HINT = "if a run's database is damaged, run 'clinsynth repair RUN'"

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True, markup=False)
"""Results on stdout: never markup, as they quote paths and user input verbatim."""


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2."""


@contextmanager
def phase(what: str, *, show: bool = True) -> Iterator[None]:
    """A start-up step (loading a model, opening the store, checking the endpoint) shown
    while it runs (a spinner on a terminal) and then as one line with its time, on stderr;
    without a terminal only the line, never a half-drawn spinner."""
    t0 = time.perf_counter()
    if show and console.is_terminal:
        with console.status(Text(f"{what}…")):
            yield
    else:
        yield
    if show:
        line = Text.assemble(("✓ ", "green"), what, (f" ({time.perf_counter() - t0:.1f} s)", "dim"))
        console.print(line, highlight=False)


def print_error(message: str) -> None:
    """Print ``error: message`` on stderr as one line, ``message`` verbatim (never read as
    markup: it may quote paths and user input)."""
    line = " ".join(message.splitlines())
    console.print(Text.assemble(("error:", "bold red"), " ", line), highlight=False)


def fail(message: str, code: int) -> NoReturn:
    """:func:`print_error` ``message`` and exit with ``code``."""
    print_error(message)
    raise typer.Exit(code)


def run_app(app: typer.Typer, args: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; a usage mistake (unknown option, missing
    argument, bad value) is one ``error:`` line naming the command's ``--help``, as every
    other user mistake, instead of the usage box."""
    from typer.exceptions import TyperException

    command = typer.main.get_command(app)
    polish_help(command)
    try:
        code = command.main(args=args, prog_name="clinsynth", standalone_mode=False)
    except TyperException as exc:  # typer's (vendored click) usage and parameter errors
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        code = int(getattr(exc, "exit_code", 2))
        if not message.strip():  # no arguments at all: the help was shown instead
            return code
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            message = f"{message} (see '{ctx.command_path} --help')"
        print_error(message)
        return code
    except typer.Abort:
        print_error("interrupted")
        return 130
    return code if isinstance(code, int) else 0


def polish_help(command: Any) -> None:
    """Make ``--help`` of ``command`` and its subcommands say what users type: a switch is
    shown as a switch (no ``<bool>``; no ``--no-x`` twin for one that is off unless given),
    and help texts are shown as written (a ``[...]`` in them is not read as Rich markup)."""
    import re

    from typer._click import Context

    params = list(command.params)
    help_option = command.get_help_option(Context(command))
    if help_option is not None:
        params.append(help_option)
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
            if param.default is False and param.secondary_opts:
                param.secondary_opts = []
                param.show_default = False
        if getattr(param, "help", None):
            param.help = re.sub(r"(?<!\\)\[", r"\\[", param.help)
    for sub in (getattr(command, "commands", None) or {}).values():
        polish_help(sub)


def _os_message(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc} (check the path and its permissions)"


def _user_errors() -> tuple[type[BaseException], ...]:
    from clinsynth.llm import LLMConfigError
    from clinsynth.memory.embeddings import EmbeddingError
    from clinsynth.memory.ingest import IngestError
    from clinsynth.memory.store import StoreError
    from clinsynth.runtime.runfiles import RunFileError

    return (
        UserError,
        ConfigError,
        IngestError,
        StoreError,
        EmbeddingError,
        LLMConfigError,
        RunFileError,
    )


def _run_errors() -> tuple[type[BaseException], ...]:
    from clinsynth.graphs.batch import RunAborted
    from clinsynth.llm import LLMEndpointError

    return (RunAborted, LLMEndpointError)


def guard(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``, turning expected failures into one-line errors (never a traceback).

    Unreadable files (OSError, text that is not UTF-8, invalid JSON, a damaged SQLite file)
    are user errors too: the line says what to do, and names the file where the error carries
    it (the readers of run, corpus, config and table files raise errors that always do).
    """
    from pydantic import ValidationError

    try:
        return fn(*args, **kwargs)
    except ValidationError as exc:
        fail(one_line(exc), 2)
    except _user_errors() as exc:
        fail(str(exc), 2)
    except _run_errors() as exc:
        fail(f"{exc} (rerun the same command to resume)", 1)
    except UnicodeDecodeError as exc:
        fail(f"a file is not UTF-8 text ({exc.reason}); save it as UTF-8", 2)
    except json.JSONDecodeError as exc:
        fail(f"invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})", 2)
    except sqlite3.Error as exc:
        fail(f"SQLite error ({exc}); {_SQLITE_HINT}", 2)
    except OSError as exc:
        fail(_os_message(exc), 2)
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
