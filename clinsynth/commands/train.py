"""``clinsynth train``: fine-tune a classifier on real / synthetic / hybrid data and score it.

BioBERT by default (a loud MiniLM fallback offline), several seeds, accuracy / ROC-AUC /
PR-AUC / F1 / precision / recall as mean ± sd, written to a results JSON.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from clinsynth.cli_support import UserError, console, guard, out
from clinsynth.commands._qa_examples import load_qa_examples
from clinsynth.commands._train_report import QA_METRICS, _flag_lines, _table, _write

SETS = ("real", "synthetic", "hybrid")
QA_DEFAULTS = {"max_length": 256, "epochs": 3.0, "lr": 3e-5, "decision": None}
"""--task qa: what an option left unset means (classification: ClassificationConfig's defaults,
chosen by bench/trials_real_only.py on inner splits of HINT/TOP; see README)."""


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` → ``[0, 1, 2]``."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise UserError(f"--seeds expects comma-separated whole numbers, got '{text}'") from exc
    if not seeds:
        raise UserError("--seeds needs at least one seed")
    return seeds


def train_sets(
    data: dict[str, list[Any]],
    eval_examples: list[Any],
    cfg: Any,
    seeds: list[int],
    *,
    save_model: Path | None = None,
    on_step: Any = None,
) -> dict[str, Any]:
    """Train one classifier per (set, seed) and score each on ``eval_examples``, beside the
    majority-class and TF-IDF + LR baselines fitted on the same set and scored on the same eval.

    ``data`` maps a set name to its :class:`~clinsynth.datasets.trials.Example` list. Returns the
    results dict written by ``clinsynth train`` (per set: runs, mean ± sd summary, baselines,
    ``vs_baselines`` with ``beats_all`` and the failures).
    """
    from clinsynth.finetune import train_with_baselines

    eval_pairs = [(e.text, e.label) for e in eval_examples]
    results: dict[str, Any] = {}
    backbone: dict[str, Any] | None = None
    for name, examples in data.items():
        pairs = [(e.text, e.label) for e in examples]

        def seen(seed: int, result: Any, name: str = name) -> None:
            if save_model is not None and seed == seeds[0]:
                result.classifier.save(save_model if len(data) == 1 else save_model / name)
            if on_step is not None:
                on_step()

        summary = train_with_baselines(pairs, eval_pairs, cfg, seeds, on_result=seen)
        backbone = summary.pop("backbone")
        summary["n_train"] = len(pairs)
        summary["label_counts"] = dict(Counter(e.label for e in examples))
        results[name] = summary
    return {"backbone": backbone, "sets": results}


def train_qa_sets(
    data: dict[str, list[Any]], eval_examples: list[Any], cfg: Any, seeds: list[int]
) -> dict[str, Any]:
    """Train one extractive-QA reader per (set, seed); EM / F1 / Reference Overlap on eval."""
    from clinsynth.finetune import run_seeds, train_reader

    results: dict[str, Any] = {}
    backbone: dict[str, Any] | None = None
    for name, examples in data.items():

        def one(seed: int, examples: list[Any] = examples) -> dict[str, Any]:
            nonlocal backbone
            reader = train_reader(examples, cfg.model_copy(update={"seed": seed}))
            backbone = reader.backbone.model_dump() if reader.backbone else None
            return dict(reader.evaluate(eval_examples))

        summary = run_seeds(one, seeds)
        summary["n_train"] = len(examples)
        results[name] = summary
    return {"backbone": backbone, "sets": results}


def train_command(
    real: Annotated[
        list[Path] | None, typer.Option(help="real training data: trial table, CSV or JSONL")
    ] = None,
    synthetic: Annotated[
        list[Path] | None, typer.Option(help="synthetic data: a run directory or a JSONL file")
    ] = None,
    eval_data: Annotated[
        list[Path] | None, typer.Option("--eval", help="evaluation data (required)")
    ] = None,
    sets: Annotated[
        str | None, typer.Option(help="comma list of real,synthetic,hybrid [all available]")
    ] = None,
    task: Annotated[
        str, typer.Option(help="classification, or qa (extractive reader; SQuAD JSON / qa runs)")
    ] = "classification",
    seeds: Annotated[str, typer.Option(help="comma-separated seeds")] = "0,1,2",
    backbone: Annotated[
        str | None, typer.Option(help="model dir or hub name [dmis-lab/biobert-base-cased-v1.2]")
    ] = None,
    fallback: Annotated[
        bool, typer.Option(help="fall back (loudly) to the bundled MiniLM when offline")
    ] = True,
    max_length: Annotated[
        int | None, typer.Option(min=8, max=512, help="[classification: chosen default; qa: 256]")
    ] = None,
    epochs: Annotated[
        float | None, typer.Option(min=0.01, help="[classification: chosen default; qa: 3]")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="overrides --epochs")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    lr: Annotated[
        float | None, typer.Option(min=0.0, help="[classification: chosen default; qa: 3e-5]")
    ] = None,
    decision: Annotated[
        str | None,
        typer.Option(
            help="binary: argmax, or val_f1 (hold out 20% of train, predict positive above "
            "the F1-best threshold there) [chosen default]"
        ),
    ] = None,
    text_field: Annotated[str, typer.Option(help="text column of generic tables")] = "text",
    label_field: Annotated[str, typer.Option(help="label column of generic tables")] = "label",
    positive_label: Annotated[
        str | None, typer.Option(help="binary positive class [success for trials, else last]")
    ] = None,
    trial_fields: Annotated[
        str | None, typer.Option(help="trial parts in the text, e.g. phase,conditions,... [all]")
    ] = None,
    out_path: Annotated[Path, typer.Option("--out", help="results JSON")] = Path(
        "train_results.json"
    ),
    save_model: Annotated[
        Path | None, typer.Option(help="save the first seed's classifier here (per set)")
    ] = None,
) -> None:
    """Fine-tune and evaluate a classifier on real, synthetic and hybrid training sets."""
    guard(
        _train,
        real=real or [],
        synthetic=synthetic or [],
        eval_data=eval_data or [],
        sets=sets,
        task=task,
        seeds=seeds,
        backbone=backbone,
        fallback=fallback,
        max_length=max_length,
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        lr=lr,
        decision=decision,
        text_field=text_field,
        label_field=label_field,
        positive_label=positive_label,
        trial_fields=trial_fields,
        out_path=out_path,
        save_model=save_model,
    )


def _load(paths: list[Path], kw: dict[str, Any]) -> list[Any]:
    from clinsynth.datasets.trials import TrialError, load_examples

    fields = kw["trial_fields"].split(",") if kw["trial_fields"] else None
    try:
        return [
            ex
            for p in paths
            for ex in load_examples(
                p, text_field=kw["text_field"], label_field=kw["label_field"], fields=fields
            )
        ]
    except TrialError as exc:
        raise UserError(str(exc)) from exc


def _train(**kw: Any) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from clinsynth.finetune import ClassificationConfig, FinetuneError

    kw["seeds"] = parse_seeds(kw["seeds"])
    if kw["decision"] not in (None, "argmax", "val_f1"):
        raise UserError(f"--decision {kw['decision']} is not supported (use argmax or val_f1)")
    if kw["task"] not in ("classification", "qa"):
        raise UserError(f"--task {kw['task']} is not supported (use classification or qa)")
    if not kw["eval_data"]:
        raise UserError("--eval PATH is required")
    if kw["task"] == "qa":
        _train_qa(kw)
        return
    evals = _load(kw["eval_data"], kw)
    real = _load(kw["real"], kw)
    synth = _load(kw["synthetic"], kw)
    eval_ids = {e.id for e in evals}
    dropped = {"real": 0, "synthetic": 0}
    for name, examples in (("real", real), ("synthetic", synth)):
        keep = [e for e in examples if e.id not in eval_ids]
        dropped[name] = len(examples) - len(keep)
        examples[:] = keep
    available = {"real": real, "synthetic": synth, "hybrid": real + synth if real and synth else []}
    wanted = kw["sets"].split(",") if kw["sets"] else [s for s in SETS if available[s]]
    unknown = [s for s in wanted if s not in SETS]
    if unknown:
        raise UserError(f"unknown --sets {unknown} (use real, synthetic, hybrid)")
    data = {s: available[s] for s in wanted}
    empty = [s for s, ex in data.items() if not ex]
    if empty or not data:
        raise UserError(
            f"no training data for set(s) {empty or wanted}: give --real and/or --synthetic"
        )
    labels = sorted({e.label for ex in data.values() for e in ex} | {e.label for e in evals})
    positive = kw["positive_label"] or (
        "success" if set(labels) == {"failure", "success"} else None
    )
    chosen = {k: kw[k] for k in ("max_length", "epochs", "lr", "decision") if kw[k] is not None}
    cfg = ClassificationConfig(
        backbone=kw["backbone"],
        allow_fallback=kw["fallback"],
        max_steps=kw["max_steps"],
        batch_size=kw["batch_size"],
        **chosen,
        labels=labels,
        positive_label=positive,
    )
    if dropped["real"] or dropped["synthetic"]:
        console.print(
            f"[yellow]dropped {dropped['real']} real and {dropped['synthetic']} synthetic "
            "training examples whose id is in the evaluation set[/]"
        )
    steps = len(data) * len(kw["seeds"])
    bar = Progress(
        TextColumn("[bold]training"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    start = time.perf_counter()
    with bar:
        task_id = bar.add_task("train", total=steps)
        try:
            results = train_sets(
                data,
                evals,
                cfg,
                kw["seeds"],
                save_model=kw["save_model"],
                on_step=lambda: bar.advance(task_id),
            )
        except FinetuneError as exc:
            raise UserError(str(exc)) from exc
    report = {
        "task": "classification",
        "seeds": kw["seeds"],
        "config": cfg.model_dump(mode="json"),
        "data": {
            "real": [str(p) for p in kw["real"]],
            "synthetic": [str(p) for p in kw["synthetic"]],
            "eval": [str(p) for p in kw["eval_data"]],
            "n_eval": len(evals),
            "eval_label_counts": dict(Counter(e.label for e in evals)),
            "dropped_eval_overlap": dropped,
        },
        **results,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    _write(kw["out_path"], report)
    out.print(_table(results))
    for line in _flag_lines(results):
        console.print(f"[bold yellow]{line}[/]", highlight=False)
    out.print(f"results → {kw['out_path']}")


def _train_qa(kw: dict[str, Any]) -> None:
    from clinsynth.finetune import FinetuneError, QAConfig

    def load(paths: list[Path]) -> list[Any]:
        try:
            return [ex for p in paths for ex in load_qa_examples(p)]
        except FinetuneError as exc:  # a SQuAD file that is not SQuAD JSON
            raise UserError(str(exc)) from exc

    kw = {**kw, **{k: v for k, v in QA_DEFAULTS.items() if kw.get(k) is None}}
    evals, real, synth = load(kw["eval_data"]), load(kw["real"]), load(kw["synthetic"])
    available = {"real": real, "synthetic": synth, "hybrid": real + synth if real and synth else []}
    wanted = kw["sets"].split(",") if kw["sets"] else [s for s in SETS if available[s]]
    if any(s not in SETS for s in wanted) or not wanted or not all(available[s] for s in wanted):
        raise UserError(f"no training data for --sets {wanted}: give --real and/or --synthetic")
    cfg = QAConfig(
        backbone=kw["backbone"],
        allow_fallback=kw["fallback"],
        max_length=max(kw["max_length"], 16),
        doc_stride=min(128, kw["max_length"] // 4),
        max_query_length=min(64, kw["max_length"] // 4),
        epochs=kw["epochs"],
        max_steps=kw["max_steps"],
        batch_size=kw["batch_size"],
        lr=kw["lr"],
    )
    start = time.perf_counter()
    with console.status(f"training {len(wanted) * len(kw['seeds'])} readers…"):
        try:
            results = train_qa_sets({s: available[s] for s in wanted}, evals, cfg, kw["seeds"])
        except FinetuneError as exc:
            raise UserError(str(exc)) from exc
    report = {
        "task": "qa",
        "seeds": kw["seeds"],
        "config": cfg.model_dump(mode="json"),
        "data": {"n_eval": len(evals), "eval": [str(p) for p in kw["eval_data"]]},
        **results,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    _write(kw["out_path"], report)
    out.print(_table(results, QA_METRICS))
    out.print(f"results → {kw['out_path']}")


def register(app: typer.Typer) -> None:
    """Add ``train`` to the CLI."""
    app.command("train")(train_command)
