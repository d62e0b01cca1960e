"""The batch runner with an endpoint that refuses some requests: the items are rejected, the
run goes on, and the tokens those items spent stay in the totals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langchain_core.exceptions import ContextOverflowError
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from clinsynth.config import RunConfig
from clinsynth.schemas import Usage
from tests.support.fakes import usage
from tests.unit.test_batch import ScriptedQA, accounted, go, make_runner

MARKER = "Amlodipine"
"""In exactly two demo chunks among the first 25: items 3 and 12."""


class RefusingQA(ScriptedQA):
    """Answers items whose passage holds ``MARKER`` with broken JSON, then refuses the
    corrective request as too long; answers every other item like ``ScriptedQA``."""

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "".join(str(m.content) for m in messages)
        if MARKER not in text:
            return super()._generate(messages, stop, run_manager, **kwargs)
        if "could not be used" in text:
            raise ContextOverflowError("prompt too long")
        message = AIMessage(content="not json", usage_metadata=usage(*self.tokens))
        return ChatResult(generations=[ChatGeneration(message=message)])


def test_refused_items_are_rejected_with_their_usage(demo_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    runner, _ = make_runner(demo_store_path, out, RunConfig(n=12, max_concurrency=4), RefusingQA())
    summary = go(runner)
    assert summary.accepted == 12 and summary.stop_reason == "target reached"
    accepted, rejected = accounted(out)
    refused = [r for r in rejected if not r["reasons"][0].startswith("surplus")]
    assert sorted(r["task"]["index"] for r in refused) == [3, 12]
    reason = "error: endpoint refused this request (the prompt exceeds the model's context window)"
    assert all(r["reasons"] == [reason] for r in refused)
    # The broken first reply was paid for: it stays on the item and in the run's totals.
    assert all(
        r["provenance"]["usage"] == {"input_tokens": 100, "output_tokens": 20, "calls": 1}
        for r in refused
    )
    records = accepted + rejected
    total = sum((Usage.model_validate(r["provenance"]["usage"]) for r in records), Usage())
    assert runner.meter is not None
    assert summary.usage == total == runner.meter.total() and total.calls > 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["accepted"] == 12
