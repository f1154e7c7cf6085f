"""A department directory (担当課, 部, 所掌事務): the headers a city's file may
use, and the rows the matcher reads (``kyodo match --departments``). The app
stores the same rows as ``models.workflow_tables.Department``, read through
``models.departments`` with these headers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corpus.files import DEFAULT_LIMITS, FileFormatError, ReadLimits, read_rows

# The headers a file may use for each field: the office's Japanese first
# (also the export's), then the English keys.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("担当課", "name"),
    "parent": ("部", "parent"),
    "emails": ("メールアドレス", "emails", "email"),
    "duties": ("所掌事務", "duties"),
    "active": ("有効", "active"),
}


@dataclass(frozen=True)
class DepartmentDuty:
    """One department of a directory as the matcher reads it."""

    name: str
    parent: str = ""
    duties: str = ""


def _cell(values: dict[str, object], key: str) -> str:
    for alias in HEADER_ALIASES[key]:
        if values.get(alias) is not None:
            return str(values[alias]).strip()
    return ""


def load_department_duties(path: str | Path, limits: ReadLimits = DEFAULT_LIMITS) -> list[DepartmentDuty]:
    """The rows of a CSV / XLSX / JSONL directory with a 担当課 column (部 and
    所掌事務 optional); rows without a name are skipped, a file without the
    column raises :class:`FileFormatError`."""
    rows = list(read_rows(path, limits))
    if not any(alias in row.values for row in rows for alias in HEADER_ALIASES["name"]):
        raise FileFormatError(path, "missing required column 担当課 (or name)", ja="「担当課」の列がありません")
    found = [
        DepartmentDuty(name=_cell(r.values, "name"), parent=_cell(r.values, "parent"), duties=_cell(r.values, "duties"))
        for r in rows
    ]
    return [d for d in found if d.name]
