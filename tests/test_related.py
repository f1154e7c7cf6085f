"""Related proposals and the likely-duplicate rule (matcher/related.py), and
the ``related`` key of ``kyodo match``. The proposals here and in
tests/data/duplicates.jsonl were written for testing."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from matcher.duplicates import comparable_text, likely_duplicate, text_likeness
from matcher.index import ProposalText
from matcher.related import (
    LEXICAL_REFERENCE,
    PRIOR_PAIRS,
    SEMANTIC_REFERENCE,
    Related,
    build_space,
    pair_graph,
    related,
    related_lists,
)
from matcher.related_match import MatchWithRelated, related_by_position
from matcher.results import MatchResult
from matcher.text import proposal_text
from web.cli import cli

DATA = Path(__file__).parent / "data"

# Written for testing: three topics, two or three proposals each, one unreadable.
PROPOSALS = [
    ProposalText("food-1", "子ども食堂を始めたい", "地域の仲間で月2回の子ども食堂を開き、子どもたちに温かい夕食を届けたい。"),
    ProposalText("bousai-1", "防災講座", "町内会で防災講座を開き、避難所の運営と備蓄を学びたい。"),
    ProposalText("food-2", "お寺で子ども食堂", "お寺の本堂で子ども食堂を開いています。子どもたちの夕食の食材を集めたい。"),
    ProposalText("bousai-2", "マンションの防災", "マンションの住民で防災訓練を行い、備蓄と避難の手順を確かめたい。"),
    ProposalText("empty", "本文なし", ""),
    ProposalText("park-1", "公園の花壇", "公園の花壇に季節の花を植え、近所の子どもと高齢者の交流を広げたい。"),
    ProposalText("park-2", "花壇の植え替え", "自治会で公園の花壇を植え替え、花の苗を子どもたちと植えたい。"),
]


@pytest.fixture(scope="module")
def space():
    return build_space(PROPOSALS, mode="lexical", embedder=None)


def test_never_related_to_itself_and_nearest_is_the_same_topic(space):
    found = dict(zip(space.ids, related_lists(space, k=5), strict=True))
    for proposal_id, rows in found.items():
        assert proposal_id not in [r.proposal_id for r in rows]
        assert "empty" not in [r.proposal_id for r in rows]
        assert [r.score for r in rows] == sorted((r.score for r in rows), reverse=True)
    assert found["empty"] == []
    assert len(found["food-1"]) == 5  # six readable proposals: five others
    topic = {"food-1": "food-2", "food-2": "food-1", "bousai-1": "bousai-2", "bousai-2": "bousai-1",
             "park-1": "park-2", "park-2": "park-1"}
    assert {pid: rows[0].proposal_id for pid, rows in found.items() if rows} == topic


def test_shared_terms_are_words_as_written(space):
    first = related_lists(space, k=1)[0][0]
    assert first.proposal_id == "food-2"
    assert "子ども" in first.terms and "食堂" in first.terms
    # Lemmas (子供), single-kanji features and function words are never shown.
    assert "子供" not in first.terms and not any(t.startswith("字:") for t in first.terms)
    assert 0.0 < first.lexical <= 1.0 and first.semantic is None


def test_pair_scores_are_symmetric_and_match_a_reference(space):
    graph = pair_graph(space)
    n = space.n
    assert len(graph.a) == n * (n - 1) // 2 and (graph.a < graph.b).all()
    cosine = (space.lexical @ space.lexical.T).toarray()
    # Reference: each row's mean and spread over its other rows, with the
    # prior pseudo-pairs, computed by a plain loop.
    mu, sd = LEXICAL_REFERENCE
    z = np.zeros_like(cosine)
    for i in range(n):
        others = np.delete(cosine[i], i)
        count = len(others) + PRIOR_PAIRS
        mean = (others.sum() + PRIOR_PAIRS * mu) / count
        var = ((others**2).sum() + PRIOR_PAIRS * (sd**2 + mu**2)) / count - mean**2
        z[i] = (cosine[i] - mean) / np.sqrt(var)
    expected = (z + z.T) / 2
    np.testing.assert_allclose(graph.score, expected[graph.a, graph.b], rtol=1e-9)
    np.testing.assert_allclose(graph.lexical, cosine[graph.a, graph.b], rtol=1e-12)


def test_kept_pairs_at_scale_are_scored_exactly(space):
    full = pair_graph(space)
    exact = {(a, b): s for a, b, s in zip(full.a.tolist(), full.b.tolist(), full.score.tolist(), strict=True)}
    small = pair_graph(space, max_neighbours=2)
    assert len(small.a) < len(full.a)
    for a, b, s in zip(small.a.tolist(), small.b.tolist(), small.score.tolist(), strict=True):
        assert a < b and s == pytest.approx(exact[(a, b)])
    # Each row keeps its own best two (by its own z-scores: in lexical mode,
    # by its cosines), whatever the other row thinks.
    cosine = (space.lexical @ space.lexical.T).toarray()
    for i in range(space.n):
        best = [j for j in np.argsort(-cosine[i], kind="stable").tolist() if j != i][:2]
        kept = {b if a == i else a for a, b in zip(small.a.tolist(), small.b.tolist(), strict=True) if i in (a, b)}
        assert set(best) <= kept


def test_related_by_id_and_bad_input():
    found = related(PROPOSALS[:4], mode="lexical", embedder=None, k=2)
    assert set(found) == {"food-1", "bousai-1", "food-2", "bousai-2"}
    assert all(len(rows) == 2 and isinstance(rows[0], Related) for rows in found.values())
    with pytest.raises(ValueError, match="unique"):
        related([PROPOSALS[0], PROPOSALS[0]], mode="lexical", embedder=None)
    with pytest.raises(ValueError, match="embedder"):
        related(PROPOSALS, mode="semantic", embedder=None)
    with pytest.raises(TypeError):
        related("子ども食堂", mode="lexical", embedder=None)  # type: ignore[arg-type]
    assert related([PROPOSALS[0]], mode="lexical", embedder=None) == {"food-1": []}
    assert related([], mode="lexical", embedder=None) == {}


def test_repeated_ids_by_position_are_other_proposals():
    rows = related_by_position([PROPOSALS[0], PROPOSALS[0], PROPOSALS[1]], mode="lexical", embedder=None, k=5)
    assert [[r.proposal_id for r in found] for found in rows] == [["food-1", "bousai-1"]] * 2 + [["food-1", "food-1"]]


def _pairs():
    return [json.loads(line) for line in (DATA / "duplicates.jsonl").read_text(encoding="utf-8").splitlines()]


def test_duplicate_rule_on_the_written_pairs():
    pairs = _pairs()
    assert {p["kind"] for p in pairs} == {"retyped", "edited", "same_group", "same_topic", "unrelated"}
    texts = [ProposalText(f"{p['id']}-{s}", p[s]["title"], p[s]["body"]) for p in pairs for s in ("a", "b")]
    space = build_space(texts, mode="lexical", embedder=None)
    said = []
    for k in range(len(pairs)):
        cosine = float(space.lexical[2 * k].multiply(space.lexical[2 * k + 1]).sum())
        said.append(likely_duplicate(proposal_text(texts[2 * k]), proposal_text(texts[2 * k + 1]), cosine))
    wrong = [p["id"] for p, s in zip(pairs, said, strict=True) if s != p["duplicate"]]
    assert wrong == []  # precision and recall 1.0 on both halves (docs/quality.md)
    # Characters alone miss edited pairs the engine's score recognises.
    alone = [likely_duplicate(proposal_text(texts[2 * k]), proposal_text(texts[2 * k + 1])) for k in range(len(pairs))]
    assert not all(a == p["duplicate"] for a, p in zip(alone, pairs, strict=True))


def test_text_likeness_ignores_width_spacing_and_punctuation():
    assert comparable_text("ＮＰＯ　法人、「みどり」。") == "npo法人みどり"
    assert text_likeness("防災 講座を、開く。", "防災講座を開く") == 1.0
    assert text_likeness("", "") == 1.0 and text_likeness("防災", "") == 0.0
    assert not likely_duplicate("防災講座を開きたい", "花壇の花を植えたい", score=0.9)


def test_match_result_with_related_adds_the_key():
    result = MatchResult(proposal_id="a", no_match=False)
    line = MatchWithRelated(proposal_id="a", no_match=False, related=(Related("b", 2.345678, 0.5),)).to_dict()
    assert line == {**result.to_dict(), "related": [{"proposal_id": "b", "score": 2.3457}]}


def test_kyodo_match_lines_name_related_proposals(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(p.__dict__, ensure_ascii=False) for p in PROPOSALS), encoding="utf-8")
    result = CliRunner().invoke(cli, ["match", "--mode", "lexical", "--proposals", str(path)])
    assert result.exit_code == 0, result.output
    lines = {json.loads(line)["proposal_id"]: json.loads(line) for line in result.output.splitlines()}
    assert lines["empty"]["related"] == []
    for proposal_id, line in lines.items():
        assert [set(r) for r in line["related"]] == [{"proposal_id", "score"}] * len(line["related"])
        assert len(line["related"]) == (5 if proposal_id != "empty" else 0)
        assert proposal_id not in {r["proposal_id"] for r in line["related"]}
    assert lines["park-1"]["related"][0]["proposal_id"] == "park-2"


def test_semantic_mode_fuses_e5_and_reuses_the_embedder_cache():
    from matcher.semantic import shared_embedder

    embedder = shared_embedder()
    readable = [p for p in PROPOSALS if p.body]
    embedder.embed([proposal_text(p) for p in readable], role="query")
    before = embedder.n_embedded
    space = build_space(readable, mode="semantic", embedder=embedder)
    assert embedder.n_embedded == before  # the query vectors the matcher embeds anyway
    rows = related_lists(space, k=1)
    assert [r[0].proposal_id for r in rows][:4] == ["food-2", "bousai-2", "food-1", "bousai-1"]
    assert all(SEMANTIC_REFERENCE[0] - 0.2 < r[0].semantic <= 1.0 for r in rows)


def test_kyodo_match_related_zero_leaves_the_key_out(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(p.__dict__, ensure_ascii=False) for p in PROPOSALS[:3]), encoding="utf-8")
    result = CliRunner().invoke(cli, ["match", "--mode", "lexical", "--proposals", str(path), "--related", "0"])
    assert result.exit_code == 0, result.output
    assert all("related" not in json.loads(line) for line in result.output.splitlines())
    two = CliRunner().invoke(cli, ["match", "--mode", "lexical", "--proposals", str(path), "--related", "1"])
    assert [len(json.loads(line)["related"]) for line in two.output.splitlines()] == [1, 1, 1]
