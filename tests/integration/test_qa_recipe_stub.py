"""The qa recipe end to end through the CLI and the stub server: variants, the separate
answer-distillation call, a saved reader as difficulty scorer, and the run report."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from clinsynth.testing.qa_responder import make_responder, schema_name
from clinsynth.testing.stub_server import StubServer
from clinsynth.testing.tiny_bert import save_tiny_bert
from tests.integration.test_cli_generate import assert_accounted, cli_env, run_cli


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(make_responder("accept")) as server:
        yield server


def generate(stub: StubServer, store: Path, out: Path, *args: str) -> None:
    res = run_cli(
        ["generate", "--out", str(out), "--no-progress", "--max-attempts", "2", *args],
        cli_env(stub.base_url, store),
    )
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize(
    ("variant", "calls", "schemas"),
    [
        ("direct", 2, {"QADraft", "QAAnswer"}),
        ("summary+no_overlap", 3, {"ClinicalSummary", "QADraft", "QAAnswer"}),
    ],
)
def test_variant_and_distillation_calls(
    stub: StubServer,
    demo_store_path: Path,
    tmp_path: Path,
    variant: str,
    calls: int,
    schemas: set[str],
) -> None:
    out = tmp_path / "run"
    quota = ["--quota", "answerable=2", "--quota", "unanswerable=1"]
    generate(stub, demo_store_path, out, *quota, "--option", f"variant={variant}")
    accepted, _ = assert_accounted(out)
    chat = [r for r in stub.received if r.path.endswith("/chat/completions")]
    seen = Counter(schema_name(r.body) for r in chat)
    assert set(seen) == schemas
    assert seen["QAAnswer"] == seen["QADraft"], "every parsed draft is distilled once"
    labels = Counter(rec["item"]["answerable"] for rec in accepted)
    assert labels == {True: 2, False: 1}
    for rec in accepted:
        item = rec["item"]
        assert item["variant"] == variant and "draft_answer" in item
        assert rec["provenance"]["usage"]["calls"] == calls
        if item["answerable"]:
            assert item["context"][item["answer_start"] : item["answer_end"]] == item["answer"]
        else:
            assert item["answer"] == "unanswerable" and item["answer_start"] is None
    # The distiller saw the document and the question, never the generator's intended answer.
    for r in chat:
        if schema_name(r.body) == "QAAnswer":
            text = json.dumps(r.body)
            assert "Question to answer from the document" in text and "answer you have" not in text


@pytest.mark.slow
def test_saved_reader_scores_difficulty_and_report(
    stub: StubServer, demo_store_path: Path, tmp_path: Path
) -> None:
    from clinsynth.finetune import QAConfig, QAExample, train_reader

    tokens = [".", "?", "the", "fever", "days"]
    bert = save_tiny_bert(tmp_path / "bert", tokens, hidden=16, layers=1)
    ctx = "the fever lasted days ."
    example = QAExample(
        id="a", question="fever ?", context=ctx, answer_text="days", answer_start=17
    )
    cfg = QAConfig(
        backbone=str(bert), max_length=64, doc_stride=16, max_query_length=16, max_steps=1
    )
    train_reader([example], cfg).save(tmp_path / "reader")

    out = tmp_path / "run"
    generate(
        stub, demo_store_path, out, "-n", "2", "--option", f"reader_path={tmp_path / 'reader'}"
    )
    accepted, _ = assert_accounted(out)
    for rec in accepted:
        checks = {c["name"]: c for c in rec["history"][-1]["report"]["checks"]}
        # a configured reader grades with the validated reader-sentence measure
        assert "(reader_sentence; the reader " in checks["difficulty"]["reason"]
        assert checks["difficulty"]["details"]["graded"] is True
        assert "reader_confidence" in checks["difficulty"]["details"]

    res = run_cli(["report", str(out)], cli_env(stub.base_url, demo_store_path))
    assert res.returncode == 0, res.stderr
    page = (out / "report.html").read_text()
    assert 'alt="difficulty"' in page and 'alt="lexical_overlap"' in page
