"""Rejected pairings as negative exemplars (issue 14, item 5): a proposal
like one the coordinator rejected for a program is pushed away from it,
unless it is as close to a proposal accepted for that program."""

from __future__ import annotations

import numpy as np
import pytest

from corpus import load_programs
from matcher.fusion import rejection_push
from matcher.semantic import Exemplar, FusedIndex, shared_embedder
from matcher.text import ProposalText

# Written for testing: two near-identical proposals about cleaning the station square.
REJECTED = ProposalText(
    "old", "駅前広場の清掃を引き受けたい",
    "私たちの会は毎朝駅前広場を掃除している。市が業者に任せている清掃の仕事を、地域の会が委託を受けて担いたい。",
)
LIKE_REJECTED = ProposalText(
    "new", "駅前の清掃を会で引き受けたい",
    "駅前広場の掃除を、市が業者に任せるのでなく私たちの会が委託を受けて毎朝行いたい。",
)


@pytest.fixture(scope="module")
def embedder():
    return shared_embedder()


def test_a_rejected_proposal_pushes_a_similar_one_away_from_its_program(embedder, tmp_path):
    programs = load_programs()
    alone = FusedIndex(embedder=embedder, top_k=5).fit(programs).match([LIKE_REJECTED])[0]
    first = alone.matches[0].program_id
    index = FusedIndex(embedder=embedder, top_k=5, rejection_weight=2.0).fit(
        programs, rejections=[Exemplar(first, REJECTED)]
    )
    pushed = index.match([LIKE_REJECTED])[0]
    assert pushed.matches[0].program_id != first
    before = {m.program_id: m.score for m in alone.matches}[first]
    after = {m.program_id: m.score for m in index.match([LIKE_REJECTED], top_k=len(programs))[0].matches}[first]
    assert after < before
    # Never pushed by its own rejection, and the rejections survive save / load.
    own = index.match([REJECTED])[0]
    assert own.matches[0].program_id == FusedIndex(embedder=embedder).fit(programs).match([REJECTED])[0].matches[0].program_id
    loaded = FusedIndex.load(index.save(tmp_path / "index"), embedder=embedder)
    assert loaded.rejection_ids_ == ["old"] and loaded.match([LIKE_REJECTED])[0].matches[0].program_id != first


def test_an_accepted_proposal_as_close_cancels_the_push(embedder):
    programs = load_programs()
    first = FusedIndex(embedder=embedder).fit(programs).match([LIKE_REJECTED])[0].matches[0].program_id
    both = FusedIndex(embedder=embedder, rejection_weight=2.0).fit(
        programs, exemplars=[Exemplar(first, LIKE_REJECTED), Exemplar(first, REJECTED)],
        rejections=[Exemplar(first, REJECTED)],
    )
    probe = ProposalText("probe", LIKE_REJECTED.title, LIKE_REJECTED.body + "よろしくお願いします。")
    assert both.match([probe])[0].matches[0].program_id == first


def test_rejection_push_counts_only_the_extra_likeness():
    exemplar = np.array([[0.95, np.nan, 0.80]])
    rejection = np.array([[0.90, 0.90, np.nan]])
    push = rejection_push(exemplar, rejection)
    assert push[0, 0] == 0.0 and push[0, 1] > 0 and push[0, 2] == 0.0
