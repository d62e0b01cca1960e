"""``clinsynth train-reader``: train and cache the default extractive-QA reader.

The reader is what makes difficulty measurable: without one, the qa recipe's difficulty is
the lexical proxy, which did not predict held-out reader failure, so it is "not graded" and
the chat cannot make items harder. This command runs the same training code as
bench/qa_reader.py (``clinsynth.finetune.qa_fit.fit_reader``: sliding windows over whole
documents, every answer window plus sampled no-answer windows per epoch) with the settings
that benchmark chose on COVID-QA train, and saves the reader where ``--reader`` /
``reader_path`` can use it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from clinsynth.cli_support import UserError, console, guard, out
from clinsynth.evaluators.difficulty import DEFAULT_READER_DIR

# Chosen by bench/qa_reader.py's selection on COVID-QA train (see bench/results/qa_reader.json).
DEFAULTS = {"lr": 1e-4, "negatives": 4, "epochs": 4, "max_answer_length": 64}


def _default_train() -> Path | None:
    root = os.environ.get("CLINSYNTH_SHARED_DATA")
    return Path(root) / "covid_qa" / "train.json" if root else None


def register(app: typer.Typer) -> None:
    """Add the ``train-reader`` command."""

    @app.command("train-reader")
    def train_reader_cmd(
        train: Annotated[
            Path | None,
            typer.Option(
                help="SQuAD-format JSON of whole documents [$CLINSYNTH_SHARED_DATA/covid_qa/"
                "train.json]"
            ),
        ] = None,
        out_dir: Annotated[Path, typer.Option("--out", help="where to cache the reader")] = Path(
            DEFAULT_READER_DIR
        ),
        backbone: Annotated[
            str | None, typer.Option(help="model directory [the bundled MiniLM-L6]")
        ] = None,
        device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
        epochs: Annotated[int, typer.Option(min=1)] = int(DEFAULTS["epochs"]),
        lr: Annotated[float, typer.Option(min=0.0)] = float(DEFAULTS["lr"]),
        negatives: Annotated[
            int, typer.Option(min=0, help="no-answer windows per question per epoch")
        ] = int(DEFAULTS["negatives"]),
        max_questions: Annotated[
            int | None, typer.Option(min=1, help="train on the first N questions only (a trial)")
        ] = None,
    ) -> None:
        """Train and cache the default QA reader that grades difficulty. Slow on CPU: COVID-QA
        train (1,417 questions over whole articles, ~35k windows) takes hours on 2 cores and
        a few minutes on one GPU; use --device cuda where there is one."""
        guard(_train, train, out_dir, backbone, device, epochs, lr, negatives, max_questions)


def _train(
    train: Path | None,
    out_dir: Path,
    backbone: str | None,
    device: str,
    epochs: int,
    lr: float,
    negatives: int,
    max_questions: int | None,
) -> None:
    from clinsynth.finetune import FinetuneError, QAConfig, fallback_model_dir, load_squad_json
    from clinsynth.finetune.qa_fit import fit_reader

    path = train or _default_train()
    if path is None:
        raise UserError("--train is required (or set CLINSYNTH_SHARED_DATA to the data folder)")
    try:
        examples = load_squad_json(path)[:max_questions]
        cfg = QAConfig(
            backbone=backbone or str(fallback_model_dir()),
            max_length=384,
            doc_stride=128,
            batch_size=64,
            lr=lr,
            epochs=epochs,
            negatives_per_example=negatives,
            max_answer_length=int(DEFAULTS["max_answer_length"]),
        )
        t0 = time.perf_counter()
        reader = fit_reader(examples, cfg, device=device, progress=console.print)
        reader.save(out_dir)
    except FinetuneError as exc:
        raise UserError(str(exc)) from exc
    out.print(
        f"trained a reader on {len(examples)} questions ({reader.train_stats['n_windows_total']} "
        f"windows) in {time.perf_counter() - t0:.0f}s → {out_dir}; use it with "
        f"--reader {out_dir} (chat) or --option reader_path={out_dir} (generate)"
    )
