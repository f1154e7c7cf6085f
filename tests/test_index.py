"""ProgramIndex: ranking, explanations, no_match, persistence, estimator contract."""

import json

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity

from corpus import ProgramRecord, load_programs
from matcher import ProgramIndex, ProposalText, tokenize
from matcher.index import FORMAT_VERSION

# A toy catalogue written for testing (not from the seeds).
TOY = [
    ProgramRecord(id="t1", name="防災講座の開催", purpose="市民の防災意識を高める", departments=("防災安全課",), department="防災安全課"),
    ProgramRecord(id="t2", name="広報紙の発行", purpose="市政情報を分かりやすく市民に伝える", departments=("人事秘書課",), department="人事秘書課"),
    ProgramRecord(id="t3", name="集会所の改修", purpose="町内会の集会所を改修して活動拠点を整える", departments=("市民協働課",), department="市民協働課"),
    ProgramRecord(id="t4", name="市民活動の情報サイト", purpose="市民活動団体の情報を発信する", departments=("市民協働課", "環境課"), department="市民協働課 環境課"),
]
QUERIES = ["防災講座を市民に", "広報紙で市政情報を伝える", "集会所の改修と町内会", "市民活動団体の情報"]


def name_only(**kwargs):
    return ProgramIndex(
        field_weights={"name": 1.0, "purpose": 0.0, "activities": 0.0, "policy": 0.0},
        stop_words=(),
        compounds=True,
        kanji_weight=0.0,
        **kwargs,
    )


@pytest.mark.parametrize("sublinear", [False, True])
def test_scores_equal_plain_tfidf_cosine(sublinear):
    """One field, no stop words, queries inside the vocabulary: the index is
    exactly TfidfVectorizer + cosine_similarity on the same tokens."""
    programs = [ProgramRecord(id=p.id, name=p.name + " " + p.purpose) for p in TOY]
    index = name_only(sublinear_tf=sublinear, top_k=4).fit(programs)
    vectorizer = TfidfVectorizer(analyzer=tokenize, sublinear_tf=sublinear)
    program_vectors = vectorizer.fit_transform([p.name for p in programs])
    reference = cosine_similarity(vectorizer.transform(QUERIES), program_vectors)
    results = index.match([ProposalText(str(i), body=q) for i, q in enumerate(QUERIES)])
    for row, result in zip(reference, results, strict=True):
        got = {m.program_id: m.score for m in result.matches}
        want = {programs[j].id: s for j, s in enumerate(row) if s > 0}
        assert got.keys() == want.keys()
        for key in want:
            assert got[key] == pytest.approx(want[key], abs=1e-12)


def test_term_contributions_add_up_to_the_score():
    index = ProgramIndex().fit(load_programs())
    result = index.match([ProposalText("p", "防災講座", "地域の防災リーダーを育てる講座を開きたい")])[0]
    assert result.matches
    for match in result.matches:
        # At most 8 listed; the rest is other_weight (tests/test_explain.py checks what it holds).
        assert len(match.terms) <= 8
        assert sum(t.weight for t in match.terms) + match.other_weight == pytest.approx(match.score, rel=1e-9)
        assert all(t.field in {"name", "purpose", "activities", "policy"} for t in match.terms)
        weights = [t.weight for t in match.terms]
        assert weights == sorted(weights, reverse=True)


def test_term_field_is_where_the_term_occurs():
    weights = {"name": 2.0, "purpose": 1.0, "activities": 1.0, "policy": 1.0}
    index = ProgramIndex(top_k=1, field_weights=weights).fit(TOY)
    match = index.match([ProposalText("p", body="活動拠点の改修")])[0].matches[0]
    fields = {t.term: t.field for t in match.terms}
    assert fields["改修"] == "name"  # in name and purpose: name weighs more
    assert fields["拠点"] == "purpose"


def test_unknown_proposal_words_lower_the_score():
    index = ProgramIndex().fit(TOY)
    short, padded = index.match(
        [
            ProposalText("a", body="防災講座"),
            ProposalText("b", body="防災講座 ドッグラン 愛犬 散歩 ロボット 競技会"),
        ]
    )
    assert padded.matches[0].program_id == short.matches[0].program_id == "t1"
    assert padded.matches[0].score < short.matches[0].score


def test_ranking_is_deterministic_with_ties_in_catalogue_order():
    twins = [ProgramRecord(id=f"x{i}", name="防災講座", purpose="防災") for i in range(6)]
    index = ProgramIndex(top_k=3).fit(twins)
    ids = [m.program_id for m in index.match([ProposalText("p", body="防災講座")])[0].matches]
    assert ids == ["x0", "x1", "x2"]


