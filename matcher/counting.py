"""Counting: texts → term counts (as scikit-learn's CountVectorizer), before any
weighting. Programs are counted per field, proposals with their title weighted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from matcher.text import FIELDS, ProgramLike, ProposalText, proposal_error, proposal_parts
from matcher.tokenize import tokenize_many
from matcher.weighting import count_terms

# Prefix of single-kanji features (see ``ProgramIndex.kanji_weight``).
KANJI_PREFIX = "字:"
# Proposals tokenized together in a batch fit (bounds the token lists in memory).
COUNT_SLICE = 2000

_KANJI = re.compile("[\u4e00-\u9fff\u3400-\u4dbf]")

# Weighted term counts of one proposal; None for one that cannot be matched.
ProposalCounts = dict[str, float] | None


@dataclass(frozen=True)
class TermCounter:
    """How texts become term counts: the tokenizer's options, the stop words,
    single-kanji features (``字:災``) when ``kanji`` is true, and the weight of
    a proposal's title relative to its body."""

    stop: frozenset[str]
    compounds: bool = False
    kanji: bool = True
    title_weight: float = 1.0
    n_jobs: int = 1

    def tokens_many(self, texts: list[str]) -> list[list[str]]:
        """The tokens of each text, plus its kanji features."""
        out = tokenize_many(texts, compounds=self.compounds, n_jobs=self.n_jobs)
        if self.kanji:
            for tokens in out:
                # The kanji of the content words, found by one regex scan.
                tokens += [KANJI_PREFIX + ch for ch in _KANJI.findall("".join(tokens))]
        return out

    def program_field_counts(self, programs: Sequence[ProgramLike]) -> dict[str, list[dict[str, int]]]:
        """Per field of :data:`FIELDS`, the term counts of each program."""
        field_texts = [program.text_fields() for program in programs]
        tokens = iter(self.tokens_many([t.get(f, "") for t in field_texts for f in FIELDS]))
        field_counts: dict[str, list[dict[str, int]]] = {f: [] for f in FIELDS}
        for _ in programs:
            for f in FIELDS:
                field_counts[f].append(count_terms(next(tokens), self.stop))
        return field_counts

    def proposal_counts(self, proposals: Sequence[ProposalText]) -> list[ProposalCounts]:
        """Weighted term counts of each proposal (the body's, plus the
        title's times ``title_weight``); None for a proposal that cannot be
        matched (see :func:`matcher.text.proposal_error`)."""
        # A slice at a time: the token lists of every proposal at once would
        # weigh more than all their counts (peak memory of a 10,000 batch).
        out: list[ProposalCounts] = []
        for start in range(0, len(proposals), COUNT_SLICE):
            out += self._proposal_counts_slice(proposals[start : start + COUNT_SLICE])
        return out

    def _proposal_counts_slice(self, proposals: Sequence[ProposalText]) -> list[ProposalCounts]:
        valid = [proposal_error(p) is None for p in proposals]
        texts: list[str] = []
        for proposal, ok in zip(proposals, valid, strict=True):
            if ok:
                title, body = proposal_parts(proposal)
                texts += [body, title if self.title_weight else ""]
        tokens = iter(self.tokens_many(texts))
        out: list[ProposalCounts] = []
        for ok in valid:
            if not ok:
                out.append(None)
                continue
            counts: dict[str, float] = dict(count_terms(next(tokens), self.stop))
            for term, c in count_terms(next(tokens), self.stop).items():
                counts[term] = counts.get(term, 0.0) + self.title_weight * c
            out.append(counts)
        return out
