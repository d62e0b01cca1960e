"""``clinsynth ingest-trials``: load trial tables / CT.gov JSON into the trial store."""

from __future__ import annotations

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
    settings_from_env,
)


def ingest_trials_command(
    paths: Annotated[
        list[Path], typer.Argument(help="HINT/TrialBench .csv or ClinicalTrials.gov .json files")
    ],
    store: StoreOpt = None,
    collection: Annotated[str, typer.Option(help="collection name in the store")] = "trials",
    split: Annotated[
        str, typer.Option(help="train (usable as examples) or eval (never used as examples)")
    ] = "train",
    labels: Annotated[
        Path | None, typer.Option(help="nctid,label CSV supplying labels (e.g. for CT.gov JSON)")
    ] = None,
    embedder: EmbedderOpt = None,
    reset: Annotated[bool, typer.Option(help="empty the collection first")] = False,
) -> None:
    """Scrub outcome leaks from trials and store them with intervention/label/phase/split."""

    def _do() -> None:
        from clinsynth.datasets.trials import (
            TrialError,
            TrialIndex,
            balanced_interventions,
            ingest_trials,
            load_trials,
            read_labels,
        )
        from clinsynth.memory.embeddings import make_embedder
        from clinsynth.memory.store import VectorStore

        if split not in ("train", "eval"):
            raise UserError(f"--split must be train or eval, got '{split}'")
        try:
            label_map = read_labels(labels) if labels else None
            records = [r for p in paths for r in load_trials(p, label_map)]
        except TrialError as exc:
            raise UserError(str(exc)) from exc
        if not records:
            raise UserError("no trials found in " + ", ".join(map(str, paths)))
        settings = settings_from_env(store, embedder)
        vs = VectorStore(settings.store, make_embedder(settings.embedder), collection=collection)
        if reset:
            vs.reset()
        with console.status(f"embedding {len(records)} trials…"):
            stats = ingest_trials(records, vs, split="eval" if split == "eval" else "train")
        index = TrialIndex.from_store(vs)
        balanced = balanced_interventions(index.rows, exclude=["placebo"])
        kept = f", {stats.kept_eval} kept as eval" if stats.kept_eval else ""
        out.print(
            f"ingested {stats.trials} trials ({stats.labelled} labelled, split {split}{kept}) "
            f"into '{collection}' at {settings.store}; the collection holds {vs.count()} "
            f"trials, {len(balanced)} interventions with ≥3 successful and ≥3 failed "
            "training trials"
        )

    guard(_do)


def register(app: typer.Typer) -> None:
    """Add ``ingest-trials`` to the CLI."""
    app.command("ingest-trials")(ingest_trials_command)
