"""The device-aware reader loop (qa_fit) and the split-weights bundle, on a tiny random BERT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clinsynth.finetune import QAConfig, QAExample, Reader
from clinsynth.finetune.errors import FinetuneError
from clinsynth.finetune.qa_bundle import BUNDLE_FILE, assemble, load_assembled, save_split
from clinsynth.finetune.qa_fit import fit_reader, score_detailed, windows_per_example
from clinsynth.testing.tiny_bert import save_tiny_bert

_VOCAB = (
    "the a patient has had fever cough pain rash virus drug dose trial was of in and to with "
    "after day days how many what lasted for seven three treated hospital"
)
WORDS = _VOCAB.split()
FILLER = "the patient was treated in hospital and the trial had a dose of the drug ."


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-fit"), [".", "?", *WORDS])


def _examples(n: int) -> list[QAExample]:
    out = []
    for i in range(n):
        answer = "seven days" if i % 2 else "three days"
        context = " ".join([FILLER] * (2 + i % 3)) + f" the fever lasted for {answer} . " + FILLER
        out.append(
            QAExample(
                id=f"q{i}",
                question="how many days of fever ?",
                context=context,
                answer_text=answer,
                answer_start=context.index(answer),
            )
        )
    return out


def _cfg(backbone: Path) -> QAConfig:
    return QAConfig(
        backbone=str(backbone), max_length=40, doc_stride=8, max_query_length=10,
        batch_size=4, lr=1e-3, epochs=2, max_answer_length=6,
    )  # fmt: skip


@pytest.fixture(scope="module")
def reader(tiny_bert: Path) -> Reader:
    epochs_seen: list[int] = []
    r = fit_reader(
        _examples(8), _cfg(tiny_bert), device="cpu", on_epoch=lambda e, _: epochs_seen.append(e)
    )
    assert epochs_seen == [1, 2]
    return r


def test_fit_reader_trains_and_decodes_spans_with_confidences(reader: Reader) -> None:
    dev = _examples(4)
    stats = reader.train_stats
    assert stats["trainer"]["steps"] == 2 * -(-stats["n_windows_per_epoch"] // 4)
    assert len(stats["trainer"]["epoch_loss"]) == 2
    rows = score_detailed(reader, dev, max_answer_lengths=[2, 6])
    assert set(rows) == {2, 6}
    for ex, row in zip(dev, rows[6], strict=True):
        assert row["text"] == ex.context[row["start"] : row["end"]]
        assert 0.0 < row["p_best"] <= 1.0 and row["entropy"] >= 0.0
        assert 0.0 < row["p_start"] <= 1.0 and row["margin"] >= 0.0
        assert row["top"][0]["start"] == row["start"] and len(row["top"]) <= 5
        assert [t["score"] for t in row["top"]] == sorted(
            (t["score"] for t in row["top"]), reverse=True
        )
    # A shorter answer limit never yields a longer span (in tokens, so compare words).
    for short, long in zip(rows[2], rows[6], strict=True):
        assert len(short["text"].split()) <= max(2, len(long["text"].split()))


def test_cached_windows_give_the_same_scores(reader: Reader) -> None:
    dev = _examples(3)
    cached = windows_per_example(dev, reader.tokenizer, reader.cfg)
    a = score_detailed(reader, dev)[reader.cfg.max_answer_length]
    b = score_detailed(reader, dev, windows=cached)[reader.cfg.max_answer_length]
    assert [r["text"] for r in a] == [r["text"] for r in b]


def test_split_save_and_reassemble_round_trip(reader: Reader, tmp_path: Path) -> None:
    # A part limit far below one embedding matrix forces tensors to be cut across files.
    limit = 80 * 1024
    files = save_split(reader, tmp_path / "parts", max_bytes=limit)
    weights = [f for f in files if f.suffix == ".safetensors"]
    assert len(weights) > 2 and all(f.stat().st_size <= limit for f in weights)
    assert (tmp_path / "parts" / BUNDLE_FILE) in files
    again = load_assembled(tmp_path / "parts", tmp_path / "assembled")
    original = reader.model.state_dict()
    restored = again.model.state_dict()
    assert set(original) == set(restored)
    for name, tensor in original.items():
        expected = tensor.detach().half().float().numpy()
        assert np.array_equal(restored[name].numpy(), expected), name
    assert again.cfg == reader.cfg
    dev = _examples(4)
    a = score_detailed(reader, dev)[6]
    b = score_detailed(again, dev)[6]
    assert sum(x["text"] == y["text"] for x, y in zip(a, b, strict=True)) >= 3


def test_assemble_refuses_an_incomplete_bundle(reader: Reader, tmp_path: Path) -> None:
    with pytest.raises(FinetuneError, match=r"no reader\.json"):
        assemble(tmp_path, tmp_path / "out")
    save_split(reader, tmp_path / "parts", max_bytes=80 * 1024)
    (tmp_path / "parts" / "weights-01.safetensors").unlink()
    with pytest.raises(FinetuneError, match="missing weights-01"):
        assemble(tmp_path / "parts", tmp_path / "out")
