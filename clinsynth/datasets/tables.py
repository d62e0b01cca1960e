"""Reading user tables (CSV) with one-line errors, and telling a missing label from a label."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path
from typing import Any

MISSING_LABELS = frozenset({"", "nan", "none", "null"})
"""Label cells (case-insensitive, stripped) that mean "no label", as pandas and Excel write it."""


class TableError(ValueError):
    """A table that cannot be used as given; the message names the file (and line)."""


def is_missing(value: Any) -> bool:
    """True for a missing label: ``None``, a float NaN, or a cell reading blank/NaN/None/null."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in MISSING_LABELS


def read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The columns and (line number, row) pairs of a UTF-8 CSV file.

    Raises :class:`TableError` when the file is empty, has no rows under its header, is not
    UTF-8 (saying to save it as UTF-8), or is not valid CSV.
    """
    csv.field_size_limit(sys.maxsize)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = [c for c in reader.fieldnames or [] if c]
            if not columns:
                raise TableError(f"{path} is empty (no header row, no data)")
            rows = []
            for row in reader:
                rows.append((reader.line_num, {k: v or "" for k, v in row.items() if k}))
    except UnicodeDecodeError as exc:
        raise TableError(
            f"{path} is not UTF-8 text ({exc.reason}); save it as UTF-8 (e.g. 'CSV UTF-8' in Excel)"
        ) from exc
    except csv.Error as exc:
        raise TableError(f"{path}: not valid CSV ({exc})") from exc
    if not rows:
        raise TableError(f"{path} is empty: a header ({', '.join(columns)}) but no rows")
    return columns, rows


def check_label(value: Any, where: str, column: str) -> str:
    """``value`` as a label; :class:`TableError` naming ``where`` when the label is missing."""
    if is_missing(value):
        shown = "blank" if value is None or not str(value).strip() else repr(str(value))
        raise TableError(
            f"{where}: missing label ({column!r} is {shown}); fill it in or remove the row"
        )
    return str(value).strip()