def test_departments_ranked_by_best_program_and_split():
    index = ProgramIndex(top_k=5).fit(TOY)
    result = index.match([ProposalText("p", body="市民活動団体の情報を発信")])[0]
    names = [d.department for d in result.departments]
    assert names[0] in {"市民協働課", "環境課"}
    assert {"市民協働課", "環境課"} <= set(names)
    best = {m.program_id: m.score for m in result.matches}["t4"]
    assert result.departments[0].score == pytest.approx(best)


def test_no_match_flag_follows_threshold():
    index = ProgramIndex(no_match_threshold=0.2).fit(TOY)
    on_topic, off_topic = index.match(
        [ProposalText("a", body="防災講座を開いて防災意識を高めたい"), ProposalText("b", body="公園にドッグランを作りたい")]
    )
    assert not on_topic.no_match
    assert off_topic.no_match


@pytest.mark.parametrize(
    ("body", "message"),
    [("", "empty"), ("   ", "empty"), ("あ" * 20_001, "longer"), ("防災\x00講座", "control")],
)
def test_bad_records_get_an_error_and_others_still_match(body, message):
    index = ProgramIndex().fit(TOY)
    bad, good = index.match([ProposalText("bad", body=body), ProposalText("good", body="防災講座")])
    assert bad.error and message in bad.error and bad.no_match and bad.matches == []
    assert good.error is None and good.matches[0].program_id == "t1"


def test_not_fitted_and_bad_arguments():
    with pytest.raises(NotFittedError):
        ProgramIndex().match([ProposalText("p", body="防災")])
    with pytest.raises(TypeError):
        ProgramIndex().fit(TOY).match("防災講座")
    with pytest.raises(ValueError):
        ProgramIndex().fit([])
    with pytest.raises(ValueError):
        ProgramIndex(field_weights={"colour": 1.0}).fit(TOY)
    with pytest.raises(ValueError):
        ProgramIndex().fit([TOY[0], TOY[0]])


def test_estimator_contract_params_stored_as_given():
    index = ProgramIndex(top_k=3, stop_words=("事業",))
    assert index.get_params()["top_k"] == 3
    assert index.get_params()["stop_words"] == ("事業",)
    assert index.fit(TOY) is index
    assert len(index.get_feature_names_out()) == len(index.vocabulary_)


def test_stop_words_are_ignored_on_both_sides():
    index = ProgramIndex(stop_words=("防災",)).fit(TOY)
    assert "防災" not in index.vocabulary_
    result = index.match([ProposalText("p", body="防災講座")])[0]
    assert all(t.term != "防災" for m in result.matches for t in m.terms)


