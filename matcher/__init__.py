"""Text → rankings. Imports neither Flask nor the database: the web app and the
nightly batch both call it."""

from matcher.fused import FusedIndex
from matcher.index import FIELDS, ProgramIndex, ProposalText, proposal_error
from matcher.indexes import MatchIndex, load_index, make_index
from matcher.results import FIELD_LABELS, DepartmentScore, MatchResult, ProgramMatch, Term
from matcher.text import proposal_parts, proposal_text
from matcher.tokenize import analyze, normalize, tokenize

__all__ = [
    "FIELDS",
    "FIELD_LABELS",
    "DepartmentScore",
    "FusedIndex",
    "MatchIndex",
    "MatchResult",
    "ProgramIndex",
    "ProgramMatch",
    "ProposalText",
    "Term",
    "analyze",
    "load_index",
    "make_index",
    "normalize",
    "proposal_error",
    "proposal_parts",
    "proposal_text",
    "tokenize",
]
