"""``clinsynth export``: every format loads back with ``datasets`` and ``pandas``, the training
tool reads the files, and the card propagates the sources' licences (HINT: non-commercial)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from clinsynth.datasets.licences import combined_licence, licence_of, licences_of
from clinsynth.runtime.passages import compact_row, passage_row
from clinsynth.schemas import ItemRecord, Provenance, Task
from clinsynth.tools.export import ExportError, export_run

DOC = "Atrial fibrillation was found on a routine ECG. Apixaban 5 mg twice daily was started."


def record(recipe: str, i: int, item: dict[str, Any], sources: list[str], **scores: float) -> dict:
    rec = ItemRecord(
        id=f"{recipe}-0-{i:06d}",
        status="accepted",
        task=Task(id=f"{recipe}-0-{i:06d}", index=i, recipe=recipe, label=item.get("label")),
        item=item,
        provenance=Provenance(
            source_ids=sources,
            recipe=recipe,
            model="stub-model",
            prompt_version=f"{recipe}-v1",
            attempts=1,
            critic_scores=scores,
        ),
    )
    return rec.model_dump(mode="json")


def make_run(
    path: Path,
    recipe: str,
    rows: list[dict[str, Any]],
    passages: list[dict[str, Any]],
    rejected: list[dict[str, Any]] | None = None,
) -> Path:
    path.mkdir(parents=True)
    manifest = {
        "recipe": {"name": recipe, "prompt_version": f"{recipe}-v1"},
        "run": {"recipe": recipe, "n": len(rows), "seed": 0, "recipe_options": {}},
        "models": {"generator": "stub-model"},
        "versions": {"clinsynth": "0.1.0"},
        "stop_reason": "target reached",
        "tokens": {"total_tokens": 1234},
    }
    (path / "manifest.json").write_text(json.dumps(manifest))
    (path / "passages.jsonl").write_text("".join(json.dumps(p) + "\n" for p in passages))
    stored = {p["id"] for p in passages}
    lines = [json.dumps(compact_row(r, stored)) + "\n" for r in rows]
    (path / "accepted.jsonl").write_text("".join(lines))
    (path / "rejected.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rejected or []))
    return path


def qa_item(question: str, answer: str | None) -> dict[str, Any]:
    start = DOC.index(answer) if answer else None
    return {
        "question": question,
        "context_id": "af.md#0",
        "context": DOC,
        "answer": answer or "unanswerable",
        "answerable": answer is not None,
        "answer_start": start,
        "answer_end": start + len(answer) if answer else None,
    }


@pytest.fixture
def qa_run(tmp_path: Path) -> Path:
    rows = [
        record(
            "qa", 0, qa_item("Which drug was begun?", "Apixaban 5 mg"), ["af.md#0"], difficulty=0.8
        ),
        record("qa", 1, qa_item("What was the INR?", None), ["af.md#0"], difficulty=0.4),
        record("qa", 2, qa_item("How was it found?", "a routine ECG"), ["af.md#0"], difficulty=0.6),
    ]
    source = "/data/covid_qa/contexts.jsonl"
    return make_run(
        tmp_path / "qa-run", "qa", rows, [passage_row("af.md#0", DOC, {"source": source})]
    )


def test_every_format_loads_back_with_datasets_and_pandas(qa_run: Path) -> None:
    import datasets
    import pandas as pd

    results = {fmt: export_run(qa_run, fmt) for fmt in ("jsonl", "csv", "parquet", "hf")}  # type: ignore[arg-type]
    assert all(r.rows == 3 for r in results.values())
    assert results["jsonl"].columns == ["id", "context", "question", "answers"]
    jsonl = pd.read_json(results["jsonl"].data_path, lines=True)
    csv = pd.read_csv(results["csv"].data_path)
    cache = str(qa_run.parent / "hf-cache")  # not the user's ~/.cache
    parquet = datasets.load_dataset(
        "parquet", data_files=results["parquet"].data_path, split="train", cache_dir=cache
    )
    hf = datasets.load_from_disk(results["hf"].out_dir)
    assert list(jsonl["id"]) == list(csv["id"]) == parquet["id"] == hf["id"]
    assert list(csv.columns) == ["id", "context", "question", "answers"]
    # SQuAD v2 shape: the answer is a span of the context; unanswerable has empty lists.
    for row in hf:
        answers = row["answers"]
        if row["id"] == "qa-0-000001":
            assert answers == {"text": [], "answer_start": []}
        else:
            (text,), (start,) = answers["text"], answers["answer_start"]
            assert row["context"][start : start + len(text)] == text
    assert json.loads(csv["answers"][0]) == parquet[0]["answers"] == jsonl["answers"][0]
    # The folder of a parquet export loads by its card's configs too.
    by_folder = datasets.load_dataset(results["parquet"].out_dir, split="train", cache_dir=cache)
    assert by_folder["id"] == parquet["id"]


def test_the_training_tool_reads_exported_qa_files(qa_run: Path) -> None:
    from clinsynth.commands.train import load_qa_examples

    for fmt in ("jsonl", "parquet"):
        result = export_run(qa_run, fmt)  # type: ignore[arg-type]
        examples = {e.id: e for e in load_qa_examples(Path(result.data_path))}
        assert examples["qa-0-000000"].answer_text == "Apixaban 5 mg"
        assert examples["qa-0-000000"].answer_start == DOC.index("Apixaban")
        assert examples["qa-0-000001"].answer_text is None
    # and the run directory itself, whose rows no longer carry the passage
    assert {e.context for e in load_qa_examples(qa_run)} == {DOC}


def notes_run(path: Path) -> Path:
    rows = [
        record("notes", i, {"text": f"note {i} about chest pain", "label": lab}, [f"ex{i}"])
        for i, lab in enumerate(["cardio", "neuro", "cardio"])
    ]
    source = "/somewhere/mts_dialog/train.csv"
    passages = [passage_row(f"ex{i}", "example", {"source": source}) for i in range(3)]
    return make_run(path, "notes", rows, passages)


def test_classification_exports_are_text_label_and_train_reads_them(tmp_path: Path) -> None:
    from clinsynth.datasets.trials import load_examples

    run = notes_run(tmp_path / "notes-run")
    for fmt in ("jsonl", "csv", "parquet"):
        result = export_run(run, fmt)  # type: ignore[arg-type]
        assert result.columns == ["id", "text", "label"]
        examples = load_examples(Path(result.data_path))
        assert [(e.text, e.label) for e in examples][1] == ("note 1 about chest pain", "neuro")
    card = (run / "export" / "parquet" / "README.md").read_text()
    assert "license: cc-by-4.0" in card and 'task_categories:\n- "text-classification"' in card
    assert "| cardio | 2 |" in card


def trials_run(path: Path, sources: list[str]) -> Path:
    from clinsynth.datasets.trials.schema import TrialRecord

    trial = TrialRecord(
        id="SYN-trials-0-000000",
        title="Drug X in heart failure",
        phase="phase 2",
        conditions=["heart failure"],
        interventions=["drug x"],
        eligibility_criteria="Inclusion Criteria: adults",
        outcome_measures=["mortality"],
        summary="A trial.",
        label="success",
        source="synthetic",
    ).model_dump(mode="json")
    ids = [f"NCT{i}" for i in range(len(sources))]
    passages = [
        passage_row(i, "real trial", {"source": s}) for i, s in zip(ids, sources, strict=True)
    ]
    return make_run(path, "trials", [record("trials", 0, trial, ids)], passages)


def front_matter(card: str) -> str:
    match = re.match(r"---\n(.*?)\n---\n", card, re.S)
    assert match, card[:200]
    return match.group(1)


@pytest.mark.parametrize(
    ("sources", "licence", "non_commercial"),
    [
        (["hint_top"], "other", True),
        (["hint_top", "trialbench"], "other", True),
        (["trialbench"], "mit", False),
        (["trialbench", "ctgov"], "other", False),
        (["/my/own/trials.csv"], "unknown", False),
    ],
)
def test_card_licence_propagates_from_the_sources(
    tmp_path: Path, sources: list[str], licence: str, non_commercial: bool
) -> None:
    run = trials_run(tmp_path / "trials-run", sources)
    result = export_run(run, "jsonl")
    head = front_matter((run / "export" / "jsonl" / "README.md").read_text())
    assert result.licence == licence and f"license: {licence}\n" in head + "\n"
    assert ("non-commercial" in head) is non_commercial
    row = json.loads((run / "export" / "jsonl" / "train.jsonl").read_text())
    assert row["label"] == "success" and "Drug X in heart failure" in row["text"]


def test_licence_lookup_reads_provenance_files(tmp_path: Path) -> None:
    folder = tmp_path / "hint_top"
    folder.mkdir()
    (folder / "PROVENANCE.md").write_text("- **License / terms**: Non-Commercial Use only.\n")
    lic = licence_of(str(folder / "phase_I_train.csv"))
    assert lic.dataset == "hint_top" and lic.non_commercial and "Non-Commercial" in lic.terms
    unknown = tmp_path / "mine"
    unknown.mkdir()
    (unknown / "PROVENANCE.md").write_text("- **License**: for non-commercial research\n")
    assert licence_of(str(unknown / "x.csv")).non_commercial
    assert combined_licence(licences_of([]))[0] == "unknown"


def test_fields_and_refusals(qa_run: Path, tmp_path: Path) -> None:
    result = export_run(qa_run, "jsonl", fields=["question"])
    assert result.columns == ["id", "question"]
    with pytest.raises(ExportError, match=r"unknown field.*nope.*exports: id, context"):
        export_run(qa_run, "jsonl", fields=["nope"])
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="already holds other files"):
        export_run(qa_run, "csv", foreign)
    assert export_run(qa_run, "csv", foreign, overwrite=True).rows == 3
    with pytest.raises(ExportError, match="not a run directory"):
        export_run(tmp_path, "jsonl")
