"""Quality figures of a ranker on proposals with gold programs, and the two
baselines it must beat."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity

from matcher.index import FIELDS, ProgramIndex, ProgramLike, ProposalText
from matcher.results import MatchResult
from matcher.text import proposal_text
from matcher.tokenize import _tagger, normalize

if TYPE_CHECKING:
    from matcher.semantic import Embedder

# Names of the rankings with the semantic layer, next to "kyodo-match" (TF-IDF).
SEMANTIC_ONLY = "e5 alone (semantic-only)"
FUSED = "kyodo-match + e5 (fused)"
WITH_EXEMPLARS = "fused + accepted proposals"


class Ranker(Protocol):
    """ProgramIndex or matcher.semantic.FusedIndex."""

    def fit_match(
        self,
        programs: Sequence[ProgramLike],
        proposals: Sequence[ProposalText],
        *,
        top_k: int | None = None,
        **fit_params: Any,
    ) -> Iterator[MatchResult]: ...


@dataclass(frozen=True)
class GoldProposal:
    proposal: ProposalText
    gold: tuple[str, ...]  # program ids; empty = nothing in the catalogue fits
    kind: str = ""  # optional label of a subset, e.g. "ordinary" / "paraphrase"


@dataclass(frozen=True)
class Ranked:
    """A full ranking of program ids for one proposal, best first."""

    program_ids: list[str]
    no_match: bool | None  # None: the method does not decide no_match
    confidence: str | None = None  # "high" / "medium" / "low" (matcher.confidence), None: no rule


@dataclass(frozen=True)
class Metrics:
    n_in_scope: int
    n_out_of_scope: int
    hit_at_1: float
    hit_at_3: float
    mrr: float
    out_of_scope_flagged: float | None
    in_scope_flagged: float | None
    # Reliability of each confidence level (None: the method has no rule):
    # {level: {"in_scope": share of in-scope items in it, "first_right": share
    # of those whose first program is right, "out_of_scope": share of
    # out-of-scope items in it}}.
    confidence: dict[str, dict[str, float | None]] | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def reliability(items: Sequence[GoldProposal], rankings: Sequence[Ranked]) -> dict[str, dict[str, float | None]] | None:
    """For each confidence level: how many in-scope and out-of-scope items it
    holds and how often its first suggestion is right."""
    if not rankings or any(r.confidence is None for r in rankings):
        return None
    pairs = list(zip(items, rankings, strict=True))
    return {level: _level_figures(pairs, level) for level in ("high", "medium", "low")}


def _level_figures(pairs: list[tuple[GoldProposal, Ranked]], level: str) -> dict[str, float | None]:
    n_in = sum(1 for i, _ in pairs if i.gold) or 1
    n_out = sum(1 for i, _ in pairs if not i.gold) or 1
    inside = [(i, r) for i, r in pairs if r.confidence == level and i.gold]
    right = sum(1 for i, r in inside if r.program_ids and r.program_ids[0] in i.gold)
    outside = sum(1 for i, r in pairs if r.confidence == level and not i.gold)
    return {
        "in_scope": len(inside) / n_in,
        "first_right": right / len(inside) if inside else None,
        "out_of_scope": outside / n_out,
    }


def score(items: Sequence[GoldProposal], rankings: Sequence[Ranked]) -> Metrics:
    """hit@1, hit@3 and MRR on in-scope items; no_match rates on both kinds."""
    hits1 = hits3 = 0
    reciprocal = 0.0
    in_scope = out_scope = flagged_in = flagged_out = 0
    decides = all(r.no_match is not None for r in rankings)
    for item, ranked in zip(items, rankings, strict=True):
        if item.gold:
            in_scope += 1
            rank = next(
                (i for i, pid in enumerate(ranked.program_ids, start=1) if pid in item.gold), None
            )
            if rank is not None:
                hits1 += rank == 1
                hits3 += rank <= 3
                reciprocal += 1.0 / rank
            flagged_in += bool(ranked.no_match)
        else:
            out_scope += 1
            flagged_out += bool(ranked.no_match)
    return Metrics(
        n_in_scope=in_scope,
        n_out_of_scope=out_scope,
        hit_at_1=hits1 / in_scope if in_scope else 0.0,
        hit_at_3=hits3 / in_scope if in_scope else 0.0,
        mrr=reciprocal / in_scope if in_scope else 0.0,
        out_of_scope_flagged=(flagged_out / out_scope if out_scope else None) if decides else None,
        in_scope_flagged=(flagged_in / in_scope if in_scope else None) if decides else None,
        confidence=reliability(items, rankings),
    )


def rank_with_index(
    index: Ranker,
    programs: Sequence[ProgramLike],
    items: Sequence[GoldProposal],
    *,
    decides_no_match: bool = True,
    **fit_params: object,
) -> list[Ranked]:
    results = index.fit_match(programs, [i.proposal for i in items], top_k=len(programs), **fit_params)
    return [
        Ranked(
            [m.program_id for m in r.matches],
            r.no_match if decides_no_match else None,
            r.confidence if decides_no_match else None,
        )
        for r in results
    ]


def _program_text(program: ProgramLike) -> str:
    fields = program.text_fields()
    return "\n".join(fields.get(f, "") for f in FIELDS)


def _rank_by_vectorizer(
    vectorizer: TfidfVectorizer, programs: Sequence[ProgramLike], items: Sequence[GoldProposal]
) -> list[Ranked]:
    program_vectors = vectorizer.fit_transform([_program_text(p) for p in programs])
    query_vectors = vectorizer.transform([proposal_text(i.proposal) for i in items])
    similarity = cosine_similarity(query_vectors, program_vectors)
    ids = np.asarray([p.id for p in programs], dtype=object)
    order = np.arange(len(programs))
    return [
        Ranked(ids[np.lexsort((order, -row))].tolist(), None) for row in similarity
    ]


def plain_lemmas(text: str) -> list[str]:
    """Every lemma unidic gives, no filtering: the baseline's analyzer."""
    out = []
    for line in _tagger().parse(normalize(text)).split("\n"):
        if line:
            _pos1, _pos2, lemma, surface = line.split("\t")
            out.append(lemma or surface)
    return out


