"""``clinsynth ingest-labelled``: store a labelled CSV as few-shot examples for ``notes``.

Each row becomes one document whose metadata holds only its label (as text, under ``label``)
and its source, so ``generate --recipe notes`` can draw examples of one label with the
default ``label_field``. Long texts are kept whole up to ``--chunk-size`` characters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clinsynth.cli_support import UserError, console, guard, out, settings_from_env


def register(app: typer.Typer) -> None:
    """Add ``ingest-labelled`` to the CLI."""

    @app.command("ingest-labelled")
    def ingest_labelled(
        data: Annotated[Path, typer.Argument(help="a CSV with text and label columns")],
        text_col: Annotated[str, typer.Option(help="text column")],
        label_col: Annotated[str, typer.Option(help="label column")],
        store: Annotated[
            Path | None, typer.Option("--store", help="vector store [env CLINSYNTH_STORE]")
        ] = None,
        collection: Annotated[str, typer.Option(help="collection name")] = "corpus",
        embedder: Annotated[str | None, typer.Option(help="minilm or hashing")] = None,
        chunk_size: Annotated[int, typer.Option(min=100, help="characters per chunk")] = 4000,
        reset: Annotated[bool, typer.Option(help="empty the collection first")] = False,
    ) -> None:
        """Store labelled texts (one document per row, label in metadata) for ``notes``."""

        def _do() -> None:
            from clinsynth.commands.correct_labels import read_labelled_csv
            from clinsynth.memory.embeddings import make_embedder
            from clinsynth.memory.ingest import Document, chunk_documents
            from clinsynth.memory.store import VectorStore

            rows = read_labelled_csv(data, text_col, label_col)
            labels = sorted({row[label_col].strip() for row in rows})
            if len(labels) < 2:
                raise UserError(f"{data}: only one label ({labels[0]!r}) in {label_col!r}")
            settings = settings_from_env(store, embedder)
            vs = VectorStore(
                settings.store, make_embedder(settings.embedder), collection=collection
            )
            if reset:
                vs.reset()
            docs = [
                Document(
                    id=f"{data.stem}-{i}",
                    text=row[text_col],
                    metadata={"label": row[label_col].strip(), "source": str(data)},
                )
                for i, row in enumerate(rows)
            ]
            with console.status(f"embedding {len(docs)} labelled texts…"):
                chunks = list(chunk_documents(docs, chunk_size=chunk_size, chunk_overlap=0))
                vs.add(chunks)
            out.print(
                f"ingested {len(docs)} labelled texts → {len(chunks)} chunks into "
                f"'{collection}' at {settings.store}; labels: {', '.join(labels)}"
            )

        guard(_do)
