"""Typed queries of themes and of joint 協働事業. Add and flush only; the
``office.themes`` run and the ``office.theme_edits`` commands (and
``office.answers`` for a project) commit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from models.clock import utcnow
from models.labels import CLOSED_STAGES
from models.tables import AuditEvent, Proposal
from models.theme_tables import ProjectProposal, Theme, ThemeMember
from models.workflow_tables import Project

# -- open proposals and their themes ------------------------------------------------


def is_open(proposal: Proposal) -> bool:
    """Grouped into themes: not closed (不採択, 取り下げ, 完了) and not merged into another."""
    return proposal.stage not in CLOSED_STAGES and proposal.merged_into_id is None


def open_proposal_ids(*, session: Session) -> list[int]:
    query = select(col(Proposal.id)).where(
        col(Proposal.stage).not_in(CLOSED_STAGES), col(Proposal.merged_into_id).is_(None)
    ).order_by(col(Proposal.id))
    return [int(pk) for pk in session.exec(query) if pk is not None]


def memberships(*, session: Session) -> dict[int, ThemeMember]:
    """Every proposal's membership, by proposal id."""
    return {m.proposal_id: m for m in session.exec(select(ThemeMember))}


def all_themes(*, session: Session) -> dict[int, Theme]:
    return {t.id: t for t in session.exec(select(Theme).order_by(col(Theme.id))) if t.id is not None}


def theme_of(*, session: Session, proposal_id: int) -> Theme | None:
    query = select(Theme).join(ThemeMember, col(ThemeMember.theme_id) == col(Theme.id)).where(
        col(ThemeMember.proposal_id) == proposal_id)
    return session.exec(query).first()


def members_of(*, session: Session, theme_id: int, open_only: bool = True) -> list[tuple[Proposal, ThemeMember]]:
    """The theme's proposals (open ones only, by default), oldest first."""
    query = (
        select(Proposal, ThemeMember).join(ThemeMember, col(ThemeMember.proposal_id) == col(Proposal.id))
        .where(col(ThemeMember.theme_id) == theme_id).order_by(col(Proposal.id))
    )
    return [(p, m) for p, m in session.exec(query) if not open_only or is_open(p)]


def place(*, session: Session, proposal_ids: Iterable[int], theme_id: int, pinned: bool) -> None:
    """Put each proposal in ``theme_id`` (out of any other theme)."""
    ids = list(proposal_ids)
    if not ids:
        return
    found = {m.proposal_id: m for m in session.exec(select(ThemeMember).where(col(ThemeMember.proposal_id).in_(ids)))}
    for proposal_id in ids:
        member = found.get(proposal_id) or ThemeMember(theme_id=theme_id, proposal_id=proposal_id)
        member.theme_id, member.pinned = theme_id, pinned
        session.add(member)
    session.flush()


def remove_members(*, session: Session, proposal_ids: Iterable[int]) -> None:
    ids = list(proposal_ids)
    if ids:
        session.execute(delete(ThemeMember).where(col(ThemeMember.proposal_id).in_(ids)))


def new_theme(*, session: Session, label: str, terms: Iterable[str] = (), by_coordinator: bool = False) -> Theme:
    theme = Theme(label=label, terms=list(terms), label_by_coordinator=by_coordinator)
    session.add(theme)
    session.flush()
    return theme


def restore_theme(*, session: Session, theme_id: int, label: str, terms: Iterable[str], by_coordinator: bool,
                  created_at: datetime | None) -> Theme:
    """A deleted theme back (an undone join), under its old id unless another
    theme holds it now (SQLite can give a deleted highest id to a new row)."""
    taken = session.get(Theme, theme_id) is not None
    theme = Theme(id=None if taken else theme_id, label=label, terms=list(terms), label_by_coordinator=by_coordinator)
    if created_at is not None:
        theme.created_at = created_at  # its edits before the join are its own again
    session.add(theme)
    session.flush()
    return theme


def theme_edit_events(*, session: Session, actions: Iterable[str]) -> list[AuditEvent]:
    """The events of these theme actions, oldest first (the coordinator's
    edits are few: hundreds in a year, read whole)."""
    query = select(AuditEvent).where(col(AuditEvent.entity) == "theme", col(AuditEvent.action).in_(list(actions)))
    return list(session.exec(query.order_by(col(AuditEvent.id))))


