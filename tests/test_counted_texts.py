"""The nightly run counts each proposal text once (office.texts.CountedTexts):
what the related proposals and the themes read from the run's counts must be
what they would have counted themselves. Proposals written for testing."""

from __future__ import annotations

from matcher import ProgramIndex, ProposalText
from matcher.related import build_space, pair_graph, related_lists
from matcher.themes import themes, themes_among, themes_in
from office.texts import CountedTexts

TEXTS = [
    ProposalText("1", "子ども食堂", "地域の子どもに食事と居場所を届ける子ども食堂を開きたい"),
    ProposalText("2", "子ども食堂のネットワーク", "市内の子ども食堂をつなぎ、食材を分け合う"),
    ProposalText("3", "防災講座", "町内会で防災講座と避難訓練を開く"),
    ProposalText("4", "避難所の運営", "避難所の運営を住民と一緒に考える講座"),
    ProposalText("5", "古民家の活用", "空き家になった古民家を交流の場にする"),
]


def test_the_run_counts_serve_the_later_steps_unchanged():
    index = ProgramIndex()
    counts = CountedTexts(index, TEXTS, index.count_proposals(TEXTS))
    fresh = index.count_proposals(TEXTS)
    assert counts.of(TEXTS) == (list(fresh[0]), list(fresh[1]))
    reused = related_lists(build_space(TEXTS, mode="lexical", embedder=None, counted=counts.of(TEXTS)), k=2)
    own = related_lists(build_space(TEXTS, mode="lexical", embedder=None), k=2)
    assert reused == own
    assert [t.proposal_ids for t in themes(TEXTS, mode="lexical", embedder=None, counted=counts.of(TEXTS))] == [
        t.proposal_ids for t in themes(TEXTS, mode="lexical", embedder=None)
    ]


def test_a_text_edited_since_the_run_read_it_is_counted_again():
    index = ProgramIndex()
    counts = CountedTexts(index, TEXTS, index.count_proposals(TEXTS))
    edited = ProposalText("3", "防災講座", "町内会で防災講座を開き、備蓄品の点検もする")
    counted, _ = counts.of([TEXTS[0], edited])
    assert counted[1] == index.count_proposals([edited])[0][0]
    assert counted[1] != counts.of([TEXTS[2]])[0][0]  # the old text's counts are still those of the old text
    assert counted[1] is not None and "備蓄" in counted[1]


def test_the_themes_of_the_open_proposals_read_the_run_s_pair_scores():
    space = build_space(TEXTS, mode="lexical", embedder=None)
    graph = pair_graph(space)
    assert [t.proposal_ids for t in themes_among(space, graph, [p.id for p in TEXTS])] == [
        t.proposal_ids for t in themes_in(space, graph=graph)
    ]
    # Two proposals closed since: the others are grouped without them, with the pairs as scored.
    open_ids = ["1", "2", "3", "5"]
    found = themes_among(space, graph, open_ids)
    assert sorted(p for t in found for p in t.proposal_ids) == sorted(open_ids)
    assert ("1", "2") in [t.proposal_ids for t in found]
    assert all("4" not in t.proposal_ids for t in found)
