"""The city's departments (担当課) as records: read from the office's own file,
upserted by name, counted against the catalogue and exported for Excel. Add
and flush only; the commands of ``office.departments`` commit.

The link rule: a program belongs to a department because its 担当課 cell names
it (``corpus.split_departments``); there is no link table, the cell being the
one home of that fact. So a department's name must be one such a cell can
hold: a name with a space or a separator (、・／…) inside would never match.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from corpus import FileFormatError, InvalidRowsError, Row, read_rows, split_departments
from corpus.departments import HEADER_ALIASES  # the headers an import accepts, one home
from corpus.files import DEFAULT_LIMITS, ReadLimits
from models.clock import utcnow
from models.export import formula_safe  # the pairings export's rule for Excel cells
from models.tables import Program
from models.workflow import all_departments, department_by_name
from models.workflow_tables import Department, DepartmentCreate

LABELS = {key: aliases[0] for key, aliases in HEADER_ALIASES.items()}
# The fields an edit or an import may change: never the name, which the
# programs' 担当課 cells hold.
EDITABLE = ("parent", "emails", "duties", "active")
# 有効 as people write it in a sheet; an empty cell keeps what is stored.
YES = frozenset({"はい", "有効", "○", "〇", "true", "yes", "1"})
NO = frozenset({"いいえ", "無効", "×", "false", "no", "0"})
# What formula_safe puts before a cell that Excel would run as a formula.
FORMULA_STARTS = ("=", "+", "-", "@")


@dataclass
class DepartmentImportReport:
    """What an import did, for the command's one-line report and its event."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0

    def summary(self) -> str:
        return f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}"

    def counts(self) -> dict[str, int]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged}


# -- reading a file -----------------------------------------------------------------


def load_departments(path: str | Path, limits: ReadLimits = DEFAULT_LIMITS) -> list[DepartmentCreate]:
    """Every row of a CSV (UTF-8, BOM or cp932), XLSX or JSONL file as a
    department; any bad row raises :class:`InvalidRowsError` naming every bad
    line, a file that cannot be read at all :class:`FileFormatError`."""
    rows = list(read_rows(path, limits))
    keys: set[str] = set()
    for row in rows:
        keys.update(row.values)
    if not keys & set(HEADER_ALIASES["name"]):
        raise FileFormatError(path, "missing required column 担当課 (or name)", ja="「担当課」の列がありません")
    found: list[DepartmentCreate] = []
    errors: list[FileFormatError] = []
    seen: dict[str, int] = {}
    for row in rows:
        try:
            department_in = department_in_from_row(path, row)
        except FileFormatError as exc:
            errors.append(exc)
            continue
        if department_in.name in seen:
            first = seen[department_in.name]
            errors.append(FileFormatError(
                path, f"担当課 {department_in.name!r} repeats line {first}", row.line,
                ja=f"担当課「{department_in.name}」が{first}行目と重複しています",
            ))
            continue
        seen[department_in.name] = row.line
        found.append(department_in)
    if errors:
        raise InvalidRowsError(errors)
    return found


def _cell_text(values: dict[str, object], key: str) -> str | None:
    """The cell of the first header naming ``key``; None when the file has no such column."""
    for alias in HEADER_ALIASES[key]:
        if alias in values:
            text = "" if values[alias] is None else str(values[alias]).strip()
            # An exported cell came back: drop the quote formula_safe added.
            if text[:1] == "'" and text[1:2] in FORMULA_STARTS:
                text = text[1:]
            return text
    return None


def department_in_from_row(path: str | Path, row: Row) -> DepartmentCreate:
    """Validate one row through DepartmentCreate; raises FileFormatError naming
    its line and field. Only the columns the file has are set, so an update
    leaves the others as stored."""
    values: dict[str, Any] = {}
    for key in HEADER_ALIASES:
        text = _cell_text(row.values, key)
        if text is not None:
            values[key] = text
    name = values.get("name", "")
    if name and split_departments(name) != (name,):
        raise FileFormatError(
            path, f"担当課 {name!r} holds a space or a separator, so no program's 担当課 could name it", row.line,
            ja=f"担当課「{name}」に空白や区切りの文字（、・／など）があります。事業の担当課と結びつかないため使えません",
        )
    active = values.pop("active", "")
    if active.lower() in YES:
        values["active"] = True
    elif active.lower() in NO:
        values["active"] = False
    elif active:
        raise FileFormatError(
            path, f"有効 {active!r} is neither はい nor いいえ", row.line, ja="有効は「はい」か「いいえ」にしてください"
        )
    try:
        return DepartmentCreate.model_validate(values)
    except ValidationError as exc:
        problems = [problem(error) for error in exc.errors()]
        english, japanese = ", ".join(p[0] for p in problems), "、".join(p[1] for p in problems)
        raise FileFormatError(path, english, row.line, ja=japanese) from None


