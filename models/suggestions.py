"""Published suggestions and match outcomes: the typed reads of what the
matcher wrote, and the one publication rule.

Publication. Every batch row (suggestion or outcome) carries the run that
wrote it; readers only read the rows of the newest *succeeded* run, plus
online rows made since that run started (``online_after_run_id >= run.id``),
which win for their proposal. The rematch writes its rows under a run in
status ``running`` and publishes them by flipping that one row to
``succeeded``: readers see the previous run or the new one, never a mix. See
docs/rematch.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, exists, func, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from models.labels import RunStatus
from models.tables import MatchOutcome, MatchRun, Suggestion

# The tables published by run: the same rule reads both.
Published = type[Suggestion] | type[MatchOutcome]


def latest_run(*, session: Session) -> MatchRun | None:
    """The newest succeeded run: the one whose suggestions are published."""
    return session.exec(
        select(MatchRun)
        .where(col(MatchRun.status) == RunStatus.SUCCEEDED.value)
        .order_by(col(MatchRun.id).desc())
        .limit(1)
    ).first()


def latest_run_id(*, session: Session) -> int:
    """The id of :func:`latest_run`, 0 when no run has succeeded yet."""
    run_id = session.exec(
        select(func.max(col(MatchRun.id))).where(col(MatchRun.status) == RunStatus.SUCCEEDED.value)
    ).one()
    return int(run_id or 0)


def newest_run_id(*, session: Session) -> int:
    """The newest run of any status: online rows made now are tagged with it,
    so a run started before them does not hide them once it publishes."""
    return int(session.exec(select(func.max(col(MatchRun.id)))).one() or 0)


def last_attempt(*, session: Session) -> MatchRun | None:
    """The newest run, whatever its status (the dashboard shows failures too)."""
    return session.exec(select(MatchRun).order_by(col(MatchRun.id).desc()).limit(1)).first()


def recent_runs(*, session: Session, limit: int = 50) -> list[MatchRun]:
    return list(session.exec(select(MatchRun).order_by(col(MatchRun.id).desc()).limit(limit)))


def _published(session: Session, run_id: int | None) -> int:
    return latest_run_id(session=session) if run_id is None else run_id


def visible(latest: int, table: Published = Suggestion) -> Any:
    """SQL condition selecting the published rows of ``table``, given the newest succeeded run."""
    online = and_(col(table.match_run_id).is_(None), col(table.online_after_run_id) >= latest)
    newer = aliased(table)
    has_online = exists().where(
        col(newer.proposal_id) == col(table.proposal_id),
        col(newer.match_run_id).is_(None),
        col(newer.online_after_run_id) >= latest,
    )
    return or_(online, and_(col(table.match_run_id) == latest, ~has_online))


def suggestions_for(
    *, session: Session, proposal_ids: Iterable[int], run_id: int | None = None
) -> dict[int, list[Suggestion]]:
    """The published suggestions of each proposal, best first (``run_id``: the
    newest succeeded run, when the caller has already read it)."""
    ids = list(proposal_ids)
    out: dict[int, list[Suggestion]] = {i: [] for i in ids}
    if not ids:
        return out
    query = (
        select(Suggestion)
        .where(col(Suggestion.proposal_id).in_(ids), visible(_published(session, run_id)))
        .order_by(col(Suggestion.proposal_id), col(Suggestion.rank))
    )
    for suggestion in session.exec(query):
        out[suggestion.proposal_id].append(suggestion)
    return out


def suggestions_for_proposal(*, session: Session, proposal_id: int) -> list[Suggestion]:
    return suggestions_for(session=session, proposal_ids=[proposal_id])[proposal_id]


def outcomes_for(
    *, session: Session, proposal_ids: Iterable[int], run_id: int | None = None
) -> dict[int, MatchOutcome]:
    """The published match outcome of each proposal that has one (``run_id`` as above)."""
    ids = list(proposal_ids)
    if not ids:
        return {}
    query = select(MatchOutcome).where(
        col(MatchOutcome.proposal_id).in_(ids), visible(_published(session, run_id), MatchOutcome)
    )
    return {outcome.proposal_id: outcome for outcome in session.exec(query)}


def visible_pairs(
    *, session: Session, proposal_ids: list[int] | None = None, run_only: bool = False
) -> set[tuple[int, int]]:
    """(proposal, program) of every published suggestion (of these proposals);
    ``run_only``: of the newest run alone, without the online rows since."""
    latest = latest_run_id(session=session)
    condition = col(Suggestion.match_run_id) == latest if run_only else visible(latest)
    query = select(col(Suggestion.proposal_id), col(Suggestion.program_id)).where(condition)
    if proposal_ids is not None:
        query = query.where(col(Suggestion.proposal_id).in_(proposal_ids))
    return {(a, b) for a, b in session.exec(query)}


# The score shown and compared across proposals: the TF-IDF cosine. A semantic
# run's ``score`` is a fused z-score that only ranks one proposal's programs;
# it keeps the cosine in ``lexical_score`` (None in lexical mode).
COMPARABLE_SCORE = func.coalesce(col(Suggestion.lexical_score), col(Suggestion.score))


def comparable_score(suggestion: Suggestion) -> float:
    """A suggestion's score on the scale of the TF-IDF cosine (see COMPARABLE_SCORE)."""
    return suggestion.score if suggestion.lexical_score is None else suggestion.lexical_score
