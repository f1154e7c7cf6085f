"""Themes: the proposals of a batch grouped by what they are about, over the
pair scores of related proposals (:mod:`matcher.related`), with a short label.

Agglomerative clustering with average linkage: the two themes whose pairs
score highest on average are joined, as long as that average is at least the
threshold (chosen on the dev split, benchmarks/tune_themes.py). A pair of
proposals that :func:`matcher.related.pair_graph` did not keep counts as 0,
a proposal's average likeness; with every pair kept (files of up to
``MAX_NEIGHBOURS + 1`` readable proposals) this is exact average linkage,
as ``scipy.cluster.hierarchy.linkage(method="average")``. Every proposal is
in exactly one theme; a theme of one is fine.

The label is the theme's most characteristic words, c-TF-IDF style: a word
weighs its mean TF-IDF weight over the theme's proposals (the IDF is over all
of them) times the share of the theme's proposals that use it, so it names
what they have in common and not what every proposal says.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from matcher.counting import KANJI_PREFIX, Counted
from matcher.related import PairGraph, ProposalSpace, build_space, pair_graph
from matcher.results import MatchResult
from matcher.text import ProposalText
from matcher.tokenize import parse_tokens

if TYPE_CHECKING:
    from matcher.embedder import Embedder

# Average pair score (z units, see matcher.related) at which two themes are
# joined, by mode: the best adjusted Rand index against the gold programs of
# the in-scope dev proposals (benchmarks/tune_themes.py, docs/quality.md,
# "Themes and related proposals"): 0.680 lexical, 0.715 semantic.
DEFAULT_THEME_THRESHOLD: dict[str, float] = {"lexical": 1.75, "semantic": 2.0}
LABEL_WORDS = 3
LABEL_SEPARATOR = "・"


@dataclass(frozen=True)
class Theme:
    """Proposals about the same thing.

    ``theme`` numbers the themes of one batch from 1, largest first (then by
    the position of their first proposal); ``proposal_ids`` are in input
    order; ``terms`` are the label's words and ``label`` joins them ("" for a
    proposal that could not be read).
    """

    theme: int
    label: str
    proposal_ids: tuple[str, ...]
    terms: tuple[str, ...] = ()


def themes(
    proposals: Sequence[ProposalText],
    *,
    mode: str,
    embedder: Embedder | None,
    threshold: float | None = None,
    n_jobs: int = 1,
    counted: Counted | None = None,
) -> list[Theme]:
    """Group ``proposals`` into themes (see the module). ``threshold``: the
    average pair score at which themes join (None: the mode's default);
    ``counted``: their term counts, if at hand (see :func:`build_space`).

    >>> found = themes([ProposalText("a", "防災講座", "地域で防災講座を開きたい"),
    ...                 ProposalText("b", "防災の講座", "防災講座を地域で開く"),
    ...                 ProposalText("c", "広報", "市の広報紙を読みやすくする")], mode="lexical", embedder=None)
    >>> [t.proposal_ids for t in found]
    [('a', 'b'), ('c',)]
    """
    space = build_space(proposals, mode=mode, embedder=embedder, n_jobs=n_jobs, counted=counted)
    return themes_in(space, threshold=threshold)


def themes_in(space: ProposalSpace, *, threshold: float | None = None, graph: PairGraph | None = None) -> list[Theme]:
    """:func:`themes` of a built space (``graph``: its pair scores, if at hand)."""
    threshold = DEFAULT_THEME_THRESHOLD[space.mode] if threshold is None else threshold
    graph = graph if graph is not None else pair_graph(space)
    groups = [[int(space.rows[i]) for i in members] for members in clusters(graph, threshold)]
    readable = set(space.rows.tolist())
    groups += [[p] for p in range(len(space.ids)) if p not in readable]
    groups.sort(key=lambda g: (-len(g), g[0]))
    row_of = {int(p): i for i, p in enumerate(space.rows.tolist())}
    out = []
    for number, members in enumerate(groups, start=1):
        rows = [row_of[p] for p in members if p in row_of]
        words = label_words(space, rows) if rows else ()
        out.append(Theme(number, LABEL_SEPARATOR.join(words), tuple(space.ids[p] for p in members), words))
    return out


def has_all(space: ProposalSpace, proposals: Sequence[ProposalText]) -> bool:
    """Whether every one of ``proposals`` is in ``space`` (the id and its text unchanged is the caller's to know)."""
    ids = set(space.ids)
    return all(p.id in ids for p in proposals)


def themes_among(space: ProposalSpace, graph: PairGraph, ids: Sequence[str], *,
                 threshold: float | None = None) -> list[Theme]:
    """:func:`themes_in` of the proposals ``ids`` of a built space, on the
    space's pair scores (each pair z-scored among all the space's proposals;
    a pair not kept counts 0). The nightly run groups the open proposals on
    the pairs its related proposals scored over every proposal."""
    position = {pid: p for p, pid in enumerate(space.ids)}
    row_of = {int(p): r for r, p in enumerate(space.rows.tolist())}
    keep = [position[i] for i in ids]
    old_rows = np.asarray([row_of[p] for p in keep if p in row_of], dtype=np.int64)
    new_of_old = np.full(space.n, -1, dtype=np.int64)
    new_of_old[old_rows] = np.arange(len(old_rows))
    sub = replace(
        space, ids=tuple(ids), rows=np.asarray([k for k, p in enumerate(keep) if p in row_of], dtype=np.int64),
        lexical=space.lexical[old_rows], forms=tuple(space.forms[r] for r in old_rows.tolist()),
        vectors=space.vectors[old_rows] if space.vectors is not None else None,
    )
    a, b = new_of_old[graph.a], new_of_old[graph.b]
    kept = (a >= 0) & (b >= 0)
    semantic = graph.semantic[kept] if graph.semantic is not None else None
    sub_graph = PairGraph(len(old_rows), np.minimum(a, b)[kept], np.maximum(a, b)[kept], graph.score[kept],
                          graph.lexical[kept], semantic)
    return themes_in(sub, threshold=threshold, graph=sub_graph)


def clusters(graph: PairGraph, threshold: float) -> list[list[int]]:
    """Average-linkage clusters of the graph's ``n`` nodes, each sorted, in
    order of their first node: themes join while their pairs' mean score
    (missing pairs 0) is at least ``threshold``."""
    neighbours: list[dict[int, float] | None] = [{} for _ in range(graph.n)]
    for x, y, s in zip(graph.a.tolist(), graph.b.tolist(), graph.score.tolist(), strict=True):
        neighbours[x][y] = s  # type: ignore[index]
        neighbours[y][x] = s  # type: ignore[index]
    members: list[list[int] | None] = [[i] for i in range(graph.n)]
    heap = [(-s, x, y) for x, y, s in zip(graph.a.tolist(), graph.b.tolist(), graph.score.tolist(), strict=True)
            if s >= threshold]
    heapq.heapify(heap)
    while heap:
        _, x, y = heapq.heappop(heap)
        if members[x] is None or members[y] is None:
            continue  # one of them was joined since: the pair is stale
        for pair in _join(neighbours, members, x, y, threshold):
            heapq.heappush(heap, pair)
    found = [sorted(m) for m in members if m is not None]
    return sorted(found, key=lambda m: m[0])


def _join(
    neighbours: list[dict[int, float] | None], members: list[list[int] | None], x: int, y: int, threshold: float
) -> list[tuple[float, int, int]]:
    """Join clusters ``x`` and ``y`` into a new one; the pairs of the new one
    that are at least ``threshold`` on average, to be pushed."""
    mx, my, nx, ny = members[x], members[y], neighbours[x], neighbours[y]
    assert mx is not None and my is not None and nx is not None and ny is not None
    if len(nx) < len(ny):
        nx, ny = ny, nx  # the smaller dict is added into the larger one
    for z, s in ny.items():
        nx[z] = nx.get(z, 0.0) + s
    nx.pop(x, None)
    nx.pop(y, None)
    joined, smaller = (mx, my) if len(mx) >= len(my) else (my, mx)
    joined.extend(smaller)
    new = len(members)
    members[x] = members[y] = neighbours[x] = neighbours[y] = None
    members.append(joined)
    neighbours.append(nx)
    pushes = []
    for z, s in nx.items():
        other = neighbours[z]
        assert other is not None
        other.pop(x, None)
        other.pop(y, None)
        other[new] = s
        average = s / (len(joined) * len(members[z] or ()))
        if average >= threshold:
            pushes.append((-average, z, new))
    return pushes


def label_words(space: ProposalSpace, rows: Sequence[int], *, limit: int = LABEL_WORDS) -> tuple[str, ...]:
    """The theme's most characteristic words (see the module), as its
    proposals wrote them: nouns of two characters or more (a label names a
    topic: 防災講座 rather than 育てる), no single-kanji feature, no function word."""
    block = space.lexical[list(rows)]
    size = float(len(rows))
    mean_weight = np.asarray(block.sum(axis=0)).ravel() / size
    share = np.bincount(block.indices, minlength=block.shape[1]) / size
    weight = mean_weight * share
    candidates = np.flatnonzero(weight > 0)
    ordered = candidates[np.lexsort((candidates, -weight[candidates]))]
    words: list[str] = []
    for column in ordered.tolist():
        word = _written(space, rows, str(space.feature_names[column]))
        if word is not None and len(word) > 1 and word not in words:
            words.append(word)
            if len(words) >= limit:
                break
    return tuple(words)


def _written(space: ProposalSpace, rows: Sequence[int], lemma: str) -> str | None:
    """``lemma`` as the first of ``rows`` that writes it otherwise wrote it,
    or None for a word a person is not shown."""
    if lemma.startswith(KANJI_PREFIX) or not is_noun(lemma):
        return None
    forms = [space.forms[i] for i in rows if space.forms[i] is not None]
    if any(lemma in f.hidden for f in forms if f is not None):
        return None
    word = next((f.written[lemma] for f in forms if f is not None and lemma in f.written), lemma)
    return word if is_noun(word) else None  # つくり for 作り reads as a verb: not a topic


@lru_cache(maxsize=65536)
def is_noun(lemma: str) -> bool:
    """Whether unidic reads ``lemma`` as a noun (its last token: the head of
    a Japanese compound). The index keeps lemmas, not their part of speech.

    >>> is_noun("防災"), is_noun("育てる"), is_noun("繋がり")
    (True, False, True)
    """
    tokens = parse_tokens(lemma)
    return bool(tokens) and tokens[-1][2] == "名詞"


def shared_programs(
    found: Sequence[Theme], results: Mapping[str, MatchResult], *, top: int = 3, share: float = 0.5
) -> dict[int, list[str]]:
    """For each theme (by number), the programs in the first ``top`` of more
    than ``share`` of its proposals' rankings (``results`` by proposal id),
    most shared first, then by their best rank among them."""
    out: dict[int, list[str]] = {}
    for theme in found:
        count: dict[str, int] = {}
        best: dict[str, int] = {}
        for proposal_id in theme.proposal_ids:
            result = results.get(proposal_id)
            for rank, match in enumerate(result.matches[:top] if result is not None else []):
                count[match.program_id] = count.get(match.program_id, 0) + 1
                best[match.program_id] = min(best.get(match.program_id, rank), rank)
        kept = [p for p, c in count.items() if c > share * len(theme.proposal_ids)]
        out[theme.theme] = sorted(kept, key=lambda p: (-count[p], best[p], p))
    return out
