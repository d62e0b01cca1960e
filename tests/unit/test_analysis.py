"""Similarity analysis of synthetic vs real data and the ``clinsynth analyze`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clinsynth.evaluators.analysis import cosine_summary, similarity_analysis
from clinsynth.memory.embeddings import HashingEmbedder
from clinsynth.testing.trials_responder import write_hint_table


def test_cosine_summary_on_known_vectors() -> None:
    real = np.array([[1.0, 0.0], [0.0, 1.0]])
    syn = np.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8]])
    out = cosine_summary(real, syn)
    assert out["within_real"]["mean"] == pytest.approx(0.0)
    assert out["within_synthetic"]["n"] == 6
    assert out["within_synthetic"]["mean"] == pytest.approx((1 + 0.6 + 0.6) * 2 / 6)
    assert out["across"]["mean"] == pytest.approx((1 + 0 + 1 + 0 + 0.6 + 0.8) / 6)
    assert out["nearest_real_of_synthetic"]["mean"] == pytest.approx((1 + 1 + 0.8) / 3)
    assert out["synthetic_with_nearest_real_at_least_0.95"] == 2


@pytest.mark.slow
def test_similarity_analysis_writes_json_and_png(tmp_path: Path) -> None:
    real = [(f"adults with lung cancer and measurable disease {i}", "success") for i in range(8)]
    syn = [(f"grown-ups with breast tumours on study day {i}", "failure") for i in range(5)]
    summary = similarity_analysis(real, syn, HashingEmbedder(), tmp_path / "analysis")
    saved = json.loads((tmp_path / "analysis" / "similarity.json").read_text())
    assert saved == summary and saved["n_real"] == 8 and saved["n_synthetic"] == 5
    assert saved["within_real"]["mean"] > saved["across"]["mean"]
    png = (tmp_path / "analysis" / "tsne.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="needs real and synthetic"):
        similarity_analysis(real, [], HashingEmbedder(), tmp_path)


@pytest.mark.slow
def test_analyze_command(tmp_path: Path) -> None:
    from clinsynth.datasets.trials import load_trials

    real = write_hint_table(tmp_path / "real.csv")
    run = tmp_path / "run"
    run.mkdir()
    rows = [
        {"id": f"t{i}", "status": "accepted", "item": rec.model_dump()}
        for i, rec in enumerate(load_trials(real)[:6])
    ]
    (run / "accepted.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli = [sys.executable, "-m", "clinsynth.cli", "analyze"]
    ok = subprocess.run(
        [*cli, str(run), "--real", str(real), "--embedder", "hashing"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "mean cosine: within_real" in ok.stdout
    assert (run / "analysis" / "tsne.png").is_file()
    # the synthetic rows are copies of real trials: their nearest real cosine is 1
    sim = json.loads((run / "analysis" / "similarity.json").read_text())
    assert sim["nearest_real_of_synthetic"]["mean"] == pytest.approx(1.0, abs=1e-5)
    bad = subprocess.run(
        [*cli, str(tmp_path), "--real", str(real)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and "no accepted.jsonl" in bad.stderr
