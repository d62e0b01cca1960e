"""Pick items of a run to look at: filter by status and conditions, sort by a score, sample.

Shared by ``clinsynth inspect --sample`` and the report's example items. A condition is
``NAME OP VALUE`` (``difficulty>=0.7``, ``label==success``, ``attempts>1``); NAME is a
critic score, a field of the item, or ``attempts`` / ``tokens`` / ``duration_s``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from clinsynth.schemas import ItemRecord

_OPS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "!=": lambda a, b: a != b,
    "==": lambda a, b: a == b,
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}
_CONDITION = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|!=|==|=|>|<)\s*([^<>=!\s].*?)\s*$")


class SelectionError(ValueError):
    """A condition or sort key that cannot be understood (the message says what works)."""


@dataclass(frozen=True)
class Condition:
    """One ``NAME OP VALUE`` test."""

    name: str
    op: str
    value: Any

    def holds(self, record: ItemRecord) -> bool:
        found = value_of(record, self.name)
        if found is None:
            return False
        try:
            return bool(_OPS[self.op](_coerce(found), self.value))
        except TypeError:  # e.g. a number field compared with a word
            return bool(_OPS[self.op](str(found), str(self.value)))


def _literal(text: str) -> Any:
    text = text.strip().strip("'\"")
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _coerce(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


def parse_condition(text: str) -> Condition:
    """``'difficulty>=0.7'`` → :class:`Condition`; :class:`SelectionError` when malformed."""
    match = _CONDITION.match(text)
    if not match:
        raise SelectionError(
            f"cannot read --where {text!r}: write NAME OP VALUE, e.g. 'difficulty>=0.7' or "
            "'label==success' (OP: >= <= > < == !=)"
        )
    name, op, raw = match.groups()
    return Condition(name=name, op=op, value=_literal(raw))


def value_of(record: ItemRecord, name: str) -> Any:
    """A critic score, ``attempts`` / ``tokens`` / ``duration_s``, the task's ``label`` /
    ``topic`` / ``difficulty``, or a field of the item (in that order); None if absent."""
    prov = record.provenance
    if name in prov.critic_scores:
        return prov.critic_scores[name]
    if name == "attempts":
        return prov.attempts
    if name == "tokens":
        return prov.usage.total_tokens
    if name == "duration_s":
        return prov.duration_s
    item = record.item or {}
    if name in item:
        return item[name]
    if name in ("label", "topic", "difficulty"):
        return getattr(record.task, name)
    return None


def known_names(records: list[ItemRecord]) -> list[str]:
    """Every name a condition or sort key can use on ``records``."""
    names = {"attempts", "tokens", "duration_s"}
    for rec in records:
        names.update(k for k in ("label", "topic", "difficulty") if getattr(rec.task, k))
        names.update(rec.provenance.critic_scores)
        names.update(k for k, v in (rec.item or {}).items() if not isinstance(v, dict | list))
    return sorted(names)


def select(
    records: list[ItemRecord],
    n: int,
    *,
    where: list[str] | None = None,
    sort: str | None = None,
    seed: int = 0,
) -> list[ItemRecord]:
    """Up to ``n`` records meeting every ``where`` condition: the first ``n`` by ``sort``
    (``NAME`` highest first, ``NAME:asc`` lowest first; records without it last), else a
    seeded random sample in id order."""
    conditions = [parse_condition(w) for w in where or []]
    names = known_names(records)
    for cond in conditions:
        if records and cond.name not in names:
            raise SelectionError(
                f"unknown name {cond.name!r} in --where (known: {', '.join(names)})"
            )
    kept = [r for r in records if all(c.holds(r) for c in conditions)]
    if sort:
        key, _, order = sort.partition(":")
        if order not in ("", "asc", "desc"):
            raise SelectionError(f"--sort {sort!r}: write NAME, NAME:asc or NAME:desc")
        if records and key not in names:
            raise SelectionError(f"unknown --sort {key!r} (known: {', '.join(names)})")
        have = [r for r in kept if isinstance(value_of(r, key), int | float)]
        rest = [r for r in kept if r not in have]
        have.sort(key=lambda r: (float(value_of(r, key)), r.id), reverse=order != "asc")
        return (have + rest)[:n]
    if len(kept) <= n:
        return sorted(kept, key=lambda r: r.id)
    return sorted(random.Random(seed).sample(kept, n), key=lambda r: r.id)
