"""The PHI recognizers behind :func:`clinsynth.evaluators.privacy.find_phi`, built on Presidio.

Presidio's own recognizers cover international phone numbers (``phonenumbers`` matching, many
regions), emails and URLs (domains checked against the bundled public-suffix snapshot, never
fetched), IP addresses, US SSNs (with Presidio's invalid-number rules) and payment cards (Luhn).
Project patterns, also run as Presidio ``PatternRecognizer``s, add what Presidio lacks:
labelled record numbers (MRN, hospital, NHS, insurance, account ...), ages over 89, dates,
street addresses, PO boxes, postcodes and ZIP codes, and names.

No NER model is loaded (no spaCy pipeline can be installed offline from the package index), so
names are caught only by the project's patterns: a title ("Mr", "Mrs", "Ms", "Dr", "Prof" ...)
before a capitalised name, or a role word ("patient", "nurse", "name:", "daughter" ...) before
two capitalised words. Towns and other places are not recognised on their own.

Dates follow HIPAA Safe Harbor: every date more specific than the year is PHI (a full date,
and a day with its month, "2 February"); a bare year ("in 2019") or a month and year are not
flagged, nor are numeric day/month pairs without a year ("3/4" reads as a ratio).

Building the recognizers imports Presidio (and spaCy under it), which takes seconds (4 to 7 s on
a loaded 2-core machine): it happens once per process, on the first call of :func:`recognizers`,
never at import time. After that a check costs about 4 ms per 1000 characters
(``bench/results/phi_recall.json``).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from presidio_analyzer import EntityRecognizer

PHONE_REGIONS = ("US", "CA", "GB", "IE", "DE", "FR", "IN", "BR")
"""Regions whose national formats are matched; numbers with a '+' country code match in any.
Regions with loose national formats (e.g. DK, PL, AU: any 8 or 9 digits) are left out: they
take ISO dates, SSNs and record numbers for phone numbers."""

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]\d{2}|2\d{3})"
_NAME = r"\p{Lu}(?:['’]\p{Lu})?\p{Ll}+(?:-\p{Lu}\p{Ll}+|['’]s)?"
_OLD = r"(?:9\d|1[0-2]\d)"
_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH"
    "|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC"
)
_STREET = (
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Court|Ct|Place|Pl|Terrace|Way|Boulevard"
    r"|Blvd|Close|Crescent|Grove|Parade|Parkway|Pkwy|Square|Row|Gardens|Mews|Walk|Highway|Hwy)"
)
_ID_LABEL = (
    r"(?i:\bmrn(?:\s*(?:number|no\.?))?|\b(?:(?:medical|health)\s+record|hospital|record|chart"
    r"|unit|patient|health\s+card|encounter|medicare|medicaid|nhs|case|member|account"
    r"|insurance|policy|subscriber|beneficiary)\s+(?:number|no\.?|num|id|identifier|\#))"
)
_ID = (
    r"(?:\d{3}\s\d{3}\s\d{3,4}|\d[A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{4}"
    r"|[A-Z]{0,3}-?\d[\dA-Z]*(?:-[\dA-Z]+)*)\b"
)

_D31 = r"(?:0?[1-9]|[12]\d|3[01])"
_ROLE = (
    r"(?i:\b(?:patient|nurse|name|husband|wife|son|daughter|mother|father|sister|brother"
    r"|partner|carer)(?:\s+is)?)"
)

# (kind, pattern name, regex); compiled without IGNORECASE: case-insensitive parts say (?i:).
_PATTERNS: list[tuple[str, str, str]] = [
    ("ssn", "grouped ssn", r"(?<![\d.-])\d{3}([- .])\d{2}\1\d{4}(?![\d-]|\.\d)"),
    ("ssn", "labelled ssn", r"(?<=(?i:\bssn|social\s+security)[^\d\n]{0,25})\d{9}\b"),
    ("mrn", "labelled record number", rf"(?<={_ID_LABEL}\s*(?:is\s+)?[#:]?\s*){_ID}"),
    (
        "age",
        "age over 89",
        rf"\b{_OLD}(?:[\s-]*(?i:years?|yrs?|y)[\s-]*(?i:old|of\s+age|/o)|\s?(?i:yo)|[MF])\b",
    ),
    ("age", "aged over 89", rf"(?i:\bage[d:]?)\s*{_OLD}\b(?!\s*(?i:days|weeks|months|%))"),
    ("age", "age in words", r"(?i:\b(?:ninety|hundred)(?:[\s-]+\w+)?[\s-]+years?[\s-]+old)"),
    (
        "date",
        "numeric date",
        rf"(?<![\d/.-]){_D31}(?:/{_D31}/(?:\d{{4}}|\d{{2}})|-{_D31}-\d{{4}})(?![\d/-]|\.\d)",
    ),
    (
        "date",
        "dotted date",
        rf"(?<![\d.]){_D31}\.(?:0?[1-9]|1[0-2])\.(?:1[89]|20)\d{{2}}(?!\d|\.\d)",
    ),
    ("date", "iso date", rf"\b{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\b"),
    ("date", "month day", rf"\b{_MONTH}\s+{_DAY}\b(?:,?\s+{_YEAR}\b)?"),
    ("date", "day month", rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR}\b)?(?!\w)"),
    (
        "address",
        "street",
        rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:(?:{_NAME}|\d+(?:st|nd|rd|th))\s+){{1,3}}{_STREET}\b\.?",
    ),
    ("address", "rue", r"\b\d{1,4},?\s+(?:Rue|Avenue|Boulevard|Chemin|Via|Calle|Rua)\s+\w+"),
    ("address", "po box", r"(?i:\bP\.?\s?O\.?\s+Box\s+\d+)"),
    ("address", "uk postcode", r"\b(?:[A-Z]{1,2}\d[A-Z\d]?) \d[ABD-HJLNP-UW-Z]{2}\b"),
    (
        "address",
        "zip code",
        r"(?<=(?i:\bzip(?:\s+code)?|postal\s+code)\s*:?\s*)\d{5}(?:-\d{4})?\b",
    ),
    ("address", "state and zip", rf"\b(?:{_STATES})\s\d{{5}}(?:-\d{{4}})?\b"),
    (
        "name",
        "title and name",
        rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame)\.?\s+(?:{_NAME}\s+)?{_NAME}",
    ),
    ("name", "role and name", rf"(?<={_ROLE}[,:]?\s+){_NAME}\s+{_NAME}"),
]

_LOCK = threading.Lock()
_BUILT: list[tuple[str, EntityRecognizer]] | None = None


def _offline_domain_check() -> Any:
    """A tldextract extractor on the bundled public-suffix snapshot: no fetch, no cache files."""
    import tldextract

    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


def _implausible(kind: str, text: str) -> bool:
    """Record numbers need four digits; numeric dates must fit day-first or month-first order."""
    if kind == "mrn":
        return sum(c.isdigit() for c in text) < 4
    numeric = re.match(r"(\d{1,2})[/.-](\d{1,2})[/.-]", text) if kind == "date" else None
    return bool(numeric) and int(numeric[1]) > 12 and int(numeric[2]) > 12  # type: ignore[index]


@contextlib.contextmanager
def _host_state_kept() -> Iterator[None]:
    """Undo what importing Presidio does to the process: spaCy adds warning filters, and torch
    (imported through spaCy's thinc) sets ``TORCHINDUCTOR_CACHE_DIR`` in ``os.environ``."""
    env = dict(os.environ)
    with warnings.catch_warnings():
        try:
            yield
        finally:
            for key in set(os.environ) - set(env):
                del os.environ[key]
            os.environ.update({k: v for k, v in env.items() if os.environ.get(k) != v})


def _build() -> list[tuple[str, EntityRecognizer]]:
    with _host_state_kept():
        from presidio_analyzer import Pattern, PatternRecognizer
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IpRecognizer,
            PhoneRecognizer,
            UrlRecognizer,
        )

    extract = _offline_domain_check()

    class OfflineEmail(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(extract(pattern_text).fqdn)

    class OfflineUrl(UrlRecognizer):
        """Presidio's URLs with a scheme, and "www." ones: a bare "H2O.mL" is a unit."""

        def __init__(self) -> None:
            schemed = [p for p in UrlRecognizer.PATTERNS if "https?://" in p.regex]
            www = Pattern("www url", r"(?i)\bwww\.[^\s<>\"'()\[\]]*[^\s<>\"'()\[\].,;:!?]", 0.5)
            super().__init__(patterns=[*schemed, www])

        def validate_result(self, pattern_text: str) -> bool:
            return bool(extract(pattern_text).fqdn)

    class Labelled(PatternRecognizer):
        """Project patterns of one kind, with that kind's sanity rules."""

        def invalidate_result(self, pattern_text: str) -> bool:
            return _implausible(self.supported_entities[0].lower(), pattern_text)

    built: list[tuple[str, EntityRecognizer]] = [
        ("url", OfflineUrl()),
        ("email", OfflineEmail()),
        ("ip_address", IpRecognizer()),
        ("account", CreditCardRecognizer()),
        ("phone", PhoneRecognizer(supported_regions=PHONE_REGIONS, leniency=1)),
    ]
    project: list[tuple[str, EntityRecognizer]] = []
    for kind in dict.fromkeys(kind for kind, _, _ in _PATTERNS):
        patterns = [Pattern(name, regex, 0.8) for k, name, regex in _PATTERNS if k == kind]
        recognizer = Labelled(
            supported_entity=kind.upper(), name=kind, patterns=patterns, global_regex_flags=0
        )
        project.append((kind, recognizer))
    return project + built


def recognizers() -> list[tuple[str, EntityRecognizer]]:
    """(kind, recognizer) pairs, built on the first call and shared by every thread after; on
    two hits of one span the earlier pair's kind wins (phone numbers, the loosest, come last)."""
    global _BUILT
    if _BUILT is None:
        with _LOCK:
            if _BUILT is None:
                _BUILT = _build()
    return _BUILT
