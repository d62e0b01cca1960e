"""The trial corpus: one trial schema, loaders, the shared leak scrubber, Chroma ingestion,
and the intervention balance filter.

Loaders read HINT/TOP tables (``hint_top/*.csv``), TrialBench tables
(``trialbench_approval_phase4/*.csv``) and ClinicalTrials.gov v2 study JSON. Fields recorded
after a trial ended (status, why_stop, overall_status, ...) are never copied into a record, and
:func:`scrub_leaks` removes outcome-revealing sentences from the text of real *and* synthetic
records alike.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from clinsynth.datasets.tables import TableError, check_label, read_csv
from clinsynth.memory.store import VectorStore
from clinsynth.schemas import SourceChunk

TrialLabel = Literal["success", "failure"]
LABELS: tuple[TrialLabel, TrialLabel] = ("success", "failure")
Split = Literal["train", "eval"]

LEAK_FIELDS = frozenset(
    {
        "status",
        "why_stop",
        "why_stopped",
        "whystopped",
        "overall_status",
        "overallstatus",
        "last_known_status",
        "lastknownstatus",
        "statusmodule",
        "resultssection",
        "hasresults",
        "completion_date",
        "primary_completion_date",
        "outcome",
        "label",
    }
)
"""Raw fields that are recorded after a trial ends (or are the target): never trial text."""


class TrialError(Exception):
    """A trial file that cannot be read as trials."""


class TrialContent(BaseModel):
    """What a trial says about itself (the generator's structured output)."""

    title: str = Field(description="the trial's title")
    phase: str = Field(description="trial phase, e.g. 'phase 2'")
    conditions: list[str] = Field(description="conditions or diseases studied")
    interventions: list[str] = Field(description="intervention names, e.g. drug names")
    eligibility_criteria: str = Field(
        description="'Inclusion Criteria:' and 'Exclusion Criteria:' blocks"
    )
    outcome_measures: list[str] = Field(description="primary and secondary outcome measures")
    summary: str = Field(description="a brief summary of the trial's aim and design")


class LabelCheck(BaseModel):
    """The label corrector's verdict on a synthetic trial."""

    model: str
    target: TrialLabel
    probability: float = Field(description="the classifier's probability of the target label")
    decision: Literal["kept", "relabelled", "rejected"]


class TrialRecord(TrialContent):
    """One trial with its outcome label and where it came from."""

    title: str = ""
    phase: str = ""
    conditions: list[str] = Field(default_factory=list)
    interventions: list[str] = Field(default_factory=list)
    eligibility_criteria: str = ""
    outcome_measures: list[str] = Field(default_factory=list)
    summary: str = ""
    id: str
    label: TrialLabel | None = None
    source: str = Field(description="hint_top, trialbench, ctgov or synthetic")
    label_check: LabelCheck | None = None


def label_of(value: Any) -> TrialLabel | None:
    """Map 1/0, "1"/"0", success/failure to a trial label; None when unknown."""
    text = str(value).strip().lower()
    if text in ("1", "1.0", "success", "true"):
        return "success"
    if text in ("0", "0.0", "failure", "false"):
        return "failure"
    return None


def normalize_name(name: str) -> str:
    """Lower-case, whitespace-collapsed intervention or condition name."""
    return " ".join(str(name).lower().split())


# --- the shared leak scrubber ------------------------------------------------------------

_LEAK_PATTERNS = [
    r"\b(overall|recruitment|trial|study|last known)[ _]status\b",
    r"\bwhy[ _]?stop(ped)?\b",
    r"\b(study|trial) (was|is|has been|had been|were) (prematurely |early )?"
    r"(terminated|withdrawn|suspended|stopped|halted|closed|discontinued|completed)",
    r"\b(terminated|halted|stopped|closed) (early|prematurely)\b",
    r"\b(early|premature) (termination|closure|stopping)\b",
    r"\btermination of the (study|trial)\b",
    r"\b(poor|slow|low|insufficient|inadequate) (accrual|enrol?lment|recruitment)\b",
    r"\black of (efficacy|funding|accrual)\b",
    r"\bfutility\b",
    r"\b(met|achieved|failed to meet|did not meet|missed) (its|the) primary (end ?point|outcome)",
    r"\b(sponsor|business|strategic) decision\b",
    r"\btrial (success|failure)\b",
    r"\boutcome label\b",
]
_LEAK_RE = re.compile("|".join(f"(?:{p})" for p in _LEAK_PATTERNS), re.IGNORECASE)
_SENTENCE_RE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")
_STATUS_WORDS = re.compile(
    r"^\s*(terminated|withdrawn|suspended|completed|unknown status|active, not recruiting)\s*$",
    re.IGNORECASE,
)


def scrub_text(text: str) -> str:
    """Remove every sentence or line of ``text`` that reveals a trial's outcome or status."""
    if not text or not _LEAK_RE.search(text):
        return "" if _STATUS_WORDS.match(text or "") else text
    kept = [s for s in _SENTENCE_RE.findall(text) if not _LEAK_RE.search(s)]
    return re.sub(r"[ \t]{2,}", " ", "".join(kept)).strip()


def scrub_leaks(record: TrialRecord) -> TrialRecord:
    """THE leak scrubber, for real and synthetic records alike: drop outcome-revealing
    sentences and bare status words from every text field (outcome fields such as
    ``status`` / ``why_stop`` never reach a record: loaders skip :data:`LEAK_FIELDS`)."""

    def clean_list(values: list[str]) -> list[str]:
        return [v for v in (scrub_text(x) for x in values) if v]

    return record.model_copy(
        update={
            "title": scrub_text(record.title),
            "summary": scrub_text(record.summary),
            "eligibility_criteria": scrub_text(record.eligibility_criteria),
            "conditions": clean_list(record.conditions),
            "interventions": clean_list(record.interventions),
            "outcome_measures": clean_list(record.outcome_measures),
        }
    )


def drop_leak_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A raw row without the fields in :data:`LEAK_FIELDS` (compared case-insensitively)."""
    return {k: v for k, v in raw.items() if k.lower().replace("/", "_") not in LEAK_FIELDS}


TEXT_FIELDS = (
    "title",
    "phase",
    "conditions",
    "interventions",
    "summary",
    "outcome_measures",
    "eligibility_criteria",
)


def trial_text(record: TrialRecord | Mapping[str, Any], fields: Iterable[str] | None = None) -> str:
    """The text of a trial that models see (retrieval, classification, similarity);
    ``fields`` (default: all of :data:`TEXT_FIELDS`) picks which parts to include."""
    rec = record if isinstance(record, TrialRecord) else TrialRecord.model_validate(record)
    wanted = set(TEXT_FIELDS if fields is None else fields)
    unknown = wanted - set(TEXT_FIELDS)
    if unknown:
        raise TrialError(f"unknown trial fields {sorted(unknown)} (known: {list(TEXT_FIELDS)})")
    parts = [
        ("title", "Title", rec.title),
        ("phase", "Phase", rec.phase),
        ("conditions", "Conditions", "; ".join(rec.conditions)),
        ("interventions", "Interventions", "; ".join(rec.interventions)),
        ("summary", "Summary", rec.summary),
        ("outcome_measures", "Outcome measures", "; ".join(rec.outcome_measures)),
        ("eligibility_criteria", "Eligibility criteria", _squash(rec.eligibility_criteria)),
    ]
    return "\n".join(
        f"{name}: {value}" for key, name, value in parts if key in wanted and value.strip()
    )


def _squash(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


# --- loaders -----------------------------------------------------------------------------


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


class TrialIngestStats(BaseModel):
    """What :func:`ingest_trials` did."""

    trials: int
    labelled: int
    kept_eval: int = Field(0, description="ids already stored as eval that stayed eval")


def trial_chunk(record: TrialRecord, split: Split) -> SourceChunk:
    """The stored form of a trial: its text, and metadata to filter and rebuild it by."""
    names = [normalize_name(n) for n in record.interventions]
    return SourceChunk(
        id=record.id,
        text=trial_text(record),
        metadata={
            "trial_id": record.id,
            "label": record.label or "unknown",
            "phase": record.phase or "unknown",
            "split": split,
            "source": record.source,
            "intervention": names[0] if names else "none",
            "interventions": names,
            "record": record.model_dump_json(exclude={"label_check"}),
        },
    )


def ingest_trials(
    records: Iterable[TrialRecord], store: VectorStore, split: Split = "train"
) -> TrialIngestStats:
    """Store trials (upsert by NCT id). An id already stored as ``eval`` stays ``eval``,
    so a trial that is in any evaluation set can never become a generation example."""
    recs = list({r.id: r for r in records}.values())
    kept_eval = 0
    chunks = []
    existing = {c.id: c.metadata.get("split") for c in store.get([r.id for r in recs])}
    for rec in recs:
        this_split: Split = split
        if existing.get(rec.id) == "eval" and split != "eval":
            this_split = "eval"
            kept_eval += 1
        chunks.append(trial_chunk(rec, this_split))
    store.add(chunks)
    return TrialIngestStats(
        trials=len(recs),
        labelled=sum(r.label is not None for r in recs),
        kept_eval=kept_eval,
    )


def record_of(chunk: SourceChunk) -> TrialRecord:
    """Rebuild the trial stored in a chunk."""
    raw = chunk.metadata.get("record")
    if not isinstance(raw, str):
        raise TrialError(f"chunk {chunk.id} is not a stored trial (no 'record' metadata)")
    return TrialRecord.model_validate_json(raw)


def balanced_interventions(
    rows: Iterable[tuple[Iterable[str], str | None]],
    *,
    min_success: int = 3,
    min_failure: int = 3,
    exclude: Iterable[str] = (),
) -> dict[str, dict[str, int]]:
    """The balance filter: interventions named in at least ``min_success`` successful and
    ``min_failure`` failed trials. ``rows`` are (interventions, label) per trial; returns
    intervention → label counts, sorted by name."""
    skip = {normalize_name(x) for x in exclude}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for names, label in rows:
        if label not in LABELS:
            continue
        for name in {normalize_name(n) for n in names} - skip:
            if name:
                counts[name][label] += 1
    return {
        name: {"success": c["success"], "failure": c["failure"]}
        for name, c in sorted(counts.items())
        if c["success"] >= min_success and c["failure"] >= min_failure
    }


class TrialIndex:
    """Which training-split trials name which intervention, per label (read from a store)."""

    def __init__(self, chunks: Iterable[SourceChunk]) -> None:
        self.by_pair: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.rows: list[tuple[list[str], str | None]] = []
        for chunk in chunks:
            meta = chunk.metadata
            if meta.get("split") != "train":
                continue
            names = json.loads(meta.get("interventions") or "[]")
            label = meta.get("label")
            self.rows.append((names, label))
            for name in set(names):
                self.by_pair[(name, str(label))].append(chunk.id)

    @classmethod
    def from_store(cls, store: VectorStore) -> TrialIndex:
        """Index every trial stored in ``store``."""
        return cls(store.get(store.ids()))

    def ids(self, intervention: str, label: str | None = None) -> list[str]:
        """Sorted training ids naming ``intervention`` (with ``label``, or any label)."""
        labels = [label] if label else list(LABELS)
        name = normalize_name(intervention)
        return sorted({i for lab in labels for i in self.by_pair.get((name, lab), [])})


# --- labelled examples for training ---------------------------------------------------


class Example(BaseModel):
    """One (text, label) example for classification, with the id used to detect overlap."""

    id: str
    text: str
    label: str


def _is_trial(row: Mapping[str, Any]) -> bool:
    return "interventions" in row and "eligibility_criteria" in row


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


def _label(value: Any, where: str, column: str) -> str:
    """A label cell as a label; a blank/NaN/None cell is a :class:`TrialError` naming ``where``."""
    try:
        return check_label(value, where, column)
    except TableError as exc:
        raise TrialError(str(exc)) from exc


def _row_example(
    row: Mapping[str, Any],
    fallback_id: str,
    text_field: str,
    label_field: str,
    fields: Iterable[str] | None,
) -> Example | None:
    if isinstance(row.get("item"), dict) and "status" in row:  # an ItemRecord of a run
        if row["status"] != "accepted":
            return None
        row = row["item"]
    if _is_trial(row):
        rec = TrialRecord.model_validate(row)
        if rec.label is None:
            return None
        return Example(id=rec.id, text=trial_text(rec, fields), label=rec.label)
    if text_field not in row or label_field not in row:
        raise TrialError(
            f"row {fallback_id} has no '{text_field}' text or '{label_field}' label "
            "(set --text-field / --label-field)"
        )
    label = _label(row[label_field], f"row {fallback_id}", label_field)
    ident = str(row.get("id") or row.get("nctid") or fallback_id)
    return Example(id=ident, text=str(row[text_field]), label=label)


def load_examples(
    path: Path,
    *,
    text_field: str = "text",
    label_field: str = "label",
    fields: Iterable[str] | None = None,
) -> list[Example]:
    """Labelled examples from a trial table (HINT, TrialBench, CT.gov JSON), a run directory
    (its ``accepted.jsonl``), or a generic CSV / JSONL with text and label columns. Trial
    texts go through :func:`trial_text` (scrubbed); unlabelled trials are skipped."""
    path = Path(path)
    if path.is_dir():
        path = path / "accepted.jsonl"
    if not path.is_file():
        raise TrialError(f"data file not found: {path}")
    fields = list(fields) if fields is not None else None
    if path.suffix == ".jsonl":
        rows = _jsonl_rows(path)
        if rows and "protocolSection" in rows[0]:
            recs = load_trials(path)
            return [
                Example(id=r.id, text=trial_text(r, fields), label=r.label) for r in recs if r.label
            ]
        found = (
            _row_example(row, f"{path.name}:{i}", text_field, label_field, fields)
            for i, row in enumerate(rows, start=1)
        )
        return [ex for ex in found if ex is not None]
    if path.suffix == ".csv":
        try:
            header, numbered = read_csv(path)
        except TableError as exc:
            raise TrialError(str(exc)) from exc
        if text_field in header and label_field in header and "nctid" not in header:
            return [
                Example(
                    id=str(r.get("id") or f"{path.name}:{line}"),
                    text=r[text_field],
                    label=_label(r[label_field], f"{path}:{line}", label_field),
                )
                for line, r in numbered
            ]
    recs = load_trials(path)
    return [Example(id=r.id, text=trial_text(r, fields), label=r.label) for r in recs if r.label]
