"""The trial corpus: loaders, the shared leak scrubber, ingestion and the balance filter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinsynth.datasets.trials import (
    TrialError,
    TrialIndex,
    TrialRecord,
    balanced_interventions,
    drop_leak_fields,
    ingest_trials,
    load_trials,
    read_labels,
    record_of,
    scrub_leaks,
    scrub_text,
    trial_text,
)
from clinsynth.memory.embeddings import HashingEmbedder
from clinsynth.memory.store import VectorStore
from clinsynth.testing.trials_responder import write_hint_table
from tests.conftest import SHARED_DATA

# A hand-made ClinicalTrials.gov v2 study, in the layout the API returns (fictional content).
CTGOV_STUDY = {
    "protocolSection": {
        "identificationModule": {
            "nctId": "NCT99999901",
            "briefTitle": "Deltamab in Adults With Recurrent Migraine",
        },
        "statusModule": {
            "overallStatus": "TERMINATED",
            "whyStopped": "Sponsor decision after slow enrollment",
        },
        "descriptionModule": {
            "briefSummary": "This study tests deltamab for migraine prevention. "
            "The study was terminated early due to poor accrual."
        },
        "conditionsModule": {"conditions": ["Migraine"]},
        "designModule": {"phases": ["PHASE2", "PHASE3"]},
        "armsInterventionsModule": {
            "interventions": [
                {"type": "DRUG", "name": "Deltamab"},
                {"type": "DRUG", "name": "Placebo"},
            ]
        },
        "outcomesModule": {
            "primaryOutcomes": [{"measure": "Monthly migraine days", "timeFrame": "12 weeks"}]
        },
        "eligibilityModule": {
            "eligibilityCriteria": "Inclusion Criteria:\n\n* Adults 18-65\n\n"
            "Exclusion Criteria:\n\n* Pregnancy"
        },
    },
    "hasResults": False,
}


def test_scrubber_removes_outcome_sentences_and_keeps_criteria() -> None:
    text = (
        "Adults who failed prior chemotherapy are eligible. The study was terminated early "
        "due to poor accrual. ECOG performance status 0-2.\nOverall status: Terminated\n"
        "Why stopped: futility"
    )
    clean = scrub_text(text)
    assert "failed prior chemotherapy" in clean  # a criterion, not an outcome
    assert "performance status 0-2" in clean
    for leak in ("terminated", "accrual", "Overall status", "futility", "Why stopped"):
        assert leak.lower() not in clean.lower()
    assert scrub_text("Terminated") == ""
    assert scrub_text("Adults over 18.") == "Adults over 18."


def test_one_scrubber_for_real_and_synthetic_records() -> None:
    leaky = dict(
        title="Trial of X",
        summary="X in adults. The trial was withdrawn before enrolment.",
        eligibility_criteria="Inclusion Criteria: adults. Lack of efficacy led to closure.",
        interventions=["X"],
    )
    for source in ("hint_top", "synthetic"):
        rec = scrub_leaks(TrialRecord(id="a", source=source, **leaky))
        assert "withdrawn" not in rec.summary and "efficacy" not in rec.eligibility_criteria
        assert rec.summary == "X in adults."


def test_drop_leak_fields_is_case_blind() -> None:
    row = {"nctid": "N", "Status": "terminated", "why_stop": "x", "overall_status": "y", "a": 1}
    assert drop_leak_fields(row) == {"nctid": "N", "a": 1}


def test_hint_loader_never_copies_status(tmp_path: Path) -> None:
    recs = load_trials(write_hint_table(tmp_path / "h.csv"))
    assert len(recs) == 4 + 4 + 4 + 4 + 4 + 1
    assert {r.label for r in recs} == {"success", "failure"}
    assert all(r.source == "hint_top" for r in recs)
    assert recs[0].interventions == ["alphamab", "placebo"]
    for rec in recs:
        text = trial_text(rec).lower()
        assert "terminated" not in text and "accrual" not in text and "completed" not in text
        assert "Inclusion Criteria" in rec.eligibility_criteria


def test_ctgov_loader_ignores_status_and_takes_labels(tmp_path: Path) -> None:
    path = tmp_path / "studies.json"
    path.write_text(json.dumps({"studies": [CTGOV_STUDY]}))
    (tmp_path / "labels.csv").write_text("nctid,label\nNCT99999901,0\n")
    [rec] = load_trials(path, read_labels(tmp_path / "labels.csv"))
    assert rec.id == "NCT99999901" and rec.label == "failure" and rec.source == "ctgov"
    assert rec.phase == "phase 2/phase 3"
    assert rec.interventions == ["Deltamab", "Placebo"]
    assert rec.outcome_measures == ["Monthly migraine days"]
    text = trial_text(rec)
    assert "deltamab for migraine prevention" in text
    for leak in ("TERMINATED", "terminated", "Sponsor decision", "enrollment"):
        assert leak not in text
    # a single study object (not wrapped) reads the same; no labels → unlabelled
    path.write_text(json.dumps(CTGOV_STUDY))
    assert load_trials(path)[0].label is None


def test_loader_errors(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(TrialError, match="not a HINT/TOP or TrialBench"):
        load_trials(tmp_path / "x.csv")
    with pytest.raises(TrialError, match="not found"):
        load_trials(tmp_path / "missing.csv")


def test_balance_filter_thresholds() -> None:
    rows = [(["A", "placebo"], "success")] * 3 + [(["a"], "failure")] * 3
    rows += [(["B"], "success")] * 5 + [(["B"], "failure")] * 2 + [(["C"], None)] * 9
    assert balanced_interventions(rows) == {"a": {"success": 3, "failure": 3}}
    assert list(balanced_interventions(rows, exclude=["A"])) == []
    assert list(balanced_interventions(rows, min_failure=2)) == ["a", "b"]
    assert list(balanced_interventions(rows, min_success=4, min_failure=2)) == ["b"]
    assert list(balanced_interventions(rows, min_success=1, min_failure=1)) == ["a", "b"]


def test_balance_filter_exact_counts() -> None:
    rows = [(["A"], "success")] * 3 + [(["A"], "failure")] * 2
    assert balanced_interventions(rows) == {}
    assert balanced_interventions([*rows, (["A"], "failure")]) == {
        "a": {"success": 3, "failure": 3}
    }


def test_ingest_keeps_eval_ids_out_of_training(tmp_path: Path) -> None:
    store = VectorStore(tmp_path / "s", HashingEmbedder(), collection="trials")
    recs = load_trials(write_hint_table(tmp_path / "h.csv"))
    held = recs[:2]
    ingest_trials(held, store, split="eval")
    stats = ingest_trials(recs, store, split="train")
    assert stats.trials == len(recs) and stats.kept_eval == 2
    index = TrialIndex.from_store(store)
    train_ids = {i for ids in index.by_pair.values() for i in ids}
    assert not train_ids & {r.id for r in held}
    assert index.ids("alphamab", "success") == sorted(
        r.id for r in recs[2:] if "alphamab" in r.interventions and r.label == "success"
    )
    chunk = store.get([recs[5].id])[0]
    assert chunk.metadata["intervention"] == "alphamab" and chunk.metadata["split"] == "train"
    assert record_of(chunk) == recs[5]


@pytest.mark.skipif(not (SHARED_DATA / "hint_top").is_dir(), reason="shared data absent")
def test_shared_tables_load() -> None:
    hint = load_trials(SHARED_DATA / "hint_top" / "phase_I_valid.csv")
    assert len(hint) == 117 and sum(r.label == "success" for r in hint) == 67
    bench = load_trials(SHARED_DATA / "trialbench_approval_phase4" / "train.csv")
    assert len(bench) == 714 and all(r.title for r in bench)
    assert sum(r.label == "success" for r in bench) == 286
