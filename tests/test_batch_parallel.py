"""The batch commands' use of both cores gives the same figures as one
(matcher.counting's worker processes, matcher.related's threads and split
product, kyodo match's related proposals beside the ranking). The proposals
are the dev split's texts (written for testing), repeated under new ids."""

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from corpus import load_programs
from matcher import related_match
from matcher.index import ProgramIndex, ProposalText
from matcher.related import BLOCK, _Split, build_space, pair_graph
from matcher.related_match import related_by_position, with_related_beside

DATA = Path(__file__).parent / "data"


def _many(n: int) -> list[ProposalText]:
    rows = [json.loads(line) for line in (DATA / "devset.jsonl").read_text(encoding="utf-8").splitlines()]
    # Each copy gets a different second sentence order, so the copies are not all identical rows.
    return [
        ProposalText(f"p{i}", rows[i % len(rows)]["title"], rows[i % len(rows)]["body"] + rows[(i * 7) % len(rows)]["title"])
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def many() -> list[ProposalText]:
    return _many(BLOCK + 300)


def test_counting_in_worker_processes_matches_one_process():
    proposals = _many(1100)  # enough for the workers (4 × WORKER_SLICE)
    one = ProgramIndex(n_jobs=1)._counter().proposal_counts_with_forms(proposals)
    two = ProgramIndex(n_jobs=2)._counter().proposal_counts_with_forms(proposals)
    assert one[0] == two[0] and len(one[0]) == 1100
    assert [(f.written, f.hidden, f.compounds) for f in one[1]] == [(f.written, f.hidden, f.compounds) for f in two[1]]
    # Without the written forms too (the fit's IDF path): the counts alike, no forms.
    assert ProgramIndex(n_jobs=2)._counter().proposal_counts(proposals) == one[0]


@pytest.mark.parametrize("width", [0, 7, 40, None])
def test_split_product_is_the_sparse_product(width):
    rows = sp.random(300, 60, density=0.2, random_state=np.random.default_rng(3), format="csr")
    rows.data[:] = np.abs(rows.data)
    split = _Split.of(rows, width)
    assert split.dense.shape[1] == (60 if width is None else width)
    np.testing.assert_allclose(split.cosines(10, 50), (rows[10:50] @ rows.T).toarray(), rtol=0, atol=1e-12)


def test_pair_graph_in_threads_is_the_same(many):
    space = build_space(many, mode="lexical", embedder=None)
    one, two = pair_graph(space, threads=1), pair_graph(space, threads=2)
    assert space.n > BLOCK and len(one.a) > space.n  # more than one block, pairs beyond one per row
    for field in ("a", "b", "score", "lexical"):
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))


@pytest.mark.parametrize(("held", "rank_first"), [(1, False), (related_match.HELD_RESULTS, False), (3, True)])
def test_related_beside_the_ranking_gives_the_same_lines(many, monkeypatch, held, rank_first):
    monkeypatch.setattr(related_match, "HELD_RESULTS", held)
    proposals = many[:80]
    index = ProgramIndex(top_k=3)
    programs = load_programs()

    def lines(overlap: bool) -> list[dict]:
        find = lambda: related_by_position(proposals, mode="lexical", embedder=None, k=3)  # noqa: E731
        beside = with_related_beside(index.fit_match(programs, proposals), find, overlap=overlap, rank_first=rank_first)
        return [r.to_dict() for r in beside]

    serial, overlapped = lines(False), lines(True)
    assert overlapped == serial and len(serial) == 80
    assert all(len(line["related"]) == 3 for line in serial)
