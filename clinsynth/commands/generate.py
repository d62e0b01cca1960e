"""``clinsynth generate``: its parameters come from :class:`GenerateOptions`, its run from
:func:`clinsynth.generate_options.resolve`."""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from clinsynth.cli_support import UserError, console, guard, out, phase, settings_from_env
from clinsynth.config import RunConfig, load_config_file
from clinsynth.generate_options import GenerateOptions, ResolvedRun, flag_of, resolve
from clinsynth.runtime import aio
from clinsynth.runtime.rundir import check_overwritable, clear_run_dir
from clinsynth.runtime.runlock import RunLock, describe_holder

SHOWN_DEFAULTS = {
    "out_dir": "runs/<recipe>-<seed>",
    "provider": "$CLINSYNTH_PROVIDER, else auto: local without a base URL",
    "base_url": "$CLINSYNTH_BASE_URL",
    "model": "$CLINSYNTH_MODEL",
    "max_candidates": "4 × n",
    "topic": "none: passages in corpus order",
    "difficulty": "any",
    "token_budget": "no limit",
    "cost_budget": "no limit",
    "wall_time": "no limit",
    "rpm": "no limit",
    "tpm": "no limit",
    "gguf": "$CLINSYNTH_GGUF_PATH",
    "temperature": "the recipe's",
    "config": "none",
}
"""What an option left out means, where the option's own default is None ("not given")."""


def shown_default(name: str, field: FieldInfo) -> str | None:
    """The default ``--help`` shows for option ``name`` when typer would show none: the
    ``RunConfig`` default it falls back to, or what :data:`SHOWN_DEFAULTS` says."""
    if field.default not in (None, PydanticUndefined) or field.default_factory is not None:
        return None
    if name in SHOWN_DEFAULTS:
        return SHOWN_DEFAULTS[name]
    run_field = flag_of(name).run
    if run_field is not None:
        default = RunConfig.model_fields[run_field].default
        if default not in (None, PydanticUndefined):
            return str(default)
    return None


def _parameter(name: str, field: FieldInfo) -> inspect.Parameter:
    """The typer parameter of one option: its flags, help text and default."""
    annotation: Any = field.annotation
    default = field.default
    if field.default_factory is not None:  # a repeatable option: typer's "not given" is None
        annotation, default = annotation | None, None
    text = field.description or ""
    shown = shown_default(name, field)
    if shown is not None:
        text = f"{text} [default: {shown}]"
    option = typer.Option(*flag_of(name).names, help=text)
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[annotation, option],
    )


def generate(**given: Any) -> None:
    """Generate items through the agent graph; rerun the same command to resume."""
    guard(
        lambda: run_generate(
            GenerateOptions.model_validate({k: v for k, v in given.items() if v is not None})
        )
    )


generate.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [_parameter(name, field) for name, field in GenerateOptions.model_fields.items()]
)


def register(app: typer.Typer) -> None:
    """Add ``generate`` to the CLI."""
    app.command()(generate)


def run_generate(options: GenerateOptions) -> None:
    """Resolve the options, check the endpoints, and run holding the run directory's lock."""
    with phase("loading libraries (LangGraph, Chroma, model clients)", show=options.progress):
        from clinsynth.graphs.factory import endpoint_config
        from clinsynth.llm import check_endpoint

    file_cfg = load_config_file(options.config) if options.config else None
    resolved = resolve(options, file_cfg, settings_from_env)
    out_dir = resolved.out_dir
    _check_distributed(options, resolved)
    if options.overwrite:
        check_overwritable(out_dir)  # a folder of the user's is refused before anything runs

    for ep in {e.model_dump_json(): e for e in resolved.endpoints.values()}.values():
        where = ep.base_url or f"local model {ep.gguf_path or ''}".strip()
        with phase(
            f"checking the endpoint {where} ({ep.model or 'default model'})", show=options.progress
        ):
            aio.run(check_endpoint(endpoint_config(ep)))

    def waiting(holder: str) -> None:
        console.print(f"waiting for {holder} to finish with {out_dir}…", highlight=False)

    with RunLock(out_dir, wait=options.wait, on_wait=waiting) as lock:
        if lock.stale is not None:
            console.print(
                f"note: {describe_holder(lock.stale)} stopped without releasing {out_dir}; "
                "taking it over",
                highlight=False,
            )
        _run_locked(options, resolved, lock)


def _run_distributed(
    options: GenerateOptions, resolved: ResolvedRun, deps: Any, on_progress: Any
) -> Any:
    """``--workers`` / ``--ray-address``: the run on Ray workers (``clinsynth.scale``)."""
    from clinsynth.scale.driver import DistributedRun, RayUnreachable

    driver = DistributedRun(
        resolved,
        deps,
        options.workers or 1,
        address=options.ray_address,
        on_progress=lambda p, _run: on_progress(p),
    )
    try:
        return driver.run()
    except RayUnreachable as exc:
        raise UserError(str(exc)) from exc


