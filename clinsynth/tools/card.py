"""The dataset card (``README.md`` with Hugging Face front matter) of an exported run.

Front matter: licence (propagated from the sources: data derived from a non-commercial
source stays non-commercial), task category, size, source datasets, the data files. Body:
sources and their licences, counts, label distribution, critic-score distributions (with
which direction is good and the gate), models, prompt version and the generation config.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from clinsynth.datasets.licences import SourceLicence, combined_licence, licences_of
from clinsynth.evaluators.scores import score_table
from clinsynth.runtime.passages import read_passage_rows
from clinsynth.runtime.runfiles import RunRecords
from clinsynth.tools.export import DATA_FILES


def size_category(n: int) -> str:
    """Hugging Face ``size_categories`` value for ``n`` rows."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return name
    return "100K<n<1M" if n < 1_000_000 else "n>1M"


def run_sources(run_dir: Path, records: RunRecords) -> list[str]:
    """The ``source`` of every passage the accepted items were grounded in."""
    wanted = {sid for rec in records.accepted for sid in rec.provenance.source_ids}
    sources = []
    for row in read_passage_rows(run_dir / "passages.jsonl"):
        if row["id"] in wanted:
            source = (row.get("metadata") or {}).get("source")
            if source:
                sources.append(str(source))
    return sources


def _yaml_list(key: str, values: list[str]) -> list[str]:
    return [f"{key}:"] + [f"- {json.dumps(v, ensure_ascii=False)}" for v in values]


def front_matter(
    licence: str,
    licence_why: str,
    task: str,
    n_rows: int,
    licences: list[SourceLicence],
    fmt: str,
    pretty_name: str,
) -> str:
    """The YAML front matter (strings written as JSON, which YAML reads as they are)."""
    lines = [f"license: {licence}"]
    if licence == "other":
        lines.append(f"license_name: {json.dumps(licence_why, ensure_ascii=False)}")
    lines += _yaml_list("language", ["en"])
    lines += _yaml_list("task_categories", [task])
    lines += _yaml_list("tags", ["synthetic", "clinical", "clinsynth"])
    lines += _yaml_list("size_categories", [size_category(n_rows)])
    if licences:
        lines += _yaml_list("source_datasets", [lic.dataset for lic in licences])
    lines.append(f"pretty_name: {json.dumps(pretty_name, ensure_ascii=False)}")
    if fmt in DATA_FILES:
        lines += [
            "configs:",
            "- config_name: default",
            "  data_files:",
            "  - split: train",
            f"    path: {DATA_FILES[fmt]}",
        ]
    return "---\n" + "\n".join(lines) + "\n---\n"


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def card_text(
    run_dir: Path,
    manifest: dict[str, Any],
    records: RunRecords,
    recipe: Any,
    fmt: str,
    columns: list[str],
    n_rows: int,
) -> tuple[str, str]:
    """(the card's markdown, its licence id)."""
    licences = licences_of(run_sources(run_dir, records))
    licence, why = combined_licence(licences)
    name = f"clinsynth {recipe.name} run {run_dir.name}"
    head = front_matter(licence, why, recipe.export_task, n_rows, licences, fmt, name)
    accepted = [r.model_dump(mode="json") for r in records.accepted]
    judged = accepted + [r.model_dump(mode="json") for r in records.rejected]
    labels = Counter(
        str(recipe.label_of(r.task, r.item)) for r in records.accepted if r.item is not None
    )
    prompt_version = (manifest.get("recipe") or {}).get("prompt_version", "?")
    models = manifest.get("models") or {}
    parts = [
        head,
        f"# {name}\n",
        f"Synthetic data generated with clinsynth, recipe `{recipe.name}` (prompt version "
        f"`{prompt_version}`). Every row was accepted by measurable critic checks; the texts are "
        "machine-written and are not real patient records. Check them before clinical use.\n",
        "## Licence\n",
        f"**{licence}** — {why}.\n",
        _md_table(
            ["source", "dataset", "licence", "terms"],
            [[lic.source, lic.dataset, lic.licence, lic.terms] for lic in licences],
        )
        if licences
        else "No source data recorded for this run.",
        "\n## Contents\n",
        f"{n_rows} rows (`{fmt}`), columns: {', '.join(f'`{c}`' for c in columns)}.\n",
        _md_table(
            ["accepted", "rejected", "surplus"],
            [[len(records.accepted), len(records.rejected), len(records.surplus)]],
        ),
        "\nLabels of the accepted items:\n",
        _md_table(["label", "items"], [[k, v] for k, v in labels.most_common()]),
        "\n## Critic scores (accepted items)\n",
        _md_table(
            ["score", "good", "gate", "n", "min", "median", "mean", "max"],
            [
                [s.name, s.good, s.gate, s.n, s.min, s.median, s.mean, s.max]
                for s in score_table(accepted, judged)
            ],
        ),
        "\n## Generation\n",
        _md_table(["role", "model"], [[k, v] for k, v in models.items()]),
        "\nRun configuration (`manifest.json`):\n",
        "```json\n" + json.dumps(manifest.get("run") or {}, indent=2) + "\n```",
        f"\nclinsynth {(manifest.get('versions') or {}).get('clinsynth', '?')}; "
        f"stop reason: {manifest.get('stop_reason')}; tokens: "
        f"{(manifest.get('tokens') or {}).get('total_tokens', '?')}.\n",
    ]
    return "\n".join(parts), licence