def test_save_load_round_trip(tmp_path):
    programs = load_programs()
    index = ProgramIndex(top_k=4).fit(programs)
    proposals = [ProposalText(str(i), body=q) for i, q in enumerate(QUERIES + ["ドッグラン"])]
    index.save(tmp_path / "index")
    files = sorted(p.name for p in (tmp_path / "index").iterdir())
    assert files == ["arrays.npz", "params.json"]
    meta = json.loads((tmp_path / "index" / "params.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["fingerprint"] == index.fingerprint_
    loaded = ProgramIndex.load(tmp_path / "index")
    assert loaded.get_params() == {**index.get_params(), "stop_words": list(index._stop()) if index.stop_words is not None else None}
    assert loaded.match(proposals) == index.match(proposals)
    np.testing.assert_array_equal(loaded.idf_, index.idf_)
    with np.load(tmp_path / "index" / "arrays.npz", allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)


def test_load_refuses_another_format(tmp_path):
    ProgramIndex().fit(TOY).save(tmp_path)
    meta = json.loads((tmp_path / "params.json").read_text())
    meta["format_version"] = 999
    (tmp_path / "params.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format"):
        ProgramIndex.load(tmp_path)


def test_fingerprint_changes_with_corpus_and_params():
    a = ProgramIndex().fit(TOY).fingerprint_
    assert ProgramIndex().fit(TOY).fingerprint_ == a
    assert ProgramIndex(top_k=2).fit(TOY).fingerprint_ != a
    edited = [TOY[0].__class__(**{**TOY[0].__dict__, "purpose": "別の目的"})] + TOY[1:]
    assert ProgramIndex().fit(edited).fingerprint_ != a


def test_kanji_features_link_words_sharing_a_kanji():
    programs = [
        ProgramRecord(id="d", name="防災講座", purpose="防災の意識を高める"),
        ProgramRecord(id="k", name="広報紙", purpose="市政を伝える"),
    ]
    plain = ProgramIndex(kanji_weight=0.0).fit(programs)
    kanji = ProgramIndex(kanji_weight=0.5).fit(programs)
    proposal = [ProposalText("p", body="減災の勉強会")]
    assert plain.match(proposal)[0].matches == []
    match = kanji.match(proposal)[0].matches[0]
    assert match.program_id == "d"
    # Listed as the kanji itself, of kind kanji (the JSON's; a person's list leaves it out).
    assert [(t.term, t.kind, t.lemma) for t in match.terms] == [("災", "kanji", "字:災")]
    assert sum(t.weight for t in match.terms) == pytest.approx(match.score) and match.other_weight < 1e-12


def test_chunking_does_not_change_results():
    index = ProgramIndex().fit(load_programs())
    proposals = [ProposalText(str(i), body=q) for i, q in enumerate(QUERIES * 3)]
    assert list(index.iter_match(proposals, chunk_size=2)) == index.match(proposals)


# -- transform / explain ---------------------------------------------------------


def test_transform_rows_and_explain_add_up_to_the_cosine():
    index = ProgramIndex().fit(load_programs())
    proposals = [ProposalText("p", "防災講座", "地域の防災リーダーを育てる講座を開きたい"), ProposalText("q", body="広報紙を作る")]
    rows = index.transform(proposals)
    assert rows.shape == (2, len(index.vocabulary_))
    cosines = (rows @ index.program_matrix_.T).toarray()
    for i, result in enumerate(index.match(proposals, top_k=index.n_programs_)):
        by_id = {m.program_id: m for m in result.matches}
        for j in range(index.n_programs_):
            terms = index.explain(rows, i, j, limit=None)  # every shared term
            assert sum(t.weight for t in terms) == pytest.approx(cosines[i, j], rel=1e-9, abs=1e-15)
            weights = [t.weight for t in terms]
            assert weights == sorted(weights, reverse=True)
            if cosines[i, j] > 0:
                match = by_id[index.program_ids_[j]]
                assert match.score == cosines[i, j] and match.terms == index.explain(rows, i, j)
                assert set(match.terms) <= set(terms)
    assert np.linalg.norm(rows[0].toarray()) <= 1.0 + 1e-12


def test_transform_follows_the_estimator_contract():
    with pytest.raises(NotFittedError):
        ProgramIndex().transform([ProposalText("p", body="防災")])
    index = ProgramIndex().fit(TOY)
    with pytest.raises(TypeError):
        index.transform("防災講座")
    bad = index.transform([ProposalText("bad", body=""), ProposalText("c1", body="防災\x85講座")])
    assert bad.nnz == 0  # proposals that cannot be read get empty rows


def test_fit_transform_is_fit_then_transform():
    proposals = [ProposalText(str(i), body=q) for i, q in enumerate(QUERIES)]
    fitted = ProgramIndex()
    rows = fitted.fit_transform(TOY, proposals)
    again = ProgramIndex().fit(TOY, proposals).transform(proposals)
    assert (rows != again).nnz == 0


# -- weighting functions against scikit-learn ----------------------------------------


@pytest.mark.parametrize("sublinear", [False, True])
@pytest.mark.parametrize("smooth", [False, True])
def test_weighting_functions_equal_tfidf_transformer(sublinear, smooth):
    from sklearn.feature_extraction.text import TfidfTransformer

    from matcher import weighting as wt

    counts = np.array([[3, 0, 1, 0], [2, 0, 0, 1], [3, 0, 0, 0], [4, 0, 0, 0], [3, 2, 0, 0], [3, 0, 2, 0]])
    terms = ["a", "b", "c", "d"]
    rows = [{terms[j]: int(c) for j, c in enumerate(row) if c} for row in counts]
    vocabulary = wt.sorted_vocabulary(rows)
    assert vocabulary == {t: j for j, t in enumerate(terms)}
    tf = wt.tf_rows(rows, vocabulary, sublinear=sublinear)
    idf = wt.idf(wt.document_frequency(tf), float(len(rows)), smooth=smooth)
    ours = wt.l2_normalize(tf.multiply(idf)).toarray()
    reference = TfidfTransformer(sublinear_tf=sublinear, smooth_idf=smooth)
    np.testing.assert_allclose(ours, reference.fit_transform(counts).toarray(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(idf, reference.idf_, rtol=1e-12)
    # A query row: the same weights, normalized with its unseen words counted in the norm.
    query = wt.query_matrix([{"a": 2, "c": 1}, None, {"a": 2, "c": 1, "zzz": 1, "字:z": 1}], vocabulary, idf,
                            sublinear=sublinear, unseen=5.0, kanji_prefix="字:", kanji_weight=0.5)
    expected = reference.transform(np.array([[2, 0, 1, 0]])).toarray()[0]
    np.testing.assert_allclose(query[0].toarray()[0], expected, rtol=1e-12)
    assert query[1].nnz == 0  # a proposal that cannot be read: an empty row
    padded = query[2].data  # the unseen words count in the norm: 5 and 5 × 0.5
    tf = 1.0 + np.log(2.0) if sublinear else 2.0
    norm = np.sqrt((tf * idf[0]) ** 2 + idf[2] ** 2 + 25 + 6.25)
    np.testing.assert_allclose(padded, [tf * idf[0] / norm, idf[2] / norm], rtol=1e-12)


def test_field_weighting_and_dominant_field():
    from matcher import weighting as wt

    vocabulary = {"x": 0, "y": 1}
    name = wt.rows_to_csr([{"x": 1.0}], vocabulary)
    purpose = wt.rows_to_csr([{"x": 1.0, "y": 3.0}], vocabulary)
    weights = {"name": 2.0, "purpose": 0.5}
    total = wt.weighted_fields({"name": name, "purpose": purpose}, weights, (1, 2))
    assert total.toarray().tolist() == [[2.5, 1.5]]
    assert wt.dominant_field(total, {"name": name, "purpose": purpose}, weights).tolist() == [0, 1]
    assert wt.unseen_idf(3.0) == pytest.approx(wt.idf(np.array([0.0]), 3.0)[0])


# -- the index interface --------------------------------------------------------------


def test_lexical_index_interface():
    import inspect

    from matcher import FusedIndex
    from matcher.semantic import Exemplar

    index = ProgramIndex(top_k=2)
    with pytest.raises(NotFittedError):
        index.fingerprint()
    assert not hasattr(index, "n_programs_")
    proposals = [ProposalText(str(i), body=q) for i, q in enumerate(QUERIES)]
    plain = list(index.fit_match(TOY, proposals))
    assert index.mode == "lexical" and index.comparable_scale == (0.0, 1.0)
    assert index.as_lexical() is index and index.get_embedder() is None and index.passage_keys() == []
    assert index.fingerprint() == index.fingerprint_ and index.n_programs_ == len(TOY)
    # Exemplars need the semantic layer: TF-IDF takes them and changes nothing.
    assert list(index.fit_match(TOY, proposals, exemplars=[Exemplar("t1", proposals[1])])) == plain
    for name in ("fit_match", "is_no_match", "match", "iter_match"):
        assert inspect.signature(getattr(ProgramIndex, name)) == inspect.signature(getattr(FusedIndex, name)), name
    assert all(m.comparable_score == m.score for r in plain for m in r.matches)


def test_best_lexical_is_what_the_no_match_rule_read():
    index = ProgramIndex(no_match_threshold=0.2, top_k=1).fit(TOY)
    proposals = [ProposalText("a", body="防災講座を開いて防災意識を高めたい"), ProposalText("b", body="公園にドッグランを作りたい"),
                 ProposalText("c", body="")]
    results = index.match(proposals)
    cosines = (index.transform(proposals) @ index.program_matrix_.T).toarray()
    for result, row in zip(results[:2], cosines[:2], strict=True):
        assert result.best_lexical == row.max()
        assert result.best_semantic is None and result.best_exemplar is None
        assert result.no_match == index.is_no_match(result.best_lexical, result.best_semantic, result.best_exemplar)
    assert [r.no_match for r in results] == [False, True, True]
    assert results[2].best_lexical is None and results[2].error
    assert "best_lexical" not in results[0].to_dict()


def test_make_index_and_load_index(tmp_path):
    from matcher import load_index, make_index

    index = make_index(mode="lexical", embedder=None, top_k=3, n_jobs=2)
    assert isinstance(index, ProgramIndex) and index.top_k == 3 and index.n_jobs == 2
    assert load_index(tmp_path / "nothing", None) is None
    index.fit(TOY).save(tmp_path / "run")
    loaded = load_index(tmp_path / "run", None)
    assert isinstance(loaded, ProgramIndex) and loaded.fingerprint() == index.fingerprint()


@pytest.mark.parametrize("text", ["防災\x85講座", "防災\x9f講座", "防災\x7f講座"])
def test_c1_and_del_control_characters_are_rejected(text):
    from matcher import proposal_error

    assert proposal_error(ProposalText("p", body=text)) == "text contains control characters"
    assert proposal_error(ProposalText("p", title=text, body="防災講座")) == "text contains control characters"
    assert proposal_error(ProposalText("p", body="防災\n講座\t\r")) is None
