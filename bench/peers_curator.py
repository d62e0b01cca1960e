"""The curator contender of ``bench/peers.py``: three chained ``curator.LLM`` stages.

Runs in bench/.venv-peers (bespokelabs-curator 0.1.31), not in clinsynth's environment, so it
imports nothing of clinsynth: the prompts (with placeholders), schemas and documents come in
the ``--spec`` file that ``bench/peers.py`` writes. Prints ``{"accepted": n}`` at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

DOC, SUMMARY, QUESTION = "\x00DOC\x00", "\x00SUMMARY\x00", "\x00QUESTION\x00"


class ClinicalSummary(BaseModel):
    history: list[str] = Field(default_factory=list)
    conditions: list[str] = Field(default_factory=list)
    symptoms: list[str] = Field(default_factory=list)
    findings: list[str] = Field(default_factory=list)
    diagnostics: list[str] = Field(default_factory=list)
    treatments: list[str] = Field(default_factory=list)


class QADraft(BaseModel):
    question: str = Field(max_length=400)
    answer: str = Field(max_length=300)


class QAAnswer(BaseModel):
    answer: str = Field(max_length=300)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--spec", type=Path, required=True)
    args = parser.parse_args()
    spec: dict[str, Any] = json.loads(args.spec.read_text())
    logging.disable(logging.WARNING)  # curator's progress and cost warnings (unknown model)

    from bespokelabs import curator

    def messages(stage: int, fill: dict[str, str]) -> list[dict[str, str]]:
        out = []
        for m in spec["stages"][stage]:
            text = m["content"]
            for key, value in fill.items():
                text = text.replace(key, value)
            out.append({"role": m["role"], "content": text})
        return out

    class Summarise(curator.LLM):
        response_format = ClinicalSummary

        def prompt(self, row: dict[str, Any]) -> list[dict[str, str]]:
            return messages(0, {DOC: row["document"]})

        def parse(self, row: dict[str, Any], response: ClinicalSummary) -> dict[str, Any]:
            return {**row, "summary": json.dumps(response.model_dump(), indent=1)}

    class Ask(curator.LLM):
        response_format = QADraft

        def prompt(self, row: dict[str, Any]) -> list[dict[str, str]]:
            return messages(1, {DOC: row["document"], SUMMARY: row["summary"]})

        def parse(self, row: dict[str, Any], response: QADraft) -> dict[str, Any]:
            return {**row, "question": response.question}

    class Distil(curator.LLM):
        response_format = QAAnswer

        def prompt(self, row: dict[str, Any]) -> list[dict[str, str]]:
            return messages(2, {DOC: row["document"], QUESTION: row["question"]})

        def parse(self, row: dict[str, Any], response: QAAnswer) -> dict[str, Any]:
            return {**row, "answer": response.answer}

    backend_params = {
        "base_url": args.url,
        "api_key": "bench",
        "max_concurrent_requests": args.concurrency,
        "max_requests_per_minute": 10_000_000,
        "max_tokens_per_minute": 10_000_000_000,
        "max_retries": 0,
        "require_all_responses": False,
    }
    rows: Any = [{"document": d} for d in spec["documents"]]
    for stage in (Summarise, Ask, Distil):
        llm = stage(
            model_name="stub",
            backend="openai",
            backend_params=backend_params,  # type: ignore[arg-type]
            generation_params={"max_tokens": 1024},
        )
        rows = llm(rows)
        rows = getattr(rows, "dataset", rows)
    accepted = sum(1 for r in rows if r.get("answer"))
    print(json.dumps({"accepted": accepted}), flush=True)


if __name__ == "__main__":
    main()
