"""The program catalogue: the record of a file's row, export, キーワード, and
the records the matcher reads. Imports, keyed by (fiscal year, id), are staged
and published by :mod:`models.program_imports`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from corpus import ProgramRecord, split_departments
from corpus.text import formula_safe_text
from models.audit import record_event
from models.tables import Program, ProgramCreate, utcnow

# Compared to tell an updated row from an unchanged one.
CONTENT_FIELDS = (
    "name",
    "purpose",
    "activities",
    "department",
    "policy",
    "budget",
    "budget_thousand_yen",
    "section",
    "subsection",
    "policy_number",
    "source",
)

# The columns of an export: the bundled corpus's own headers, so that an
# exported file imports back unchanged.
EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "external_id"),
    ("年度", "fiscal_year"),
    ("大項目", "section"),
    ("中項目", "subsection"),
    ("施策番号", "policy_number"),
    ("施策名", "policy"),
    ("目的", "purpose"),
    ("事業名", "name"),
    ("取り組み内容", "activities"),
    ("担当課", "department"),
    ("予算", "budget"),
    ("予算（千円）", "budget_thousand_yen"),
    ("出典", "source"),
    ("キーワード", "keywords"),
)


@dataclass
class ImportReport:
    """What an import did, for the command's one-line report."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    fiscal_years: list[int] = field(default_factory=list)

    def summary(self) -> str:
        years = ", ".join(str(y) for y in self.fiscal_years)
        text = f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}"
        if self.deactivated:
            text += f"; {self.deactivated} programs of earlier fiscal years set inactive"
        return f"{text} (fiscal year {years})" if years else text


def program_in_from_record(record: ProgramRecord, *, source_file: str = "") -> ProgramCreate:
    """The create model of one corpus record; its fiscal year must be known."""
    if record.fiscal_year is None:
        raise ValueError(f"program {record.id}: no fiscal year (年度)")
    return ProgramCreate(
        fiscal_year=record.fiscal_year,
        external_id=record.id,
        name=record.name,
        purpose=record.purpose,
        activities=record.activities,
        department=record.department,
        policy=record.policy,
        budget=record.budget,
        budget_thousand_yen=record.budget_thousand_yen,
        section=record.section,
        subsection=record.subsection,
        policy_number=record.policy_number,
        source=record.source,
        keywords=normalize_keywords(record.keywords or ""),
        source_file=source_file,
    )


def list_programs(
    *, session: Session, fiscal_year: int | None = None, active_only: bool = False
) -> list[Program]:
    """Programs in catalogue order (fiscal year, then id)."""
    query = select(Program)
    if fiscal_year is not None:
        query = query.where(col(Program.fiscal_year) == fiscal_year)
    if active_only:
        query = query.where(col(Program.active).is_(True))
    return list(session.exec(query.order_by(col(Program.fiscal_year), col(Program.id))))


def active_program_records(*, session: Session) -> list[ProgramRecord]:
    """The active programs as matcher input, ``id`` being the database id as text."""
    rows = session.execute(
        sa_select(
            col(Program.id),
            col(Program.name),
            col(Program.purpose),
            col(Program.activities),
            col(Program.department),
            col(Program.policy),
            col(Program.keywords),
        )
        .where(col(Program.active).is_(True))
        .order_by(col(Program.id))
    ).all()
    return [
        ProgramRecord(
            id=str(pk),
            name=name,
            purpose=purpose,
            activities=activities,
            department=department,
            policy=policy,
            departments=split_departments(department),
            keywords=keywords,
        )
        for pk, name, purpose, activities, department, policy, keywords in rows
    ]


def normalize_keywords(text: str) -> str:
    """The stored form of a coordinator's keywords: each line stripped, blank lines dropped."""
    return "\n".join(line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip())


