"""What the matcher reads of a proposal and of a program: one definition for
both layers.

The TF-IDF side tokenizes the parts of :func:`proposal_parts` one by one (the
title with its own weight); the semantic side embeds them joined
(:func:`proposal_text`); :func:`proposal_error` checks the same parts. The
control-character rule is ``corpus.text``'s, the one every layer uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from corpus.text import has_control_characters

MAX_PROPOSAL_CHARS = 20_000
# The program fields the matcher reads. "keywords": the coordinator's
# everyday words for a program (ProgramRecord.keywords).
FIELDS = ("name", "purpose", "activities", "policy", "keywords")


class ProgramLike(Protocol):
    """What the matcher reads from a program: corpus.ProgramRecord fits."""

    # Read-only properties, so frozen dataclasses such as ProgramRecord fit.
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def department(self) -> str: ...
    @property
    def departments(self) -> tuple[str, ...]: ...

    def text_fields(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class ProposalText:
    """The text of one proposal to match."""

    id: str
    title: str = ""
    body: str = ""


def checked_programs(programs: Iterable[ProgramLike]) -> list[ProgramLike]:
    """``programs`` as a list, or ValueError / TypeError for what cannot be
    fitted on: a string, no program, ids that repeat."""
    if isinstance(programs, (str, bytes)):
        raise TypeError("programs must be a sequence of program records, not a string")
    programs = list(programs)
    if not programs:
        raise ValueError("cannot fit on an empty program list")
    ids = [p.id for p in programs]
    if len(set(ids)) != len(ids):
        raise ValueError("program ids must be unique")
    return programs


def proposal_parts(proposal: ProposalText) -> tuple[str, str]:
    """The parts of a proposal that are matched and embedded: (title, body)."""
    return proposal.title, proposal.body


def proposal_text(proposal: ProposalText) -> str:
    """The text of a proposal as one string (title, newline, body): what the
    model embeds and the baselines read.

    >>> proposal_text(ProposalText("p", "防災", "講座を開く"))
    '防災\\n講座を開く'
    """
    return "\n".join(proposal_parts(proposal))


def proposal_error(proposal: ProposalText) -> str | None:
    """Why a proposal cannot be matched, or None when it can."""
    title, body = proposal_parts(proposal)
    if not body or not body.strip():
        return "body is empty"
    if len(title) + len(body) > MAX_PROPOSAL_CHARS:
        return f"text is longer than {MAX_PROPOSAL_CHARS} characters"
    if has_control_characters(title) or has_control_characters(body):
        return "text contains control characters"
    return None


def proposal_chunks(
    proposals: Iterable[ProposalText], chunk_size: int
) -> Iterator[list[ProposalText]]:
    """``proposals`` in lists of ``chunk_size``: what bounds a match's memory."""
    reject_string(proposals)
    chunk: list[ProposalText] = []
    for proposal in proposals:
        chunk.append(proposal)
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def reject_string(proposals: object) -> None:
    """Raise TypeError for a bare string where a sequence of proposals is due."""
    if isinstance(proposals, (str, bytes)):
        raise TypeError("proposals must be a sequence of ProposalText, not a string")
