"""What the matcher returns: plain dataclasses that serialize to the JSON of
``kyodo match`` and the API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The program field a shared term occurs in, by matcher field name.
FIELD_LABELS = {
    "name": "事業名",
    "purpose": "目的",
    "activities": "取り組み内容",
    "policy": "施策名",
}


@dataclass(frozen=True)
class Term:
    """A term shared by a proposal and a program.

    ``weight`` is its contribution to the cosine score: the product of its
    weight in the two L2-normalized vectors, so a pair's term weights add up
    to the pair's score.
    """

    term: str
    weight: float
    field: str


@dataclass(frozen=True)
class ProgramMatch:
    program_id: str
    program_name: str
    department: str
    score: float
    terms: list[Term] = field(default_factory=list)


@dataclass(frozen=True)
class DepartmentScore:
    department: str
    score: float


@dataclass(frozen=True)
class MatchResult:
    """The ranking for one proposal.

    ``no_match`` is true when no program is a credible partner (or the
    proposal could not be read: then ``error`` says why).
    """

    proposal_id: str
    no_match: bool
    matches: list[ProgramMatch] = field(default_factory=list)
    departments: list[DepartmentScore] = field(default_factory=list)
    error: str | None = None

    def to_dict(self, *, digits: int = 4) -> dict[str, Any]:
        data = asdict(self)
        if self.error is None:
            del data["error"]
        for match in data["matches"]:
            match["score"] = round(match["score"], digits)
            for term in match["terms"]:
                term["weight"] = round(term["weight"], digits)
        for department in data["departments"]:
            department["score"] = round(department["score"], digits)
        return data
