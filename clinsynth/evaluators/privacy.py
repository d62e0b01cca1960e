"""Detection of protected health information (PHI) patterns in generated text.

Regexes for direct identifiers: US phone numbers, emails, social security numbers, medical
record numbers, full calendar dates (with a year), street addresses, URLs and IPv4 addresses.
They are tuned for few false positives on clinical prose: doses ("5 mg/kg", "10-20-40 mg"),
blood pressures ("120/80"), ratios ("2/3 patients") and bare years are not flagged; a date
must carry a year (with "-" separators a four-digit one).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection
from typing import Literal

from pydantic import BaseModel

from clinsynth.schemas import CheckResult

PhiKind = Literal["phone", "email", "ssn", "mrn", "date", "address", "url", "ip_address"]


class PhiHit(BaseModel):
    """One suspected identifier: its kind, the matched text and its character offsets."""

    kind: PhiKind
    text: str
    start: int
    end: int


_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]\d{2}|2\d{3})"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_STREET_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Court|Place|Terrace"
    r"|Parkway|Pkwy|Circle|Highway|Hwy|Way)"
)

_PATTERNS: list[tuple[PhiKind, re.Pattern[str]]] = [
    ("url", re.compile(r"\b(?:https?://|www\.)[^\s<>\"'()\[\]]+[^\s<>\"'()\[\].,;:!?]", re.I)),
    ("email", re.compile(r"\b[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")),
    ("ip_address", re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.\d)")),
    (
        "ssn",
        re.compile(
            r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])"
            r"|\b(?:ssn|social security(?: number| no\.?)?)\s*[:#]?\s*\d{9}\b",
            re.I,
        ),
    ),
    (
        "phone",
        re.compile(
            r"(?<![\w-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w-])"
        ),
    ),
    (
        "mrn",
        re.compile(
            r"\b(?:mrn|medical record(?: number| no\.?| #)?|chart (?:number|no\.?)|patient id)"
            r"\s*(?:is\s*)?[:#]?\s*[a-z]{0,3}-?\d{4,}\b",
            re.I,
        ),
    ),
    (
        "date",
        re.compile(
            r"(?<![\w/.-])(?:0?[1-9]|[12]\d|3[01])/(?:0?[1-9]|[12]\d|3[01])/(?:\d{4}|\d{2})"
            r"(?![\w/-]|\.\d)"
            r"|(?<![\w/.-])(?:0?[1-9]|[12]\d|3[01])-(?:0?[1-9]|[12]\d|3[01])-\d{4}(?![\w/-]|\.\d)"
            rf"|\b{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\b"
            rf"|\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b"
            rf"|\b{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}\b",
            re.I,
        ),
    ),
    (
        "address",
        re.compile(
            rf"\b\d{{1,6}}\s+(?:(?:[A-Z][a-z]+|\d+(?:st|nd|rd|th))\.?\s+){{1,4}}{_STREET_SUFFIX}\b\.?"
        ),
    ),
]


def _plausible_date(hit: str) -> bool:
    """Reject numeric m/d/y triples that fit neither month-first nor day-first order."""
    parts = re.split(r"[/-]", hit)
    if len(parts) != 3 or len(parts[0]) == 4:
        return True
    first, second = int(parts[0]), int(parts[1])
    return first <= 12 or second <= 12


def find_phi(text: str) -> list[PhiHit]:
    """All suspected identifiers in ``text``, by position; hits inside a longer hit are dropped."""
    hits: list[PhiHit] = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            if kind == "date" and not _plausible_date(m.group()):
                continue
            hits.append(PhiHit(kind=kind, text=m.group(), start=m.start(), end=m.end()))
    hits.sort(key=lambda h: (h.start, -(h.end - h.start)))
    kept: list[PhiHit] = []
    for hit in hits:
        if kept and hit.start < kept[-1].end:
            continue
        kept.append(hit)
    return kept


def mask(text: str) -> str:
    """Preview of an identifier's shape: every letter and digit replaced by '*'."""
    return "".join("*" if c.isalnum() else c for c in text)


def privacy_check(text: str, *, allowed_kinds: Collection[str] = ()) -> CheckResult:
    """Fail when ``text`` contains identifiers of a kind not in ``allowed_kinds``.

    The reason and details give each hit's kind, a masked preview and its offsets, never the
    identifier itself.
    """
    hits = [h for h in find_phi(text) if h.kind not in allowed_kinds]
    kinds = Counter(h.kind for h in hits)
    if hits:
        listed = "; ".join(f"{h.kind} '{mask(h.text)}'" for h in hits)
        reason = f"{len(hits)} possible identifier(s) found: {listed}"
    else:
        reason = "no identifiers found"
    return CheckResult(
        name="privacy",
        score=float(len(hits)),
        passed=not hits,
        reason=reason,
        threshold=0.0,
        on_fail="revise",
        details={
            "count": len(hits),
            "kinds": dict(kinds),
            "hits": [
                {"kind": h.kind, "preview": mask(h.text), "start": h.start, "end": h.end}
                for h in hits
            ],
        },
    )
