"""Detection and masking of protected health information (PHI) in generated text.

The recognizers are Presidio's plus project patterns (:mod:`clinsynth.evaluators.phi_recognizers`
says which, and what is not caught: names only after a title or role word, no NER). They load
once per process, on the first check. ``bench/phi_recall.py`` measures recall per kind and false
positives on clean clinical sentences.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from clinsynth.evaluators.phi_recognizers import recognizers
from clinsynth.schemas import CheckResult

PhiKind = Literal[
    "phone", "email", "ssn", "mrn", "date", "address", "url", "ip_address", "name", "age",
    "account",
]  # fmt: skip


_TRIM_END = {"url": ".,;:!?)'\"", "email": "."}
"""Trailing punctuation that Presidio's URL and email patterns take in and a sentence owns."""


class PhiHit(BaseModel):
    """One suspected identifier: its kind, the matched text and its character offsets."""

    model_config = ConfigDict(frozen=True)  # shared by the callers of the cache below

    kind: PhiKind
    text: str
    start: int
    end: int


def find_phi(text: str) -> list[PhiHit]:
    """All suspected identifiers in ``text``, by position; hits inside a longer hit are dropped,
    and of two hits on one span the one of the more specific recognizer is kept.

    Results are kept for the last few thousand texts: the critic checks an item's fields and
    the record writer masks the same fields again (~1 ms an item at C = 128 before)."""
    return list(_find_phi(text))


@lru_cache(maxsize=4096)
def _find_phi(text: str) -> tuple[PhiHit, ...]:
    found: list[tuple[int, int, int, str]] = []
    for rank, (kind, recognizer) in enumerate(recognizers()):
        # Pattern and phone recognizers take no NLP artifacts (no NER model is run).
        for r in recognizer.analyze(text, recognizer.supported_entities, None):  # type: ignore[arg-type]
            end = r.start + len(text[r.start : r.end].rstrip(_TRIM_END.get(kind, "")))
            found.append((r.start, r.start - end, rank, kind))
    found.sort()
    kept: list[PhiHit] = []
    for start, minus_length, _, kind in found:
        end = start - minus_length
        if kept and start < kept[-1].end:
            continue
        kept.append(
            PhiHit.model_validate(
                {"kind": kind, "text": text[start:end], "start": start, "end": end}
            )
        )
    return tuple(kept)


def mask(text: str) -> str:
    """Preview of an identifier's shape: every letter and digit replaced by '*'."""
    return "".join("*" if c.isalnum() else c for c in text)


def redact(text: str) -> str:
    """``text`` with every suspected identifier replaced by its masked shape."""
    out = text
    for hit in reversed(find_phi(text)):
        out = out[: hit.start] + mask(hit.text) + out[hit.end :]
    return out


def redact_value(value: Any) -> Any:
    """:func:`redact` applied to every string inside ``value`` (dicts and lists walked)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def privacy_check(
    fields: str | Mapping[str, str], *, allowed_kinds: Collection[str] = ()
) -> CheckResult:
    """Fail when any field (a text, or field name → text) holds an identifier of a kind not in
    ``allowed_kinds``.

    The reason and details give each hit's field, kind, a masked preview and its offsets, never
    the identifier itself.
    """
    named = {"text": fields} if isinstance(fields, str) else fields
    hits = [
        (field, h)
        for field, text in named.items()
        for h in find_phi(text)
        if h.kind not in allowed_kinds
    ]
    kinds = Counter(h.kind for _, h in hits)
    if hits:
        listed = "; ".join(f"{h.kind} '{mask(h.text)}' in {field}" for field, h in hits)
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
            "fields": sorted(named),
            "hits": [
                {
                    "field": field,
                    "kind": h.kind,
                    "preview": mask(h.text),
                    "start": h.start,
                    "end": h.end,
                }
                for field, h in hits
            ],
        },
    )
