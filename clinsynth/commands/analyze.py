"""``clinsynth analyze RUN --real PATH``: similarity of synthetic to real data, and a t-SNE."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clinsynth.cli_support import EmbedderOpt, UserError, console, guard, out, settings_from_env


def analyze_command(
    run_dir: Annotated[Path, typer.Argument(help="a run directory (its accepted.jsonl)")],
    real: Annotated[list[Path], typer.Option(help="real data: trial table, CSV or JSONL")],
    embedder: EmbedderOpt = None,
    max_per_set: Annotated[int, typer.Option(min=2, help="items embedded per set")] = 500,
    seed: Annotated[int, typer.Option(help="sampling and t-SNE seed")] = 0,
    text_field: Annotated[str, typer.Option(help="text column of generic tables")] = "text",
    label_field: Annotated[str, typer.Option(help="label column of generic tables")] = "label",
    tsne: Annotated[bool, typer.Option(help="also draw the t-SNE PNG")] = True,
) -> None:
    """Write RUN/analysis/similarity.json (cosine within real, within synthetic, across) and
    RUN/analysis/tsne.png."""

    def _do() -> None:
        from clinsynth.datasets.trials import TrialError, load_examples
        from clinsynth.evaluators.analysis import similarity_analysis
        from clinsynth.memory.embeddings import make_embedder

        if not (run_dir / "accepted.jsonl").is_file():
            raise UserError(f"{run_dir} has no accepted.jsonl (not a run directory?)")
        try:
            syn = load_examples(run_dir, text_field=text_field, label_field=label_field)
            reals = [
                ex
                for p in real
                for ex in load_examples(p, text_field=text_field, label_field=label_field)
            ]
        except TrialError as exc:
            raise UserError(str(exc)) from exc
        if not syn:
            raise UserError(f"{run_dir} has no accepted items")
        if not reals:
            raise UserError("no labelled real items in " + ", ".join(map(str, real)))
        settings = settings_from_env(None, embedder)
        with console.status(f"embedding {len(reals)} real and {len(syn)} synthetic items…"):
            summary = similarity_analysis(
                [(e.text, e.label) for e in reals],
                [(e.text, e.label) for e in syn],
                make_embedder(settings.embedder),
                run_dir / "analysis",
                max_per_set=max_per_set,
                seed=seed,
                tsne=tsne,
            )
        parts = [
            f"{name} {summary[name]['mean']:.3f}"
            for name in ("within_real", "within_synthetic", "across")
        ]
        out.print(
            f"mean cosine: {', '.join(parts)}; nearest real of synthetic "
            f"{summary['nearest_real_of_synthetic']['mean']:.3f} → {run_dir / 'analysis'}"
        )

    guard(_do)


def register(app: typer.Typer) -> None:
    """Add ``analyze`` to the CLI."""
    app.command("analyze")(analyze_command)
