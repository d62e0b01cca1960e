"""``clinsynth generate``: its parameters come from :class:`GenerateOptions`, its run from
:func:`clinsynth.generate_options.resolve`."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic.fields import FieldInfo
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from clinsynth.cli_support import UserError, console, guard, out, settings_from_env
from clinsynth.config import load_config_file
from clinsynth.generate_options import GenerateOptions, ResolvedRun, flag_of, resolve
from clinsynth.runtime import aio
from clinsynth.runtime.rundir import check_overwritable, clear_run_dir
from clinsynth.runtime.runlock import RunLock, describe_holder


def _parameter(name: str, field: FieldInfo) -> inspect.Parameter:
    """The typer parameter of one option: its flags, help text and default."""
    annotation: Any = field.annotation
    default = field.default
    if field.default_factory is not None:  # a repeatable option: typer's "not given" is None
        annotation, default = annotation | None, None
    option = typer.Option(*flag_of(name).names, help=field.description)
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
    from clinsynth.graphs.factory import endpoint_config
    from clinsynth.llm import check_endpoint

    file_cfg = load_config_file(options.config) if options.config else None
    resolved = resolve(options, file_cfg, settings_from_env)
    out_dir = resolved.out_dir
    _check_distributed(options, resolved)
    if options.overwrite:
        check_overwritable(out_dir)  # a folder of the user's is refused before anything runs

    for ep in {e.model_dump_json(): e for e in resolved.endpoints.values()}.values():
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
    from clinsynth.scale.driver import DistributedRun

    driver = DistributedRun(
        resolved,
        deps,
        options.workers or 1,
        address=options.ray_address,
        on_progress=lambda p, _run: on_progress(p),
    )
    return driver.run()


def _check_distributed(options: GenerateOptions, resolved: ResolvedRun) -> None:
    """Refuse, before anything runs, what a distributed run cannot do."""
    if options.workers is None and options.ray_address is None:
        return
    from clinsynth.scale.driver import RayMissing, import_ray

    if resolved.run.cost_budget is not None:
        raise UserError("--cost-budget is not supported with --workers; use --token-budget")
    try:
        import_ray()
    except RayMissing as exc:
        raise UserError(str(exc)) from exc


def _progress_bar(total: int, show: bool) -> tuple[Progress, Any]:
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

    run, settings, out_dir = resolved.run, resolved.settings, resolved.out_dir
    cache_path: Path = out_dir / "reasoning_cache.sqlite"
    deps, meter = build_deps(
        settings,
        run,
        endpoints=resolved.endpoints,
        cache_path=None if options.overwrite else cache_path,
    )
    if deps.store.count() == 0:
        raise UserError(
            f"collection '{run.collection}' at {deps.store.path} is empty — "
            "run `clinsynth ingest PATH` first"
        )
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
