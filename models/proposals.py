"""Proposals: creation with a receipt number and a private status token,
lookup, status changes, and the import of old paper records."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlmodel import Session, col, select

from corpus import FileFormatError, InvalidRowsError, Row
from models.audit import record_event
from models.clock import to_jst
from models.labels import parse_collaboration_type
from models.tables import PROPOSAL_LIMITS, Proposal, ProposalBase, ProposalCreate, utcnow
from models.tokens import hash_token, new_status_token

# The keys of the API and of `kyodo proposals import`: the proposal's fields.
IMPORT_KEYS = tuple(ProposalBase.model_fields)
COMPARED_FIELDS = IMPORT_KEYS


def receipt_number(proposal_id: int, received: datetime) -> str:
    """``2026-000123``: the year received (Japan time) and the proposal's number."""
    return f"{to_jst(received).year}-{proposal_id:06d}"


def add_proposal(*, session: Session, proposal_in: ProposalCreate) -> tuple[Proposal, str]:
    """Add a proposal and flush (the calling command commits); returns it and
    its status token (shown once, kept hashed)."""
    return _new_proposal(session, proposal_in)


def _new_proposal(session: Session, proposal_in: ProposalCreate) -> tuple[Proposal, str]:
    token = new_status_token()
    proposal = Proposal.model_validate(proposal_in, update={"status_token_hash": hash_token(token)})
    session.add(proposal)
    session.flush()  # the id makes the receipt number: unique without a counter table
    assert proposal.id is not None
    proposal.receipt_number = receipt_number(proposal.id, proposal.created_at)
    session.add(proposal)
    return proposal, token


def get_proposal(*, session: Session, proposal_id: int) -> Proposal | None:
    return session.get(Proposal, proposal_id)


def get_proposal_by_token(*, session: Session, token: str) -> Proposal | None:
    """The proposal a status link points at, or None."""
    return session.exec(select(Proposal).where(col(Proposal.status_token_hash) == hash_token(token))).first()


def get_proposal_by_receipt(*, session: Session, receipt: str) -> Proposal | None:
    return session.exec(select(Proposal).where(col(Proposal.receipt_number) == receipt)).first()


# -- import of paper records --------------------------------------------------


@dataclass
class ProposalImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    proposal_ids: tuple[int, ...] = ()  # added or updated: to be matched now

    def summary(self) -> str:
        return f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}"


def _text(values: dict[str, object], key: str) -> str:
    value = values.get(key)
    return "" if value is None else str(value).strip()


def proposal_in_from_row(path: str | Path, row: Row) -> ProposalCreate:
    """Validate one imported record through ProposalCreate (the limits of
    PROPOSAL_LIMITS); raises FileFormatError naming its line and field."""
    values: dict[str, object] = {key: _text(row.values, key) for key in IMPORT_KEYS}
    try:
        values["collaboration_type"] = parse_collaboration_type(_text(values, "collaboration_type"))
    except ValueError as exc:
        raise FileFormatError(path, str(exc), row.line) from None
    budget_text = unicodedata.normalize("NFKC", _text(values, "budget_thousand_yen")).replace(",", "")
    if budget_text and not budget_text.isdigit():
        raise FileFormatError(path, f"budget_thousand_yen {budget_text!r} is not a number", row.line)
    values["budget_thousand_yen"] = int(budget_text) if budget_text else None
    email = _text(values, "email")
    if email:
        try:
            values["email"] = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError:
            raise FileFormatError(path, f"email {email!r} is not an e-mail address", row.line) from None
    values["external_ref"] = _text(row.values, "id") or None
    try:
        return ProposalCreate.model_validate(values)
    except ValidationError as exc:
        problems = [_problem(error) for error in exc.errors()]
        english, japanese = ", ".join(p[0] for p in problems), "、".join(p[1] for p in problems)
        raise FileFormatError(path, english, row.line, ja=japanese) from None


