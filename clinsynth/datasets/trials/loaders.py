"""Loaders of trial tables: HINT/TOP (``hint_top/*.csv``), TrialBench
(``trialbench_approval_phase4/*.csv``) and ClinicalTrials.gov v2 study JSON, with outcome
labels read apart; fields recorded after a trial ended are never copied into a record."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from clinsynth.datasets.tables import TableError, read_csv
from clinsynth.datasets.trials.facts import ctgov_facts, hint_facts, trialbench_facts
from clinsynth.datasets.trials.schema import (
    TrialError,
    TrialLabel,
    TrialRecord,
    drop_leak_fields,
    label_of,
    normalize_name,
    scrub_leaks,
)


def _py_list(value: str) -> list[str]:
    """Parse HINT's Python-repr list strings ("['a', 'b']"); plain text becomes one item."""
    text = (value or "").strip()
    if not text or text.lower() == "nan":
        return []
    if text.startswith("["):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return [text]
        return [str(x).strip() for x in parsed if str(x).strip()]
    return [text]


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        return [row for _, row in read_csv(path)[1]]
    except TableError as exc:
        raise TrialError(str(exc)) from exc


def _hint_record(row: Mapping[str, str]) -> TrialRecord:
    raw = drop_leak_fields(row)
    return TrialRecord(
        id=raw["nctid"].strip(),
        phase=normalize_name(raw.get("phase", "")),
        conditions=_py_list(raw.get("diseases", "")),
        interventions=_py_list(raw.get("drugs", "")),
        eligibility_criteria=(raw.get("criteria") or "").strip(),
        label=label_of(row.get("label", "")),
        source="hint_top",
        facts=hint_facts(row),
    )


def _trialbench_record(row: Mapping[str, str]) -> TrialRecord:
    raw = drop_leak_fields(row)

    def field(name: str) -> str:
        value = (raw.get(name) or "").strip()
        return "" if value.lower() == "nan" else value

    return TrialRecord(
        id=field("nctid"),
        title=field("brief_title"),
        phase=normalize_name(field("phase")),
        conditions=_py_list(field("condition")),
        interventions=_py_list(field("intervention/intervention_name")),
        eligibility_criteria=field("eligibility/criteria/textblock"),
        summary=" ".join(field("brief_summary/textblock").split()),
        label=label_of(row.get("outcome", "")),
        source="trialbench",
        facts=trialbench_facts(row),
    )


_CTGOV_PHASES = {"EARLY_PHASE1": "early phase 1", "NA": "n/a"}


def ctgov_record(study: Mapping[str, Any], label: TrialLabel | None = None) -> TrialRecord:
    """A trial from one ClinicalTrials.gov v2 API study object (``protocolSection`` ...).

    The status module (overall status, why stopped, dates) and the results section are
    ignored; the label comes from the caller (e.g. a labels file), never from the status.
    """
    proto = study.get("protocolSection") or {}
    ident = proto.get("identificationModule") or {}
    nct = str(ident.get("nctId") or "").strip()
    if not nct:
        raise TrialError("study without protocolSection.identificationModule.nctId")
    desc = proto.get("descriptionModule") or {}
    design = proto.get("designModule") or {}
    arms = proto.get("armsInterventionsModule") or {}
    outcomes = proto.get("outcomesModule") or {}
    phases = [
        _CTGOV_PHASES.get(p, p.lower().replace("phase", "phase ")) for p in design.get("phases", [])
    ]
    measures = [
        str(o.get("measure", "")).strip()
        for key in ("primaryOutcomes", "secondaryOutcomes")
        for o in outcomes.get(key) or []
        if str(o.get("measure", "")).strip()
    ]
    return TrialRecord(
        id=nct,
        title=str(ident.get("briefTitle") or ident.get("officialTitle") or "").strip(),
        phase="/".join(phases),
        conditions=[str(c) for c in (proto.get("conditionsModule") or {}).get("conditions", [])],
        interventions=[str(i.get("name", "")) for i in arms.get("interventions") or []],
        eligibility_criteria=str(
            (proto.get("eligibilityModule") or {}).get("eligibilityCriteria") or ""
        ).strip(),
        outcome_measures=measures,
        summary=" ".join(str(desc.get("briefSummary") or "").split()),
        label=label,
        source="ctgov",
        facts=ctgov_facts(proto),
    )


def _ctgov_studies(path: Path) -> list[Mapping[str, Any]]:
    if path.suffix == ".jsonl":
        return _jsonl_rows(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise TrialError(f"{path} is not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise TrialError(f"{path}: not valid JSON ({exc})") from exc
    if isinstance(data, dict) and "studies" in data:
        return list(data["studies"])
    return list(data) if isinstance(data, list) else [data]


def read_labels(path: Path) -> dict[str, TrialLabel]:
    """An ``nctid,label`` CSV (1/0 or success/failure) as id → label."""
    labels: dict[str, TrialLabel] = {}
    for row in _read_csv(path):
        key = next((k for k in row if k.lower() in ("nctid", "nct_id", "id")), None)
        value = next((k for k in row if k.lower() in ("label", "outcome")), None)
        if key is None or value is None:
            raise TrialError(f"{path}: a labels file needs nctid and label columns")
        lab = label_of(row[value])
        if lab is not None:
            labels[row[key].strip()] = lab
    return labels


def load_trials(path: Path, labels: Mapping[str, TrialLabel] | None = None) -> list[TrialRecord]:
    """Read one trial file, whatever its format, into scrubbed records.

    CSV: HINT/TOP (``nctid, drugs, criteria``) or TrialBench (``nctid, brief_title, ...``).
    JSON / JSONL: ClinicalTrials.gov v2 studies (one, a list, or ``{"studies": [...]}``).
    ``labels`` (id → label) overrides or supplies labels, e.g. for CT.gov records.
    """
    path = Path(path)
    if not path.is_file():
        raise TrialError(f"trial file not found: {path}")
    if path.suffix == ".csv":
        rows = _read_csv(path)
        header = set(rows[0]) if rows else set()
        reader: Callable[[Mapping[str, str]], TrialRecord]
        if {"nctid", "drugs", "criteria"} <= header:
            reader = _hint_record
        elif {"nctid", "brief_title", "eligibility/criteria/textblock"} <= header:
            reader = _trialbench_record
        else:
            raise TrialError(
                f"{path}: not a HINT/TOP or TrialBench trial table (columns: "
                f"{', '.join(sorted(header)[:8])}...)"
            )
        records = [reader(row) for row in rows]
    elif path.suffix in (".json", ".jsonl"):
        records = [ctgov_record(study) for study in _ctgov_studies(path)]
    else:
        raise TrialError(f"{path}: trial files are .csv (HINT, TrialBench) or .json (CT.gov)")
    if labels:
        records = [r.model_copy(update={"label": labels.get(r.id, r.label)}) for r in records]
    return [scrub_leaks(r) for r in records]


# --- ingestion and the balance filter ---------------------------------------------------


def _jsonl_rows(path: Path) -> list[Any]:
    """The rows of a JSONL file; :class:`TrialError` naming the file (and line) otherwise."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise TrialError(f"{path} is not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    rows = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise TrialError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
    return rows
