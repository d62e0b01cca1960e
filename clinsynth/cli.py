"""Command line: ``clinsynth ingest | generate | inspect``.

User mistakes end in one red line and exit code 2; a run stopped by an endpoint failure ends
in one line and exit code 1, and the same command resumes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from clinsynth.cli_support import (
    EmbedderOpt,
    StoreOpt,
    UserError,
    console,
    guard,
    out,
    phase,
    run_app,
    settings_from_env,
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Generate synthetic clinical training data with checked quality.",
)
CollectionOpt = Annotated[str, typer.Option("--collection", help="collection name in the store")]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("clinsynth")
        except PackageNotFoundError:  # run from a source tree that was never installed
            found = "unknown (not installed)"
        out.print(f"clinsynth {found}")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", help="print the version and exit", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Generate synthetic clinical training data with checked quality."""


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
        with phase(f"opening the store {settings.store} ('{collection}')"):
            emb = make_embedder(settings.embedder)
            vs = VectorStore(settings.store, emb, collection=collection)
        load = getattr(emb, "load", None)
        if callable(load):
            with phase(f"loading the embedding model ({settings.embedder})"):
                load()
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
            f"'{collection}' at {vs.path} ({stats.seconds:.1f}s; collection now holds "
            f"{vs.count()} chunks)",
            markup=False,
        )

    guard(_do)


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
