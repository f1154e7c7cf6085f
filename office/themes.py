"""Themes of the open proposals: the nightly regrouping (:func:`regroup`, called
by the rematch after publication) and what a theme's page shows. The
coordinator's edits (rename, split, join) and their undo are commands of
:mod:`office.theme_edits`.

The rule (docs/rematch.md, "Themes"): nothing a coordinator did is undone by
a run. A renamed theme keeps its label; a proposal the coordinator moved (a
split or a join) is ``pinned`` and no run moves it; the run regroups the
other open proposals around them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, update
from sqlmodel import Session, col

from corpus.programs import split_departments
from matcher import MatchIndex
from matcher.results import MatchResult, ProgramMatch
from matcher.themes import Theme as FoundTheme
from matcher.themes import has_all, shared_programs, themes, themes_among
from models.suggestions import suggestions_for
from models.tables import Program, Proposal
from models.theme_tables import Theme, ThemeMember
from models.themes import (
    ThemeSummary,
    all_themes,
    delete_empty_themes,
    members_of,
    memberships,
    new_theme,
    open_proposal_ids,
    projects_of,
    theme_summaries,
    touch,
)
from office.texts import CountedTexts, proposal_texts

logger = logging.getLogger(__name__)


# -- the nightly regrouping -------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """One group the matcher found: proposal ids (ints) and its words."""

    proposal_ids: tuple[int, ...]
    label: str
    terms: tuple[str, ...] = ()


@dataclass
class RegroupReport:
    themes: int = 0  # themes with an open proposal after the run
    created: int = 0
    moved: int = 0  # proposals placed by the run (new to a theme or moved)
    deleted: int = 0


def match_clusters(clusters: Sequence[Cluster], current: Mapping[int, int], named: Iterable[int] = ()) -> dict[int, int]:
    """Each cluster (by position) → the existing theme it continues: the one
    holding most of its proposals before the run (pinned or not), pairs taken
    greedily, largest overlap first (ties: a theme the coordinator named, then
    the older theme); a theme continues one cluster at most. ``current``:
    proposal id → its theme id. A cluster with no overlap left is new.

    >>> match_clusters([Cluster((1, 2, 3), "a"), Cluster((4,), "b")], {1: 7, 2: 7, 3: 8, 4: 8})
    {0: 7, 1: 8}
    >>> match_clusters([Cluster((1, 2, 3, 4), "a")], {1: 7, 2: 7, 3: 9, 4: 9}, named=[9])
    {0: 9}
    """
    overlap: Counter[tuple[int, int]] = Counter()
    for position, cluster in enumerate(clusters):
        for proposal_id in cluster.proposal_ids:
            if proposal_id in current:
                overlap[(position, current[proposal_id])] += 1
    named_ids = set(named)
    ordered = sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0][1] not in named_ids, kv[0][1], kv[0][0]))
    matched: dict[int, int] = {}
    taken: set[int] = set()
    for (position, theme_id), _count in ordered:
        if position not in matched and theme_id not in taken:
            matched[position] = theme_id
            taken.add(theme_id)
    return matched


def find_clusters(engine: Engine, index: MatchIndex, counts: CountedTexts | None = None) -> list[Cluster]:
    """The open proposals grouped by the matcher, with the run's mode and
    model (``counts``: the run's term counts, so nothing is tokenized again)."""
    with Session(engine) as session:
        texts = proposal_texts(session=session, proposal_ids=open_proposal_ids(session=session))
    if not texts:
        return []
    if counts is not None and counts.pairs is not None and has_all(counts.pairs[0], texts):
        found = themes_among(*counts.pairs, [p.id for p in texts])
    else:
        counted = counts.of(texts) if counts is not None else None
        found = themes(texts, mode=index.mode, embedder=index.get_embedder(), counted=counted)
    return [Cluster(tuple(int(p) for p in t.proposal_ids), t.label, t.terms) for t in found]


def regroup(*, engine: Engine, index: MatchIndex, counts: CountedTexts | None = None) -> RegroupReport | None:
    """Regroup the open proposals after a published run (see the module). A
    failure is logged and keeps the previous themes: the run is published."""
    try:
        clusters = find_clusters(engine, index, counts)
        with Session(engine) as session:
            report = reconcile(session, clusters)
            session.commit()
        return report
    except Exception:
        logger.exception("themes: not regrouped, the previous themes are kept")
        return None


def reconcile(session: Session, clusters: Sequence[Cluster]) -> RegroupReport:
    """Write ``clusters`` over the stored themes (in the caller's transaction):
    pinned memberships stay; each cluster continues its theme
    (:func:`match_clusters`) or starts one; a theme the coordinator named keeps
    its label; unpinned memberships of proposals no longer open go; themes left
    empty go, unless the coordinator named them."""
    report = RegroupReport()
    stored = memberships(session=session)
    themes_now = all_themes(session=session)
    current = {pid: m.theme_id for pid, m in stored.items()}
    matched = match_clusters(clusters, current, [t for t, theme in themes_now.items() if theme.label_by_coordinator])
    grouped = {pid for c in clusters for pid in c.proposal_ids}
    gone = [pid for pid, m in stored.items() if not m.pinned and pid not in grouped]
    if gone:
        session.execute(delete(ThemeMember).where(col(ThemeMember.proposal_id).in_(gone), col(ThemeMember.pinned).is_(False)))
    for position, cluster in enumerate(clusters):
        free = [pid for pid in cluster.proposal_ids if pid not in stored or not stored[pid].pinned]
        theme = themes_now.get(matched[position]) if position in matched else None
        if theme is None:
            if not free:
                continue
            theme = new_theme(session=session, label=cluster.label, terms=cluster.terms)
            report.created += 1
        elif not theme.label_by_coordinator:
            theme.label, theme.terms = cluster.label, list(cluster.terms)
            touch(theme)
            session.add(theme)
        else:
            theme.terms = list(cluster.terms)
            session.add(theme)
        report.moved += _place_free(session, free, stored, int(theme.id or 0))
    session.flush()
    report.deleted = delete_empty_themes(session=session, keep_named=True)
    report.themes = len(theme_summaries(session=session))
    return report


def _place_free(session: Session, free: list[int], stored: Mapping[int, ThemeMember], theme_id: int) -> int:
    """Put the unpinned proposals in the theme; a membership pinned meanwhile
    (a coordinator's edit while the run clustered) is left as it is."""
    moving = [pid for pid in free if pid in stored and stored[pid].theme_id != theme_id]
    if moving:
        session.execute(update(ThemeMember).where(
            col(ThemeMember.proposal_id).in_(moving), col(ThemeMember.pinned).is_(False)).values(theme_id=theme_id))
    added = [pid for pid in free if pid not in stored]
    for pid in added:
        session.add(ThemeMember(theme_id=theme_id, proposal_id=pid, pinned=False))
    return len(moving) + len(added)


# -- what a theme page shows -------------------------------------------------------------


@dataclass
class ThemePage:
    theme: Theme
    summary: ThemeSummary
    pinned: set[int]
    programs: list[Program] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)
    projects: dict[int, int] = field(default_factory=dict)  # proposal id → its 協働事業
    others: list[ThemeSummary] = field(default_factory=list)  # themes to join into this one


