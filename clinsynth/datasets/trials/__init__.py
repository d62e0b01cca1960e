"""The trial corpus: one trial schema, loaders, the shared leak scrubber, Chroma ingestion,
and the intervention balance filter.

Loaders read HINT/TOP tables (``hint_top/*.csv``), TrialBench tables
(``trialbench_approval_phase4/*.csv``) and ClinicalTrials.gov v2 study JSON. Fields recorded
after a trial ended (status, why_stop, overall_status, ...) are never copied into a record, and
:func:`scrub_leaks` removes outcome-revealing sentences from the text of real *and* synthetic
records alike.
"""

from __future__ import annotations

from clinsynth.datasets.trials.examples import (
    Example,
    load_examples,
)
from clinsynth.datasets.trials.facts import (
    ArmGroup,
    Completion,
    TrialFacts,
    ctgov_facts,
    hint_facts,
    trialbench_facts,
)
from clinsynth.datasets.trials.loaders import (
    ctgov_record,
    load_trials,
    read_labels,
)
from clinsynth.datasets.trials.schema import (
    LABELS,
    LEAK_FIELDS,
    TEXT_FIELDS,
    LabelCheck,
    Split,
    TrialContent,
    TrialError,
    TrialLabel,
    TrialRecord,
    drop_leak_fields,
    label_of,
    normalize_name,
    reveals_outcome,
    scrub_leaks,
    scrub_text,
    trial_text,
)
from clinsynth.datasets.trials.store import (
    TrialIndex,
    TrialIngestStats,
    balanced_interventions,
    ingest_trials,
    record_of,
    trial_chunk,
)

__all__ = [
    "LABELS",
    "LEAK_FIELDS",
    "TEXT_FIELDS",
    "ArmGroup",
    "Completion",
    "Example",
    "LabelCheck",
    "Split",
    "TrialContent",
    "TrialError",
    "TrialFacts",
    "TrialIndex",
    "TrialIngestStats",
    "TrialLabel",
    "TrialRecord",
    "balanced_interventions",
    "ctgov_facts",
    "ctgov_record",
    "drop_leak_fields",
    "hint_facts",
    "ingest_trials",
    "label_of",
    "load_examples",
    "load_trials",
    "normalize_name",
    "read_labels",
    "record_of",
    "reveals_outcome",
    "scrub_leaks",
    "scrub_text",
    "trial_chunk",
    "trial_text",
    "trialbench_facts",
]