def delete_empty_themes(*, session: Session, keep_named: bool) -> int:
    """Delete the themes without any member (``keep_named``: not those the
    coordinator named); the count deleted."""
    used = select(col(ThemeMember.theme_id)).distinct()
    query = delete(Theme).where(col(Theme.id).not_in(used))
    if keep_named:
        query = query.where(col(Theme.label_by_coordinator).is_(False))
    return int(session.execute(query).rowcount or 0)  # type: ignore[attr-defined]


def touch(theme: Theme) -> None:
    theme.updated_at = utcnow()


# -- what the dashboard shows ---------------------------------------------------------


def organisation_key(proposal: Proposal) -> str:
    """Who proposed it, for counting groups: the 団体名, else the e-mail, else the proposal itself."""
    name = (proposal.organization or "").strip()
    return name or (proposal.email or "").strip().lower() or f"#{proposal.id}"


@dataclass
class ThemeSummary:
    theme: Theme
    proposals: list[Proposal]

    @property
    def organisations(self) -> list[str]:
        """The distinct organisations, as the first of their proposals writes them."""
        seen: dict[str, str] = {}
        for proposal in self.proposals:
            seen.setdefault(organisation_key(proposal), (proposal.organization or "").strip() or "（団体名なし）")
        return list(seen.values())


def theme_summaries(*, session: Session) -> list[ThemeSummary]:
    """Every theme with its open proposals, those of more organisations first
    (then more proposals, then the older theme); themes without an open proposal left out."""
    themes = all_themes(session=session)
    proposals: dict[int, list[Proposal]] = {}
    query = (
        select(Proposal, ThemeMember).join(ThemeMember, col(ThemeMember.proposal_id) == col(Proposal.id))
        .order_by(col(Proposal.id))
    )
    for proposal, member in session.exec(query):
        if is_open(proposal):
            proposals.setdefault(member.theme_id, []).append(proposal)
    found = [ThemeSummary(themes[tid], rows) for tid, rows in proposals.items() if tid in themes]
    return sorted(found, key=lambda s: (-len(s.organisations), -len(s.proposals), s.theme.id or 0))


# -- joint 協働事業 --------------------------------------------------------------------


def joint_project_of(*, session: Session, proposal_id: int) -> tuple[Project, ProjectProposal] | None:
    """The 協働事業 this proposal is linked to (a joint one), with its link."""
    query = select(Project, ProjectProposal).join(
        ProjectProposal, col(ProjectProposal.project_id) == col(Project.id)
    ).where(col(ProjectProposal.proposal_id) == proposal_id)
    row = session.exec(query).first()
    return (row[0], row[1]) if row is not None else None


def project_proposals(*, session: Session, project_id: int) -> list[Proposal]:
    """The proposals of a joint 協働事業, the lead first, then by id."""
    project = session.get(Project, project_id)
    query = select(Proposal).join(ProjectProposal, col(ProjectProposal.proposal_id) == col(Proposal.id)).where(
        col(ProjectProposal.project_id) == project_id).order_by(col(Proposal.id))
    rows = list(session.exec(query))
    lead = project.proposal_id if project is not None else None
    return sorted(rows, key=lambda p: (p.id != lead, p.id or 0))


def projects_of(*, session: Session, proposal_ids: Iterable[int]) -> dict[int, int]:
    """The 協働事業 (id) each of these proposals is in, as lead or linked."""
    ids = list(proposal_ids)
    if not ids:
        return {}
    out = {int(pid): int(prj) for prj, pid in session.exec(
        select(col(ProjectProposal.project_id), col(ProjectProposal.proposal_id))
        .where(col(ProjectProposal.proposal_id).in_(ids)))}
    for prj, pid in session.exec(select(col(Project.id), col(Project.proposal_id)).where(col(Project.proposal_id).in_(ids))):
        out.setdefault(int(pid), int(prj or 0))
    return out


def link_proposals(*, session: Session, project_id: int, proposal_ids: Iterable[int]) -> None:
    known = set(session.exec(select(col(ProjectProposal.proposal_id)).where(col(ProjectProposal.project_id) == project_id)))
    for proposal_id in proposal_ids:
        if proposal_id not in known:
            session.add(ProjectProposal(project_id=project_id, proposal_id=proposal_id))
    session.flush()
