"""Text → rankings. Imports neither Flask nor the database: the web app and the
nightly batch both call it."""

from matcher.index import FIELDS, ProgramIndex, ProposalText, proposal_error
from matcher.results import FIELD_LABELS, DepartmentScore, MatchResult, ProgramMatch, Term
from matcher.tokenize import analyze, normalize, tokenize

__all__ = [
    "FIELDS",
    "FIELD_LABELS",
    "DepartmentScore",
    "MatchResult",
    "ProgramIndex",
    "ProgramMatch",
    "ProposalText",
    "Term",
    "analyze",
    "normalize",
    "proposal_error",
    "tokenize",
]