def theme_page(*, session: Session, theme_id: int) -> ThemePage | None:
    theme = session.get(Theme, theme_id)
    if theme is None:
        return None
    rows = members_of(session=session, theme_id=theme_id)
    proposals = [p for p, _ in rows]
    programs = shared_of(session, proposals)
    departments = list(dict.fromkeys(d for program in programs for d in split_departments(program.department)))
    return ThemePage(
        theme=theme, summary=ThemeSummary(theme, proposals), pinned={m.proposal_id for _, m in rows if m.pinned},
        programs=programs, departments=departments,
        projects=projects_of(session=session, proposal_ids=[p.id for p in proposals if p.id is not None]),
        others=[s for s in theme_summaries(session=session) if s.theme.id != theme_id],
    )


def shared_of(session: Session, proposals: Sequence[Proposal]) -> list[Program]:
    """The programs the theme's proposals share in their published suggestions
    (matcher.themes.shared_programs: in the first three of more than half)."""
    ids = [p.id for p in proposals if p.id is not None]
    if not ids:
        return []
    results = {
        str(pid): MatchResult(proposal_id=str(pid), no_match=False, matches=[
            ProgramMatch(program_id=str(s.program_id), program_name="", department="", score=s.score) for s in rows])
        for pid, rows in suggestions_for(session=session, proposal_ids=ids).items()
    }
    found = FoundTheme(theme=1, label="", proposal_ids=tuple(str(i) for i in ids))
    shared = [int(p) for p in shared_programs([found], results)[1]]
    by_id = {p.id: p for p in (session.get(Program, pid) for pid in shared) if p is not None}
    return [by_id[pid] for pid in shared if pid in by_id]
