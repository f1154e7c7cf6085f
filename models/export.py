"""Rows of the pairings export (CSV and JSON): every decision with its
proposal and program, in one query. No Flask here."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlmodel import Session, select

from corpus.text import formula_safe_text
from models.clock import iso_utc, to_jst
from models.labels import LABELS, Stage, Verdict
from models.tables import Decision, Program, Proposal

# (CSV header, field of PairingRow), in column order.
CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("決定番号", "decision_id"),
    ("受付番号", "receipt_number"),
    ("提案ID", "proposal_id"),
    ("受付日時", "received_at"),
    ("提案タイトル", "proposal_title"),
    ("団体名", "organization"),
    ("連絡先", "contact"),
    ("段階", "stage_label"),
    ("提案内容", "proposal_body"),
    ("事業ID", "program_id"),
    ("事業番号", "program_external_id"),
    ("事業名", "program_name"),
    ("担当課", "department"),
    ("年度", "fiscal_year"),
    ("判断", "verdict_label"),
    ("判断コード", "verdict"),
    ("メモ", "note"),
    ("判断者", "decided_by"),
    ("判断日時", "decided_at"),
    ("現在の判断", "is_current"),
)
VERDICT_LABELS = {v.value: LABELS[v] for v in Verdict}


@dataclass(frozen=True)
class PairingRow:
    decision_id: int
    receipt_number: str
    proposal_id: int
    proposal_title: str
    organization: str
    received_at: datetime
    contact: str
    stage_label: str
    proposal_body: str
    program_id: int
    program_external_id: str
    program_name: str
    department: str
    fiscal_year: int
    verdict: str
    verdict_label: str
    note: str
    decided_by: str
    decided_at: datetime
    is_current: bool

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["decided_at"] = iso_utc(self.decided_at)
        data["received_at"] = iso_utc(self.received_at)
        return data


def pairing_rows(*, session: Session, current_only: bool = False) -> list[PairingRow]:
    """Every decision (or only each pair's current one), by proposal, program and time."""
    query = (
        select(Decision, Proposal, Program)
        .join(Proposal, Proposal.id == Decision.proposal_id)  # type: ignore[arg-type]
        .join(Program, Program.id == Decision.program_id)  # type: ignore[arg-type]
        .order_by(Decision.proposal_id, Decision.program_id, Decision.id)  # type: ignore[arg-type]
    )
    found = list(session.exec(query))
    newest: dict[tuple[int, int], int] = {}
    for decision, _, _ in found:
        newest[(decision.proposal_id, decision.program_id)] = decision.id or 0
    rows = []
    for decision, proposal, program in found:
        is_current = newest[(decision.proposal_id, decision.program_id)] == decision.id
        if current_only and not is_current:
            continue
        rows.append(
            PairingRow(
                decision_id=decision.id or 0,
                receipt_number=proposal.receipt_number or "",
                proposal_id=proposal.id or 0,
                proposal_title=proposal.title,
                organization=proposal.organization,
                received_at=proposal.created_at,
                contact=" ".join(x for x in (proposal.email, proposal.phone) if x),
                stage_label=LABELS[Stage(proposal.stage)] if proposal.stage in Stage._value2member_map_ else proposal.stage,
                proposal_body=proposal.body,
                program_id=program.id or 0,
                program_external_id=program.external_id,
                program_name=program.name,
                department=program.department,
                fiscal_year=program.fiscal_year,
                verdict=decision.verdict,
                verdict_label=VERDICT_LABELS.get(decision.verdict, decision.verdict),
                note=decision.note,
                decided_by=decision.decided_by,
                decided_at=decision.decided_at,
                is_current=is_current,
            )
        )
    return rows


def formula_safe(value: object) -> str:
    """One spreadsheet cell: times in JST, booleans as はい, formulas quoted."""
    if isinstance(value, datetime):
        value = to_jst(value).strftime("%Y-%m-%d %H:%M")
    text = "" if value is None else str(value)
    if isinstance(value, bool):
        text = "はい" if value else ""
    return formula_safe_text(text)  # a cell Excel would run as a formula is quoted


def pairings_csv(rows: Iterable[PairingRow]) -> str:
    """CSV with a UTF-8 BOM (Excel then reads the Japanese correctly) and CRLF lines."""
    return excel_csv(CSV_COLUMNS, rows)


def excel_csv(columns: Iterable[tuple[str, str]], rows: Iterable[object]) -> str:
    """Rows (objects with the columns' fields) as CSV for Excel: a UTF-8 BOM, CRLF, safe cells."""
    columns = list(columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([header for header, _ in columns])
    for row in rows:
        writer.writerow([formula_safe(getattr(row, name)) for _, name in columns])
    return "\ufeff" + out.getvalue()


def excel_xlsx(columns: Iterable[tuple[str, str]], rows: Iterable[object], sheet_name: str) -> bytes:
    """The same rows as an Excel workbook: every cell a value, never a formula
    (a text starting with = + - @ is quoted as in the CSV)."""
    from openpyxl import Workbook

    columns = list(columns)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_name)
    sheet.append([header for header, _ in columns])
    for row in rows:
        sheet.append([_xlsx_cell(getattr(row, name)) for _, name in columns])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _xlsx_cell(value: object) -> object:
    if isinstance(value, bool) or value is None or isinstance(value, datetime | str):
        return formula_safe(value)
    return value  # numbers stay numbers
