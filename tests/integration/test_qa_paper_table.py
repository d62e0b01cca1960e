"""bench/qa_paper_table.py in its CI-sized --stub form, end to end (stub server, tiny BERT)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_paper_table_stub_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location(
        "qa_paper_table", REPO / "bench/qa_paper_table.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    output = tmp_path / "table.json"
    bench.main(["--stub", "--n-dev", "6", "--output", str(output)])
    printed = capsys.readouterr().out
    assert printed.count("STUB RUN") >= 2 and "NOT results" in printed
    result = json.loads(output.read_text())
    assert result["stub"] is True and "NOT results" in result["note"]
    cells = {(r["variant"], r["training"]) for r in result["table"]}
    assert cells == {
        (v, t)
        for v in ("direct", "no_overlap", "summary", "summary+no_overlap")
        for t in ("real", "synthetic", "hybrid")
    }
    for row in result["table"]:
        assert 0 <= row["f1"] <= 100 and 0 <= row["exact_match"] <= row["f1"] + 1e-9
    gen = result["generation"]
    for variant, stats in gen.items():
        assert stats["accepted"] == 4
        per_item = 3 if variant.startswith("summary") else 2  # reasoner only with a summary
        assert stats["llm_calls"] == per_item * stats["accepted"]
