"""Licences of the data a run was grounded in, for the dataset card of an export.

A passage's ``source`` (chunk metadata) is an ingested file's path or a trial-table name
(``hint_top``, ``trialbench``, ``ctgov``). Known datasets are matched by name anywhere in the
path; a path with a ``PROVENANCE.md`` in one of its folders also gets that file's licence
line. Data derived from a non-commercial source keeps its terms (HINT: non-commercial use
only), whatever else was mixed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel


class SourceLicence(BaseModel):
    """The licence of one source dataset."""

    source: str
    """The name the run's passages gave (a path or a table name)."""
    dataset: str
    licence: str
    """SPDX-like id as Hugging Face cards use it (``cc-by-4.0``, ``mit``), or ``other`` /
    ``unknown``."""
    terms: str
    non_commercial: bool = False


_KNOWN: dict[str, tuple[tuple[str, ...], str, str, bool]] = {
    "hint_top": (
        ("hint_top", "hint"),
        "other",
        "HINT benchmark usage agreement: non-commercial use only (academic research or other "
        "not-for-profit education); no commercial use",
        True,
    ),
    "trialbench_approval_phase4": (
        ("trialbench_approval_phase4", "trialbench"),
        "mit",
        "MIT (TrialBench), attribution: cite the paper",
        False,
    ),
    "ctgov": (
        ("ctgov", "clinicaltrials.gov"),
        "other",
        "ClinicalTrials.gov records: public US-government data",
        False,
    ),
    "covid_qa": (("covid_qa",), "apache-2.0", "Apache-2.0 (deepset COVID-QA)", False),
    "pubmedqa_labeled": (("pubmedqa_labeled", "pubmedqa"), "mit", "MIT (PubMedQA)", False),
    "medquad": (("medquad",), "cc-by-4.0", "CC BY 4.0 (MedQuAD), attribution required", False),
    "aci_bench": (("aci_bench",), "cc-by-4.0", "CC BY 4.0 (ACI-Bench)", False),
    "medical_abstracts_tc": (
        ("medical_abstracts_tc",),
        "cc-by-sa-3.0",
        "CC BY-SA 3.0: attribution, derivatives under the same licence",
        False,
    ),
    "mts_dialog": (
        ("mts_dialog",),
        "cc-by-4.0",
        "CC BY 4.0 (MTS-Dialog); credit mtsamples.com with a link",
        False,
    ),
    "demo_corpus": (
        ("demo_corpus",),
        "apache-2.0",
        "fictional demo notes shipped with clinsynth (Apache-2.0)",
        False,
    ),
}

_LICENCE_LINE = re.compile(r"\*\*licen[cs]e[^*]*\*\*:?\s*(.+)", re.IGNORECASE)


def _provenance_note(path: Path) -> str | None:
    """The licence line of the nearest ``PROVENANCE.md`` above ``path`` (None: none found)."""
    for folder in [path, *path.parents][:5]:
        candidate = folder / "PROVENANCE.md"
        if candidate.is_file():
            for line in candidate.read_text(encoding="utf-8", errors="replace").splitlines():
                match = _LICENCE_LINE.search(line)
                if match:
                    return match.group(1).strip()
    return None


def licence_of(source: str) -> SourceLicence:
    """The licence of one passage source (``unknown`` when it matches no known dataset)."""
    parts = [p.lower() for p in re.split(r"[\\/]", source) if p]
    note = _provenance_note(Path(source)) if len(parts) > 1 else None
    for dataset, (names, licence, terms, non_commercial) in _KNOWN.items():
        if any(part in names or part.split(".")[0] in names for part in parts):
            if note and note not in terms:
                terms = f"{terms}. PROVENANCE.md: {note}"
            return SourceLicence(
                source=source,
                dataset=dataset,
                licence=licence,
                terms=terms,
                non_commercial=non_commercial or "non-commercial" in terms.lower(),
            )
    terms = f"PROVENANCE.md: {note}" if note else "licence not known: check the source's terms"
    return SourceLicence(
        source=source,
        dataset=Path(source).name or source,
        licence="unknown",
        terms=terms,
        non_commercial="non-commercial" in terms.lower(),
    )


def licences_of(sources: Iterable[str]) -> list[SourceLicence]:
    """The licences of the distinct datasets among ``sources``."""
    found: dict[str, SourceLicence] = {}
    for source in sorted(set(sources)):
        lic = licence_of(source)
        found.setdefault(lic.dataset, lic)
    return list(found.values())


def combined_licence(licences: list[SourceLicence]) -> tuple[str, str]:
    """(card licence id, why) for data derived from all of ``licences``: a non-commercial
    source makes the whole set non-commercial (``other``); one shared licence is kept; a mix
    is ``other`` naming each."""
    if not licences:
        return "unknown", "the run records no source data (a run written before passages.jsonl)"
    restricted = [lic for lic in licences if lic.non_commercial]
    if restricted:
        names = ", ".join(lic.dataset for lic in restricted)
        return "other", (
            f"non-commercial use only: derived from {names}, whose terms forbid commercial use"
        )
    ids = sorted({lic.licence for lic in licences})
    if len(ids) == 1 and ids[0] not in ("other", "unknown"):
        return ids[0], f"every source is {ids[0]}"
    if "unknown" in ids:
        return "unknown", "the licence of at least one source is not known"
    return "other", "sources under different terms: " + "; ".join(
        f"{lic.dataset} ({lic.licence})" for lic in licences
    )