def _problem(error: ErrorDetails) -> tuple[str, str]:
    """One error of ProposalCreate in English and Japanese, naming the field
    (``title is longer than 100 characters``, 提案タイトルは100文字以内にしてください)."""
    key = str(error["loc"][0]) if error["loc"] else "record"
    rule = PROPOSAL_LIMITS.get(key)
    label = rule.label if rule else key
    kind, ctx = error["type"], error.get("ctx", {})
    if kind in ("missing", "string_too_short"):
        return f"{key} is empty", f"{label}が空です"
    if kind == "string_too_long":
        n = ctx["max_length"]
        return f"{key} is longer than {n} characters", f"{label}は{n}文字以内にしてください"
    if kind in ("greater_than_equal", "less_than_equal") and rule and rule.maximum is not None:
        low, high = rule.minimum or 0, rule.maximum
        return (
            f"{key} {error['input']} is not between {low} and {high:,}",
            f"{label}は{low}から{high:,}{rule.unit}の整数にしてください",
        )
    if kind == "value_error":  # ProposalCreate's own check
        return f"{key} contains control characters", f"{label}に使用できない制御文字が含まれています"
    return f"{key}: {error['msg']}", f"{label}：{error['msg']}"


def proposals_from_rows(
    path: str | Path, rows: Iterable[Row], *, skip_invalid: bool = False
) -> list[ProposalCreate]:
    """Every valid record; any invalid one raises InvalidRowsError naming every bad line."""
    valid: list[ProposalCreate] = []
    errors: list[FileFormatError] = []
    seen: dict[str, int] = {}
    for row in rows:
        try:
            proposal_in = proposal_in_from_row(path, row)
        except FileFormatError as exc:
            errors.append(exc)
            continue
        ref = proposal_in.external_ref
        if ref is not None and ref in seen:
            errors.append(FileFormatError(path, f"id {ref!r} repeats line {seen[ref]}", row.line))
            continue
        if ref is not None:
            seen[ref] = row.line
        valid.append(proposal_in)
    if errors and not skip_invalid:
        raise InvalidRowsError(errors)
    return valid


def _find_existing(session: Session, proposal_in: ProposalCreate) -> Proposal | None:
    # With an id: that record. Without: the same organization, title and body.
    if proposal_in.external_ref is not None:
        return session.exec(
            select(Proposal).where(col(Proposal.external_ref) == proposal_in.external_ref)
        ).first()
    return session.exec(
        select(Proposal).where(
            col(Proposal.external_ref).is_(None),
            col(Proposal.organization) == proposal_in.organization,
            col(Proposal.title) == proposal_in.title,
            col(Proposal.body) == proposal_in.body,
        )
    ).first()


def import_proposals(
    *, session: Session, proposals_in: Iterable[ProposalCreate], source_file: str = "", actor: str = ""
) -> ProposalImportReport:
    """Insert or update every record and flush (the calling command commits
    them in one transaction): importing twice changes nothing."""
    report = ProposalImportReport()
    touched: list[Proposal] = []
    for proposal_in in proposals_in:
        existing = _find_existing(session, proposal_in)
        if existing is None:
            proposal, _ = _new_proposal(session, proposal_in)
            touched.append(proposal)
            report.added += 1
            continue
        changes = {
            key: getattr(proposal_in, key)
            for key in COMPARED_FIELDS
            if getattr(existing, key) != getattr(proposal_in, key)
        }
        if not changes:
            report.unchanged += 1
            continue
        for key, value in changes.items():
            setattr(existing, key, value)
        existing.updated_at = utcnow()
        session.add(existing)
        touched.append(existing)
        report.updated += 1
    session.flush()
    report.proposal_ids = tuple(p.id for p in touched if p.id is not None)
    record_event(
        session=session,
        action="proposals.import",
        entity="proposal",
        actor=actor,
        detail={"source_file": source_file, "added": report.added, "updated": report.updated,
                "unchanged": report.unchanged},
    )
    return report
