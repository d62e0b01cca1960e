"""Command line: ``clinsynth ingest | generate | inspect``.

User mistakes end in one red line and exit code 2; a run stopped by an endpoint failure ends
in one line and exit code 1, and the same command resumes it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from clinsynth import aio
from clinsynth.cli_support import (
    EmbedderOpt,
    StoreOpt,
    UserError,
    console,
    guard,
    out,
    run_app,
    settings_from_env,
)
from clinsynth.config import EndpointSettings, RunConfig, Settings, load_config_file
from clinsynth.tools.rundir import check_overwritable, clear_run_dir
from clinsynth.tools.runlock import RunLock, describe_holder

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Generate synthetic clinical training data with checked quality.",
)
CollectionOpt = Annotated[str, typer.Option("--collection", help="collection name in the store")]


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="a .jsonl or .csv file, or a folder of .txt/.md")],
    store: StoreOpt = None,
    collection: CollectionOpt = "corpus",
    text_field: Annotated[str | None, typer.Option(help="text column / field")] = None,
    id_field: Annotated[str | None, typer.Option(help="id column / field")] = None,
    chunk_size: Annotated[int, typer.Option(min=100, help="characters per chunk")] = 1200,
    chunk_overlap: Annotated[int, typer.Option(min=0, help="characters shared by chunks")] = 150,
    embedder: EmbedderOpt = None,
    reset: Annotated[
        bool, typer.Option(help="empty the collection first (once the corpus parsed fully)")
    ] = False,
) -> None:
    """Chunk, embed and store a corpus for retrieval."""

    def _do() -> None:
        from clinsynth.memory.embeddings import make_embedder
        from clinsynth.memory.ingest import ingest as run_ingest
        from clinsynth.memory.store import VectorStore

        if chunk_overlap >= chunk_size:
            raise UserError("--chunk-overlap must be smaller than --chunk-size")
        settings = settings_from_env(store, embedder)
        vs = VectorStore(settings.store, make_embedder(settings.embedder), collection=collection)
        with console.status("ingesting…") as status:

            def tick(n: int) -> None:
                status.update(f"ingesting… {n} chunks embedded")

            stats = run_ingest(
                path,
                vs,
                text_field=text_field,
                id_field=id_field,
                chunk_size=chunk_size,
                chunk_overlap=chunk_overlap,
                reset=reset,
                progress=tick,
            )
        out.print(
            f"ingested {stats.documents} documents ({stats.unchanged} already stored as is, "
            f"{stats.replaced} changed, {stats.duplicates} duplicates skipped) → "
            f"{stats.chunks} chunks written, {stats.stale_chunks} stale deleted, into "
            f"'{collection}' at {settings.store} ({stats.seconds:.1f}s; collection now holds "
            f"{vs.count()} chunks)",
            markup=False,
        )

    guard(_do)


def _parse_options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"--option expects key=value, got '{pair}'")
        key, value = pair.split("=", 1)
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def _parse_quotas(pairs: list[str]) -> dict[str, int]:
    quotas: dict[str, int] = {}
    for pair in pairs:
        key, _, count = pair.rpartition("=")
        if not key.strip() or not count.strip().isdigit():
            raise UserError(f"--quota expects KEY=N with a whole number N, got '{pair}'")
        quotas[key.strip()] = int(count)
    return quotas


@app.command()
def generate(
    recipe: Annotated[str, typer.Option("--recipe", "-r", help="recipe name")] = "qa",
    n: Annotated[int | None, typer.Option("-n", help="accepted items wanted")] = None,
    topic: Annotated[str | None, typer.Option(help="retrieve passages about this topic")] = None,
    difficulty: Annotated[str | None, typer.Option(help="target difficulty, e.g. hard")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="run directory [runs/<recipe>-<seed>]")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML/JSON run + endpoint config")] = None,
    max_attempts: Annotated[int | None, typer.Option(help="generator attempts per item")] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(help="LLM requests in flight at once (an endpoint gets 2x as many items)"),
    ] = None,
    max_candidates: Annotated[int | None, typer.Option(help="stop after N candidates")] = None,
    token_budget: Annotated[int | None, typer.Option(help="stop after N tokens")] = None,
    cost_budget: Annotated[
        float | None, typer.Option(help="stop after this spend (needs --price-in/--price-out)")
    ] = None,
    price_in: Annotated[
        float | None, typer.Option("--price-in", help="price per 1,000 prompt tokens")
    ] = None,
    price_out: Annotated[
        float | None, typer.Option("--price-out", help="price per 1,000 completion tokens")
    ] = None,
    wall_time: Annotated[
        float | None, typer.Option(help="stop after this many seconds (rerun to continue)")
    ] = None,
    quota: Annotated[
        list[str] | None,
        typer.Option(help="accepted items per label (or topic): KEY=N, repeatable; n = the sum"),
    ] = None,
    quota_by: Annotated[
        str | None, typer.Option(help="what --quota keys name: label (default) or topic")
    ] = None,
    rpm: Annotated[int | None, typer.Option(help="max LLM requests per minute")] = None,
    tpm: Annotated[int | None, typer.Option(help="max LLM tokens per minute")] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(help="step (default; resume mid-item) or item (less overhead)"),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="run seed (task ids depend on it)")] = None,
    temperature: Annotated[float | None, typer.Option(help="generator temperature")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", help="recipe option key=value (repeatable)")
    ] = None,
    store: StoreOpt = None,
    collection: Annotated[str | None, typer.Option(help="collection name in the store")] = None,
    embedder: EmbedderOpt = None,
    provider: Annotated[
        str | None, typer.Option(help="openai (any compatible endpoint) or local (GGUF)")
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL")] = None,
    model: Annotated[str | None, typer.Option(help="model name at the endpoint")] = None,
    gguf: Annotated[Path | None, typer.Option(help="GGUF file for the local model")] = None,
    overwrite: Annotated[
        bool,
        typer.Option(help="replace the run in --out (once the endpoint answers; runs only)"),
    ] = False,
    wait: Annotated[
        bool, typer.Option(help="wait while another process writes --out (default: stop)")
    ] = False,
    progress: Annotated[bool, typer.Option(help="show live progress")] = True,
) -> None:
    """Generate items through the agent graph; rerun the same command to resume."""
    guard(
        _generate,
        recipe=recipe,
        n=n,
        topic=topic,
        difficulty=difficulty,
        out_dir=out_dir,
        config=config,
        max_attempts=max_attempts,
        concurrency=concurrency,
        max_candidates=max_candidates,
        token_budget=token_budget,
        cost_budget=cost_budget,
        price_in=price_in,
        price_out=price_out,
        wall_time=wall_time,
        quota=quota or [],
        quota_by=quota_by,
        rpm=rpm,
        tpm=tpm,
        checkpoint=checkpoint,
        seed=seed,
        temperature=temperature,
        option=option or [],
        store=store,
        collection=collection,
        embedder=embedder,
        provider=provider,
        base_url=base_url,
        model=model,
        gguf=gguf,
        overwrite=overwrite,
        wait=wait,
        show_progress=progress,
    )


def _generate(**kw: Any) -> None:
    from clinsynth.graphs.factory import endpoint_config
    from clinsynth.llm import check_endpoint

    file_cfg = load_config_file(kw["config"]) if kw["config"] else None
    run_data: dict[str, Any] = dict(file_cfg.run) if file_cfg else {}
    cli_run = {
        "recipe": kw["recipe"] if kw["recipe"] != "qa" or "recipe" not in run_data else None,
        "n": kw["n"],
        "topic": kw["topic"],
        "difficulty": kw["difficulty"],
        "max_attempts": kw["max_attempts"],
        "max_concurrency": kw["concurrency"],
        "max_candidates": kw["max_candidates"],
        "token_budget": kw["token_budget"],
        "cost_budget": kw["cost_budget"],
        "price_per_1k_input": kw["price_in"],
        "price_per_1k_output": kw["price_out"],
        "wall_time_s": kw["wall_time"],
        "quota_by": kw["quota_by"],
        "rpm": kw["rpm"],
        "tpm": kw["tpm"],
        "checkpoint": kw["checkpoint"],
        "seed": kw["seed"],
        "temperature": kw["temperature"],
        "collection": kw["collection"],
    }
    run_data.update({k: v for k, v in cli_run.items() if v is not None})
    if kw["option"]:
        run_data["recipe_options"] = {
            **run_data.get("recipe_options", {}),
            **_parse_options(kw["option"]),
        }
    if kw["quota"]:
        run_data["quotas"] = _parse_quotas(kw["quota"])
    run = RunConfig.model_validate(run_data)

    env_update: dict[str, Any] = {}
    for key in ("provider", "base_url", "model"):
        if kw[key] is not None:
            env_update[key] = kw[key]
    if kw["gguf"] is not None:
        if not kw["gguf"].is_file():
            raise UserError(f"GGUF file not found: {kw['gguf']}")
        env_update["gguf_path"] = str(kw["gguf"])
    if env_update.get("provider") not in (None, "openai", "local", "auto"):
        raise UserError(f"unknown provider '{env_update['provider']}' (use openai or local)")
    settings = settings_from_env(kw["store"], kw["embedder"]).model_copy(update=env_update)
    endpoints = settings.endpoints()
    if file_cfg and file_cfg.endpoints:
        default = file_cfg.endpoints.get("default")
        for role in endpoints:
            ep: EndpointSettings | None = file_cfg.endpoints.get(role, default)
            if ep is not None:
                endpoints[role] = ep

    out_dir: Path = kw["out_dir"] or Path("runs") / f"{run.recipe}-{run.seed}"
    if kw["overwrite"]:
        check_overwritable(out_dir)  # a folder of the user's is refused before anything runs

    for ep in {e.model_dump_json(): e for e in endpoints.values()}.values():
        aio.run(check_endpoint(endpoint_config(ep)))

    def waiting(holder: str) -> None:
        console.print(f"waiting for {holder} to finish with {out_dir}…", highlight=False)

    with RunLock(out_dir, wait=kw["wait"], on_wait=waiting) as lock:
        if lock.stale is not None:
            console.print(
                f"note: {describe_holder(lock.stale)} stopped without releasing {out_dir}; "
                "taking it over",
                highlight=False,
            )
        _generate_locked(kw, run, settings, endpoints, out_dir, lock)


def _generate_locked(
    kw: dict[str, Any],
    run: RunConfig,
    settings: Settings,
    endpoints: dict[str, EndpointSettings],
    out_dir: Path,
    lock: RunLock,
) -> None:
    """Build the run and run it, holding ``out_dir``'s lock; ``--overwrite`` empties the
    directory only once the endpoint answered and the store is known to hold the corpus."""
    from clinsynth.graphs.batch import BatchRunner
    from clinsynth.graphs.batch import Progress as RunProgress
    from clinsynth.graphs.factory import build_deps
    from clinsynth.memory.cache import ReasoningCache

    cache_path = out_dir / "reasoning_cache.sqlite"
    deps, meter = build_deps(
        settings, run, endpoints=endpoints, cache_path=None if kw["overwrite"] else cache_path
    )
    if deps.store.count() == 0:
        raise UserError(
            f"collection '{run.collection}' at {settings.store} is empty — "
            "run `clinsynth ingest PATH` first"
        )
    if kw["overwrite"]:
        clear_run_dir(out_dir)
        deps.cache = ReasoningCache(cache_path)
    models = deps.llm.describe()
    names = ", ".join(sorted(set(models.values())))
    console.print(
        f"recipe [bold]{escape(run.recipe)}[/] · target {run.n} · concurrency "
        f"{run.max_concurrency} · models {escape(names)} · out {escape(str(out_dir))}",
        highlight=False,
    )

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
        disable=not kw["show_progress"],
    )
    task_id = bar.add_task("accepted", total=run.n, rejected=0, attempts=0, tokens=0)

    def on_progress(p: RunProgress) -> None:
        bar.update(
            task_id,
            completed=p.accepted,
            rejected=p.rejected,
            attempts=p.attempts,
            tokens=p.usage.total_tokens,
        )

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


def _register_extensions() -> None:
    """Add the commands of every module in ``clinsynth.commands`` (each has ``register``)."""
    import importlib
    import pkgutil

    import clinsynth.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"clinsynth.commands.{info.name}").register(app)


_register_extensions()


def main() -> None:
    """Entry point of the ``clinsynth`` script."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(run_app(app))


if __name__ == "__main__":
    main()
