"""The ``finetune_evaluate`` tool: fine-tune per seed on data files, report mean ± sd.

Reads its data from a run directory, an ``accepted.jsonl``, a JSONL file or (QA) a SQuAD
JSON file; every problem with the data or the training is a :class:`ToolError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clinsynth.tools.models import FinetuneArgs, FinetuneResult, ToolError


def finetune_evaluate(args: FinetuneArgs) -> FinetuneResult:
    """Fine-tune on ``args.train`` once per seed, score on ``args.eval``, report mean ± sd."""
    from clinsynth import finetune as ft

    try:
        if args.task == "classification":
            return _finetune_classifier(args, ft)
        return _finetune_reader(args, ft)
    except (ft.FinetuneError, ValueError) as exc:
        raise ToolError(str(exc)) from exc


def _finetune_classifier(args: FinetuneArgs, ft: Any) -> FinetuneResult:
    train = _pairs(Path(args.train), args.text_field, args.label_field)
    held = _pairs(Path(args.eval), args.text_field, args.label_field)
    extra: dict[str, Any] = {"max_length": args.max_length} if args.max_length else {}
    if args.decision:
        extra["decision"] = args.decision
    if args.epochs:
        extra["epochs"] = args.epochs
    cfg = ft.ClassificationConfig(
        backbone=args.backbone,
        max_steps=args.max_steps,
        labels=sorted({y for _, y in train + held}),
        **extra,
    )
    report = ft.train_with_baselines(train, held, cfg, args.seeds)
    backbone = report["backbone"]
    verdict = report["vs_baselines"]
    warnings = []
    if not verdict["beats_all"]:
        warnings.append(
            "the fine-tuned model does not beat its baselines: " + "; ".join(verdict["failures"])
        )
    return FinetuneResult(
        task=args.task,
        backbone=backbone["path_or_name"],
        fell_back=backbone["fell_back"],
        n_train=len(train),
        n_eval=len(held),
        runs=[{k: v for k, v in run.items() if _is_number(v)} for run in report["runs"]],
        summary=report["summary"],
        baselines={k: v["summary"] for k, v in report["baselines"].items()},
        beats_baselines=verdict["beats_all"],
        warnings=warnings,
    )


def _finetune_reader(args: FinetuneArgs, ft: Any) -> FinetuneResult:
    train = _qa_examples(Path(args.train), ft)
    held = _qa_examples(Path(args.eval), ft)
    extra = {"max_length": args.max_length} if args.max_length else {}
    backbones: list[Any] = []

    def one(seed: int) -> dict[str, Any]:
        cfg = ft.QAConfig(
            backbone=args.backbone,
            epochs=args.epochs or 2.0,
            max_steps=args.max_steps,
            seed=seed,
            **extra,
        )
        reader = ft.train_reader(train, cfg)
        backbones.append(reader.backbone)
        scores = ft.qa_scores(reader.predict(held), held)
        return {k: v for k, v in scores.items() if _is_number(v)}

    report = ft.run_seeds(one, args.seeds)
    backbone = backbones[0]
    return FinetuneResult(
        task=args.task,
        backbone=backbone.path_or_name if backbone else str(args.backbone),
        fell_back=bool(backbone and backbone.fell_back),
        n_train=len(train),
        n_eval=len(held),
        runs=report["runs"],
        summary=report["summary"],
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _rows(path: Path) -> list[dict[str, Any]]:
    """JSONL rows of a file, or of ``accepted.jsonl`` in a run directory."""
    from clinsynth.runtime.passages import read_passages, restore_row
    from clinsynth.runtime.runfiles import RunFileError, iter_jsonl

    file = path / "accepted.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise ToolError(f"data file not found: {file}")
    try:
        passages = read_passages(file)  # a run stores each passage once, beside its rows
        return [
            restore_row(row, passages)
            for row in iter_jsonl(file, whole_last_line=not path.is_dir())
        ]
    except RunFileError as exc:
        raise ToolError(str(exc)) from exc


def _pairs(path: Path, text_field: str, label_field: str) -> list[tuple[str, str]]:
    """(text, label) pairs from plain rows or from item records (fields looked up in ``item``);
    a blank/NaN/None label is an error naming the row."""
    from clinsynth.datasets.tables import TableError, check_label

    pairs = []
    for i, row in enumerate(_rows(path)):
        item = row.get("item")
        data: dict[str, Any] = item if isinstance(item, dict) else row
        if text_field not in data or label_field not in data:
            raise ToolError(f"{path} row {i} lacks '{text_field}' or '{label_field}'")
        try:
            label = check_label(data[label_field], f"{path} row {i}", label_field)
        except TableError as exc:
            raise ToolError(str(exc)) from exc
        pairs.append((str(data[text_field]), label))
    return pairs


def _qa_examples(path: Path, ft: Any) -> list[Any]:
    """QA examples from a SQuAD JSON file, a run's item records, or plain QAExample rows."""
    if path.suffix == ".json":
        return list(ft.load_squad_json(path))
    examples = []
    for i, row in enumerate(_rows(path)):
        item = row.get("item")
        if isinstance(item, dict):
            answerable = bool(item.get("answerable")) and item.get("answer_start") is not None
            examples.append(
                ft.QAExample(
                    id=str(row.get("id", i)),
                    question=item["question"],
                    context=item["context"],
                    answer_text=item["answer"] if answerable else None,
                    answer_start=item["answer_start"] if answerable else None,
                )
            )
        else:
            examples.append(ft.QAExample.model_validate({"id": str(i), **row}))
    return examples