def problem(error: ErrorDetails) -> tuple[str, str]:
    """One error of DepartmentCreate in English and Japanese, naming the field
    (``メールアドレス: x@ is not an e-mail address``, メールアドレス「x@」の形式が正しくありません)."""
    key = str(error["loc"][0]) if error["loc"] else "name"
    label = LABELS.get(key, key)
    kind, ctx = error["type"], error.get("ctx", {})
    if kind in ("missing", "string_too_short"):
        return f"{label} ({key}) is empty", f"{label}が空です"
    if kind == "string_too_long":
        n = ctx["max_length"]
        return f"{label} ({key}) is longer than {n} characters", f"{label}は{n}文字以内にしてください"
    reason = str(ctx.get("error", error["msg"]))
    if "control characters" in reason:
        return f"{label} ({key}) contains control characters", f"{label}に使用できない制御文字が含まれています"
    if key == "emails":
        address = reason.removesuffix(" is not an e-mail address")
        return f"{label}: {reason}", f"{label}「{address}」の形式が正しくありません"
    return f"{label} ({key}): {reason}", f"{label}：{reason}"


# -- writing ------------------------------------------------------------------------


def apply_changes(department: Department, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Set the values that differ (not flushed); each change's before and after,
    for the event. ``updated_at`` moves only when something changed."""
    changes = {
        key: {"from": getattr(department, key), "to": value}
        for key, value in values.items()
        if getattr(department, key) != value
    }
    for key, change in changes.items():
        setattr(department, key, change["to"])
    if changes:
        department.updated_at = utcnow()
    return changes


def upsert_department(*, session: Session, department_in: DepartmentCreate) -> tuple[Department, str]:
    """Insert or update by name; ``"added"``, ``"updated"`` or ``"unchanged"``.
    Only the fields the file set (``model_fields_set``) are compared. Not flushed."""
    existing = department_by_name(session=session, name=department_in.name)
    if existing is None:
        department = Department.model_validate(department_in)
        session.add(department)
        return department, "added"
    given = {key: getattr(department_in, key) for key in EDITABLE if key in department_in.model_fields_set}
    if not apply_changes(existing, given):
        return existing, "unchanged"
    session.add(existing)
    return existing, "updated"


def upsert_departments(*, session: Session, departments_in: Sequence[DepartmentCreate]) -> DepartmentImportReport:
    """Upsert every department and flush; never deletes one (the calling command commits)."""
    report = DepartmentImportReport()
    for department_in in departments_in:
        _, outcome = upsert_department(session=session, department_in=department_in)
        setattr(report, outcome, getattr(report, outcome) + 1)
    session.flush()
    return report


# -- reading for the pages and the export ---------------------------------------------


def program_counts(*, session: Session) -> dict[str, int]:
    """Programs (every fiscal year, as the department's page lists them) per
    department named in their 担当課 cells; a joint program counts for each."""
    rows = session.execute(
        sa_select(col(Program.department), func.count()).group_by(col(Program.department))
    ).all()
    counts: dict[str, int] = {}
    for cell, n in rows:
        for name in set(split_departments(cell or "")):
            counts[name] = counts.get(name, 0) + int(n)
    return counts


def department_rows(*, session: Session) -> list[tuple[Department, int]]:
    """Every department by name, with its number of programs."""
    counts = program_counts(session=session)
    return [(d, counts.get(d.name, 0)) for d in all_departments(session=session)]


EXPORT_COLUMNS: tuple[tuple[str, str], ...] = tuple((LABELS[key], key) for key in HEADER_ALIASES)


def export_rows(departments: Iterable[Department]) -> list[list[str]]:
    """One row per department in the import's headers' order, each cell safe
    to open in Excel (a leading = + - @ is quoted; the import removes it)."""
    def text(department: Department, key: str) -> str:
        if key == "active":
            return "はい" if department.active else "いいえ"
        return str(getattr(department, key))

    return [[formula_safe(text(d, key)) for _, key in EXPORT_COLUMNS] for d in departments]


def export_csv(departments: Iterable[Department]) -> str:
    """CSV text with the import's headers (write it as UTF-8 with BOM for Excel)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([header for header, _ in EXPORT_COLUMNS])
    writer.writerows(export_rows(departments))
    return out.getvalue()


def export_xlsx(departments: Iterable[Department], path: str | Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("departments")
    sheet.append([header for header, _ in EXPORT_COLUMNS])
    for row in export_rows(departments):
        sheet.append(row)
    workbook.save(path)