def _check_distributed(options: GenerateOptions, resolved: ResolvedRun) -> None:
    """Refuse, before anything runs, what a distributed run cannot do."""
    if options.workers is None and options.ray_address is None:
        return
    from clinsynth.scale.driver import RayMissing, RayUnreachable, check_reachable, import_ray

    if resolved.run.cost_budget is not None:
        raise UserError("--cost-budget is not supported with --workers; use --token-budget")
    try:
        import_ray()
        if options.ray_address is not None:
            check_reachable(options.ray_address)
    except (RayMissing, RayUnreachable) as exc:
        raise UserError(str(exc)) from exc


class LineProgress:
    """Progress as plain lines for a log or a pipe (no terminal): a line at most every
    ``every_s`` seconds while the counts change, and one at the end; never cut to a width."""

    def __init__(self, total: int, every_s: float = 5.0) -> None:
        self.total, self.every_s = total, every_s
        self.fields: dict[str, int] = {"completed": 0, "rejected": 0, "attempts": 0, "tokens": 0}
        self.t0 = self.printed_at = time.monotonic()
        self.printed: dict[str, int] | None = None

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._line()

    def update(self, _task: Any, **fields: int) -> None:
        self.fields.update(fields)
        if time.monotonic() - self.printed_at >= self.every_s:
            self._line()

    def _line(self) -> None:
        if self.fields == self.printed:
            return
        f = self.fields
        console.print(
            Text(
                f"accepted {f['completed']}/{self.total} · rejected {f['rejected']} · attempts "
                f"{f['attempts']} · tokens {f['tokens']:,} · {time.monotonic() - self.t0:.0f} s"
            ),
            highlight=False,
        )
        self.printed, self.printed_at = dict(f), time.monotonic()


def _progress_bar(total: int, show: bool) -> tuple[Any, Any]:
    if show and not console.is_terminal:
        return LineProgress(total), None
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "rejected {task.fields[rejected]} · attempts {task.fields[attempts]} · "
            "tokens {task.fields[tokens]}"
        ),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
    )
    return bar, bar.add_task("accepted", total=total, rejected=0, attempts=0, tokens=0)


def _run_locked(options: GenerateOptions, resolved: ResolvedRun, lock: RunLock) -> None:
    """Build the run and run it, holding the directory's lock; ``--overwrite`` empties the
    directory only once the endpoint answered and the store is known to hold the corpus."""
    from clinsynth.graphs.batch import BatchRunner
    from clinsynth.graphs.batch import Progress as RunProgress
    from clinsynth.graphs.factory import build_deps
    from clinsynth.memory.cache import ReasoningCache
    from clinsynth.runtime.inference import load_models

    run, settings, out_dir = resolved.run, resolved.settings, resolved.out_dir
    cache_path: Path = out_dir / "reasoning_cache.sqlite"
    with phase(f"opening the store {settings.store} ('{run.collection}')", show=options.progress):
        deps, meter = build_deps(
            settings,
            run,
            endpoints=resolved.endpoints,
            cache_path=None if options.overwrite else cache_path,
        )
        chunks = deps.store.count()
    if chunks == 0:
        raise UserError(
            f"collection '{run.collection}' at {deps.store.path} is empty — "
            "run `clinsynth ingest PATH` first"
        )
    with phase(
        f"loading models (embedder {settings.embedder}; the {run.recipe} recipe's checks)",
        show=options.progress,
    ):
        load_models(deps)  # the run would load them itself; here the wait is shown and timed
    if options.overwrite:
        clear_run_dir(out_dir)
        deps.cache = ReasoningCache(cache_path)
    names = ", ".join(sorted(set(deps.llm.describe().values())))
    console.print(
        f"recipe [bold]{escape(run.recipe)}[/] · target {run.n} · concurrency "
        f"{run.max_concurrency} · models {escape(names)} · out {escape(str(out_dir))}",
        highlight=False,
    )
    bar, task_id = _progress_bar(run.n, options.progress)

    def on_progress(p: RunProgress) -> None:
        bar.update(
            task_id,
            completed=p.accepted,
            rejected=p.rejected,
            attempts=p.attempts,
            tokens=p.usage.total_tokens,
        )

    if options.workers is not None or options.ray_address is not None:
        with bar:
            summary = _run_distributed(options, resolved, deps, on_progress)
    else:
        # The CLI's process runs nothing else: it may tune the collector for the run.
        runner = BatchRunner(
            deps, out_dir, on_progress=on_progress, meter=meter, lock=lock, gc_tuning=True
        )
        with bar:
            summary = aio.run(runner.run())
    cost = f" · cost {summary.cost:.4g}" if summary.cost is not None else ""
    quotas = f" · per {run.quota_by} {summary.quotas}" if run.quotas else ""
    out.print(
        f"{summary.stop_reason}: {summary.accepted} accepted, {summary.rejected} rejected, "
        f"{summary.surplus} surplus of "
        f"{summary.candidates} candidates · {summary.usage.total_tokens} tokens{cost}{quotas} · "
        f"{summary.wall_s:.1f}s{' (resumed)' if summary.resumed else ''} → {out_dir}"
    )
    if summary.accepted < run.n:
        how = "rerun the same command" if summary.stop_reason == "wall time" else "raise it"
        console.print(
            f"[bold yellow]warning:[/] target not reached ({summary.accepted} of {run.n} "
            f"accepted): {summary.detail}; {how} to continue",
            highlight=False,
        )
