"""A host application calling clinsynth keeps its collector, environment, random generators
and stdout as they were."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
from pathlib import Path

import pytest

from clinsynth.config import Settings
from clinsynth.graphs.batch import Progress
from clinsynth.testing.chat_responder import respond
from clinsynth.testing.stub_server import StubServer
from clinsynth.testing.tiny_bert import save_tiny_bert
from clinsynth.tools import ClinsynthToolkit, as_tools
from tests.support.host import HOST_THRESHOLD, host_process_state, is_frozen


def test_generate_tool_leaves_the_hosts_collector_and_environment_alone(
    demo_store_path: Path, tmp_path: Path
) -> None:
    marker = [object()]  # frozen with the host's objects
    seen: list[tuple[int, bool, bool, tuple[int, int, int]]] = []
    with host_process_state() as env, StubServer(respond) as stub:
        loose = [object()]  # made after the host's freeze: a freeze during the run would take it

        def progress(p: Progress) -> None:
            seen.append((p.accepted, is_frozen(marker), is_frozen(loose), gc.get_threshold()))

        settings = Settings(
            base_url=stub.base_url,
            api_key="test-key",
            model="stub-model",
            store=demo_store_path,
            embedder="hashing",
            max_retries=1,
            timeout_s=10,
        )
        toolkit = ClinsynthToolkit(
            settings, data_dir=tmp_path, run_defaults={"recipe_options": {"unanswerable_share": 0}}
        )
        tool = {t.name: t for t in as_tools(toolkit, progress=progress)}["generate_items"]
        result = json.loads(asyncio.run(tool.ainvoke({"topic": "atrial fibrillation", "n": 2})))
        assert result["accepted"] == 2
        assert seen == [(1, True, False, HOST_THRESHOLD), (2, True, False, HOST_THRESHOLD)]
        assert is_frozen(marker) and not is_frozen(loose)
        assert gc.get_threshold() == HOST_THRESHOLD
        assert dict(os.environ) == env


@pytest.mark.slow
def test_training_leaves_the_hosts_random_generators_and_stdout_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fine-tuning seeds python's, numpy's and torch's generators (as the Trainer does): the
    host gets them back as they were, and nothing is printed to its stdout (an MCP server's
    protocol stream)."""
    import numpy as np
    import torch

    from clinsynth.finetune import ClassificationConfig, train_classifier

    words = ["fever", "cough", "rash", "drug", "day", "after"]
    bert = save_tiny_bert(tmp_path / "bert", [".", *words], layers=1, positions=64)
    texts = [f"fever cough day {i}" for i in range(6)] + [f"rash after drug {i}" for i in range(6)]
    pairs = list(zip(texts, ["infection"] * 6 + ["reaction"] * 6, strict=True))

    def draws() -> tuple[float, float, float]:
        return random.random(), float(np.random.random()), float(torch.rand(1))

    def seed() -> None:
        random.seed(7)
        np.random.seed(7)
        torch.manual_seed(7)

    seed()
    expected = draws()
    seed()
    capsys.readouterr()
    cfg = ClassificationConfig(backbone=str(bert), max_steps=2, max_length=32)
    assert train_classifier(pairs, None, cfg).train_metrics["train_loss"] > 0
    assert capsys.readouterr().out == ""
    assert draws() == expected


@pytest.mark.slow
def test_loading_the_bundled_embedder_leaves_the_environment_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The model loads offline from its package files (``local_files_only``), without setting
    ``HF_HUB_OFFLINE`` for the whole process."""
    import sentence_transformers  # noqa: F401  (its import sets KMP_* and TORCHINDUCTOR_*)

    from clinsynth.memory import embeddings

    monkeypatch.setattr(embeddings, "_MODELS", {})  # a first load in this process
    with host_process_state() as env:
        embedder = embeddings.MiniLMEmbedder()
        embedder.load()
        assert embeddings._MODELS  # loaded by load(), before any embed call
        assert embedder.embed(["chest pain"]).shape == (1, 384)
        assert dict(os.environ) == env
