"""The departments to ask for a proposal's 所見: ranked through its published
suggestions' programs and by each department's 所掌事務 (matcher.duties), so
that a proposal no program fits still gets departments to consult."""

from __future__ import annotations

from sqlmodel import Session

from corpus import split_departments
from corpus.departments import DepartmentDuty
from matcher.duties import duty_rankings, merge
from matcher.results import DepartmentScore, MatchResult
from models.review import programs_by_id
from models.suggestions import outcomes_for, suggestions_for_proposal
from models.workflow import all_departments
from office.service import MatchingService
from office.texts import proposal_texts


def department_candidates(
    *, session: Session, proposal_id: int, matching: MatchingService, k: int = 5
) -> list[DepartmentScore]:
    """At most ``k`` departments, best first; each says whether its place
    came from a suggested program or from its duties (``source``)."""
    suggestions = suggestions_for_proposal(session=session, proposal_id=proposal_id)
    programs = programs_by_id(session=session, ids=[s.program_id for s in suggestions])
    through_programs: list[str] = []
    for suggestion in suggestions:
        program = programs.get(suggestion.program_id)
        for name in split_departments(program.department if program else ""):
            if name not in through_programs:
                through_programs.append(name)
    outcome = outcomes_for(session=session, proposal_ids=[proposal_id]).get(proposal_id)
    result = MatchResult(
        str(proposal_id), no_match=bool(outcome and outcome.no_match),
        confidence=outcome.confidence if outcome else None,
        departments=[DepartmentScore(name, 0.0) for name in through_programs],
    )
    directory = [
        DepartmentDuty(d.name, d.parent or "", d.duties or "")
        for d in all_departments(session=session, active_only=True)
        if (d.duties or "").strip()
    ]
    texts = proposal_texts(session=session, proposal_ids=[proposal_id])
    if not directory or not texts:
        return result.departments[:k]
    ranking = duty_rankings(matching.new_index(top_k=len(directory)), directory, texts)[0]
    return merge(result, ranking, k).departments
