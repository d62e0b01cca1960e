"""A host application calling clinsynth's tools keeps its own collector and environment."""

from __future__ import annotations

import asyncio
import gc
import json
import os
from pathlib import Path

from clinsynth.config import Settings
from clinsynth.graphs.batch import Progress
from clinsynth.tools import ClinsynthToolkit, as_tools
from tests.support.chat_responder import respond
from tests.support.host import HOST_THRESHOLD, host_process_state, is_frozen
from tests.support.stub_server import StubServer


def test_generate_tool_leaves_the_hosts_collector_and_environment_alone(
    demo_store_path: Path, tmp_path: Path
) -> None:
    marker = [object()]  # frozen with the host's objects
    seen: list[tuple[int, tuple[int, int, int]]] = []

    def progress(p: Progress) -> None:
        seen.append((p.accepted, gc.get_threshold()))

    with host_process_state() as env, StubServer(respond) as stub:
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
        assert seen == [(1, HOST_THRESHOLD), (2, HOST_THRESHOLD)]
        assert is_frozen(marker)
        assert gc.get_threshold() == HOST_THRESHOLD
        assert dict(os.environ) == env
