"""Counting: texts → term counts (as scikit-learn's CountVectorizer), before any
weighting. Programs are counted per field, proposals with their title weighted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from matcher.text import FIELDS, ProgramLike, ProposalText, proposal_error, proposal_parts
from matcher.tokenize import WrittenForms, parallel_map, tokenize_many, tokenize_many_with_forms
from matcher.weighting import count_terms

# Prefix of single-kanji features (see ``ProgramIndex.kanji_weight``).
KANJI_PREFIX = "字:"
# Proposals tokenized together in a batch fit (bounds the token lists in memory).
COUNT_SLICE = 2000
# Proposals a worker process counts at a time (n_jobs > 1).
WORKER_SLICE = 256

_KANJI = re.compile("[\u4e00-\u9fff\u3400-\u4dbf]")

# Weighted term counts of one proposal; None for one that cannot be matched.
ProposalCounts = dict[str, float] | None
# A batch's counts and written forms, one of each per proposal: what
# TermCounter.proposal_counts_with_forms returns, handed on so that a batch
# matched and related (kyodo match, the nightly run) is tokenized once.
Counted = tuple[Sequence[ProposalCounts], Sequence[WrittenForms | None]]


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
                self._add_kanji(tokens)
        return out

    def tokens_many_with_forms(self, texts: list[str]) -> list[tuple[list[str], WrittenForms]]:
        """:meth:`tokens_many`, and how each text wrote its terms."""
        out = tokenize_many_with_forms(texts, compounds=self.compounds, n_jobs=self.n_jobs)
        if self.kanji:
            for tokens, _ in out:
                self._add_kanji(tokens)
        return out

    @staticmethod
    def _add_kanji(tokens: list[str]) -> None:
        # The kanji of the content words, found by one regex scan.
        tokens += [KANJI_PREFIX + ch for ch in _KANJI.findall("".join(tokens))]

    def program_field_counts(self, programs: Sequence[ProgramLike]) -> dict[str, list[dict[str, int]]]:
        """Per field of :data:`FIELDS`, the term counts of each program."""
        field_texts = [program.text_fields() for program in programs]
        texts = [t.get(f, "") for t in field_texts for f in FIELDS]
        # Each distinct text tokenized once: a catalogue repeats its 施策名 (and
        # often 目的) for every program of the policy. Equal texts share one
        # counts dict, which nothing downstream mutates.
        unique = list(dict.fromkeys(texts))
        counted = dict(zip(unique, (count_terms(t, self.stop) for t in self.tokens_many(unique)), strict=True))
        field_counts: dict[str, list[dict[str, int]]] = {f: [] for f in FIELDS}
        for position, text in enumerate(texts):
            field_counts[FIELDS[position % len(FIELDS)]].append(counted[text])
        return field_counts

    def proposal_counts(self, proposals: Sequence[ProposalText]) -> list[ProposalCounts]:
        """Weighted term counts of each proposal (the body's, plus the
        title's times ``title_weight``); None for a proposal that cannot be
        matched (see :func:`matcher.text.proposal_error`)."""
        return self._counts(proposals, with_forms=False)[0]

    def proposal_counts_with_forms(
        self, proposals: Sequence[ProposalText]
    ) -> tuple[list[ProposalCounts], list[WrittenForms | None]]:
        """:meth:`proposal_counts`, and how each proposal wrote its terms
        (its title's spelling first, then its body's; None where the counts
        are None)."""
        return self._counts(proposals, with_forms=True)

    def _counts(
        self, proposals: Sequence[ProposalText], *, with_forms: bool
    ) -> tuple[list[ProposalCounts], list[WrittenForms | None]]:
        # A slice at a time: the token lists of every proposal at once would
        # weigh more than all their counts (peak memory of a 10,000 batch).
        counts: list[ProposalCounts] = []
        forms: list[WrittenForms | None] = []
        if self.n_jobs > 1 and len(proposals) >= 4 * WORKER_SLICE:
            # Tokenized and counted in the workers: they send back the counts
            # (and forms, or their Nones), never the token lists, and the
            # counting runs on every core.
            serial = replace(self, n_jobs=1)
            parts = [(serial, proposals[i : i + WORKER_SLICE], with_forms) for i in range(0, len(proposals), WORKER_SLICE)]
            for part_counts, part_forms in parallel_map(_count_part, parts, self.n_jobs):
                counts += part_counts
                forms += part_forms
            return counts, forms
        for start in range(0, len(proposals), COUNT_SLICE):
            part = proposals[start : start + COUNT_SLICE]
            counts += self._proposal_counts_slice(part, forms if with_forms else None)
        return counts, forms if with_forms else [None] * len(counts)

    def _proposal_counts_slice(
        self, proposals: Sequence[ProposalText], forms: list[WrittenForms | None] | None
    ) -> list[ProposalCounts]:
        """Counts of each proposal; with ``forms``, their written forms are
        appended to it."""
        valid = [proposal_error(p) is None for p in proposals]
        texts: list[str] = []
        for proposal in (p for p, ok in zip(proposals, valid, strict=True) if ok):
            title_text, body_text = proposal_parts(proposal)
            texts += [body_text, title_text if self.title_weight else ""]
        tokens: Iterator[tuple[list[str], WrittenForms | None]]
        if forms is None:
            tokens = ((t, None) for t in self.tokens_many(texts))
        else:
            tokens = iter(self.tokens_many_with_forms(texts))
        out: list[ProposalCounts] = []
        for ok in valid:
            if not ok:
                out.append(None)
                if forms is not None:
                    forms.append(None)
                continue
            (body, body_forms), (title, title_forms) = next(tokens), next(tokens)
            out.append(self._weighted(body, title))
            if forms is not None and title_forms is not None and body_forms is not None:
                forms.append(title_forms.then(body_forms, set(title)))
        return out

    def _weighted(self, body: list[str], title: list[str]) -> dict[str, float]:
        """The body's counts plus the title's times ``title_weight``."""
        counts: dict[str, float] = dict(count_terms(body, self.stop))
        for term, c in count_terms(title, self.stop).items():
            counts[term] = counts.get(term, 0.0) + self.title_weight * c
        return counts


def _count_part(
    args: tuple[TermCounter, Sequence[ProposalText], bool],
) -> tuple[list[ProposalCounts], list[WrittenForms | None]]:
    """One worker's share of :meth:`TermCounter._counts` (module level, so it pickles)."""
    counter, proposals, with_forms = args
    return counter._counts(proposals, with_forms=with_forms)