def set_keywords(*, session: Session, program: Program, keywords: str, actor: str = "") -> bool:
    """Set a program's keywords with their event (the calling command commits); False when unchanged.

    The matcher reads them from the next rematch on: the published run's
    index stays as it was, so the suggestions shown keep their reasons.
    """
    before = program.keywords
    if not _apply_keywords(session, program, keywords):
        return False
    record_event(
        session=session,
        action="programs.keywords",
        entity="program",
        entity_id=program.id or "",
        actor=actor,
        detail={"external_id": program.external_id, "before": before, "after": program.keywords},
    )
    return True


def _apply_keywords(session: Session, program: Program, keywords: str) -> bool:
    """Set a program's keywords in their stored form (not committed); False when unchanged.
    ``updated_at`` moves, so the catalogue index of online matching is refitted."""
    keywords = normalize_keywords(keywords)
    if keywords == program.keywords:
        return False
    program.keywords = keywords
    program.updated_at = utcnow()
    session.add(program)
    return True


class UnknownProgramIds(ValueError):
    """Keywords for ids that name no program of the fiscal year (nothing was changed)."""

    def __init__(self, ids: list[str], fiscal_year: int):
        self.ids = ids
        self.fiscal_year = fiscal_year
        super().__init__(f"no program of fiscal year {fiscal_year} has the id {', '.join(ids[:10])}")


@dataclass
class KeywordsReport:
    updated: int = 0
    unchanged: int = 0
    fiscal_year: int | None = None

    def summary(self) -> str:
        return f"keywords updated {self.updated}, unchanged {self.unchanged} (fiscal year {self.fiscal_year})"


def import_keywords(
    *, session: Session, keywords: dict[str, str], fiscal_year: int | None = None, actor: str = ""
) -> KeywordsReport:
    """Set the keywords of the programs of ``fiscal_year`` (default: the newest)
    by their file id, all or nothing: an id with no program raises ValueError
    and changes nothing."""
    year = fiscal_year if fiscal_year is not None else session.exec(select(func.max(col(Program.fiscal_year)))).one()
    if year is None:
        raise ValueError("no programs: import a catalogue first (kyodo programs import)")
    programs = {
        p.external_id: p
        for p in session.exec(select(Program).where(col(Program.fiscal_year) == year))
    }
    unknown = sorted(set(keywords) - set(programs))
    if unknown:
        raise UnknownProgramIds(unknown, year)
    report = KeywordsReport(fiscal_year=year)
    changed = []
    for external_id, text in keywords.items():
        if not _apply_keywords(session, programs[external_id], text):
            report.unchanged += 1
            continue
        changed.append(external_id)
        report.updated += 1
    record_event(
        session=session,
        action="programs.keywords",
        entity="program",
        actor=actor,
        detail={"fiscal_year": year, "updated": changed},
    )
    return report


def export_rows(programs: Iterable[Program]) -> list[dict[str, object]]:
    """One dict per program, keyed by the export headers."""
    rows = []
    for program in programs:
        row: dict[str, object] = {}
        for header, attribute in EXPORT_COLUMNS:
            value = getattr(program, attribute)
            row[header] = "" if value is None else value
        rows.append(row)
    return rows


def export_csv(programs: Iterable[Program]) -> str:
    """CSV text with the corpus headers (write it as UTF-8 with BOM for Excel)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[h for h, _ in EXPORT_COLUMNS], lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(_safe(row) for row in export_rows(programs))
    return out.getvalue()


def _safe(row: dict[str, object]) -> dict[str, object]:
    """Cells Excel would run as formulas quoted (the import takes the quote off)."""
    return {k: formula_safe_text(v) if isinstance(v, str) else v for k, v in row.items()}


def export_jsonl(programs: Iterable[Program]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in export_rows(programs))


def export_xlsx(programs: Iterable[Program], path: str | Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("programs")
    sheet.append([h for h, _ in EXPORT_COLUMNS])
    for row in map(_safe, export_rows(programs)):
        sheet.append([row[h] for h, _ in EXPORT_COLUMNS])
    workbook.save(path)