def char_bigram_baseline(programs: Sequence[ProgramLike], items: Sequence[GoldProposal]) -> list[Ranked]:
    """Character-bigram TF-IDF, scikit-learn defaults otherwise."""
    return _rank_by_vectorizer(TfidfVectorizer(analyzer="char", ngram_range=(2, 2)), programs, items)


def lemma_baseline(programs: Sequence[ProgramLike], items: Sequence[GoldProposal]) -> list[Ranked]:
    """Plain lemma TF-IDF with scikit-learn's default settings."""
    return _rank_by_vectorizer(TfidfVectorizer(analyzer=plain_lemmas), programs, items)


BASELINES: dict[str, Callable[[Sequence[ProgramLike], Sequence[GoldProposal]], list[Ranked]]] = {
    "lemma TF-IDF (defaults)": lemma_baseline,
    "char-bigram TF-IDF": char_bigram_baseline,
}


def rank_all(
    programs: Sequence[ProgramLike],
    items: Sequence[GoldProposal],
    index: ProgramIndex | None = None,
    *,
    embedder: Embedder | None = None,
    exemplars: Sequence[GoldProposal] = (),
) -> dict[str, list[Ranked]]:
    """Rankings of kyodo-match and both baselines, on the same data in the same run;
    with an ``embedder``, also e5 alone and kyodo-match fused with e5, and
    with ``exemplars`` (proposals with known partners, standing for accepted
    pairings) the fused ranking that also reads them. An item that is also
    an exemplar (same id) is never compared with itself: leave one out."""
    index = index if index is not None else ProgramIndex()
    rankings = {"kyodo-match": rank_with_index(index, programs, items)}
    if embedder is not None:
        from matcher.semantic import FusedIndex

        # e5 alone has no no_match rule of its own: the fused rule reads TF-IDF too.
        alone = FusedIndex(embedder=embedder, lexical=index, lexical_weight=0.0, semantic_weight=1.0)
        rankings[SEMANTIC_ONLY] = rank_with_index(alone, programs, items, decides_no_match=False)
        rankings[FUSED] = rank_with_index(FusedIndex(embedder=embedder, lexical=index), programs, items)
        if exemplars:
            from matcher.semantic import Exemplar

            accepted = [Exemplar(g, e.proposal) for e in exemplars for g in e.gold]
            rankings[WITH_EXEMPLARS] = rank_with_index(
                FusedIndex(embedder=embedder, lexical=index), programs, items, exemplars=accepted
            )
    for name, method in BASELINES.items():
        rankings[name] = method(programs, items)
    return rankings


def evaluate_all(
    programs: Sequence[ProgramLike],
    items: Sequence[GoldProposal],
    index: ProgramIndex | None = None,
    *,
    embedder: Embedder | None = None,
    exemplars: Sequence[GoldProposal] = (),
) -> dict[str, Metrics]:
    """Metrics of kyodo-match and both baselines on all items (see :func:`rank_all`)."""
    rankings = rank_all(programs, items, index, embedder=embedder, exemplars=exemplars)
    return {name: score(items, r) for name, r in rankings.items()}


def evaluate_by_kind(
    programs: Sequence[ProgramLike],
    items: Sequence[GoldProposal],
    index: ProgramIndex | None = None,
    *,
    embedder: Embedder | None = None,
    exemplars: Sequence[GoldProposal] = (),
) -> dict[str, dict[str, Metrics]]:
    """Metrics for all items ("all") and for each ``kind`` present."""
    rankings = rank_all(programs, items, index, embedder=embedder, exemplars=exemplars)
    kinds = sorted({i.kind for i in items if i.kind})
    out = {"all": {name: score(items, r) for name, r in rankings.items()}}
    for kind in kinds:
        keep = [n for n, i in enumerate(items) if i.kind == kind]
        subset = [items[n] for n in keep]
        out[kind] = {name: score(subset, [r[n] for n in keep]) for name, r in rankings.items()}
    return out
