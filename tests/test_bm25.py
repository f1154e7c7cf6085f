"""BM25 program weighting of the lexical index (issue 14, item 2): off by
default, BM25's length normalisation and saturation, scores still explained
by their shared terms, the setting kept by save / load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from corpus import ProgramRecord, load_programs
from matcher import ProgramIndex, ProposalText

BM25 = {"weighting": "bm25", "k1": 1.2, "b": 0.75}
# No 防 or 災 in the filler: the longer program holds 防災 exactly as often.
FILLER = "広報紙の発行、図書館の案内、公園の清掃、文化祭の運営、商店街の朝市、河川の見回り"


def _scores(index: ProgramIndex, text: str) -> dict[str, float]:
    result = index.match([ProposalText("q", body=text)], top_k=index.n_programs_)[0]
    return {m.program_id: m.score for m in result.matches}


def _short_and_long() -> list[ProgramRecord]:
    return [
        ProgramRecord(id="short", name="講座", activities="地域で防災を学ぶ", department="防災課"),
        ProgramRecord(id="long", name="講座", activities=f"地域で防災を学ぶ。{FILLER}", department="防災課"),
        ProgramRecord(id="other", name="子育て相談", activities="子育ての悩みを聞く", department="子育て課"),
    ]


def test_tfidf_is_the_default_and_bm25_changes_the_program_rows():
    programs = _short_and_long()
    default, bm25 = ProgramIndex().fit(programs), ProgramIndex(**BM25).fit(programs)
    assert default.weighting == "tfidf"
    norms = np.sqrt(default.program_matrix_.multiply(default.program_matrix_).sum(axis=1)).A.ravel()
    assert norms == pytest.approx(1.0)  # TF-IDF: cosine
    assert (bm25.program_matrix_ != default.program_matrix_).nnz > 0
    bm25_norms = np.sqrt(bm25.program_matrix_.multiply(bm25.program_matrix_).sum(axis=1)).A.ravel()
    assert bm25_norms.mean() == pytest.approx(1.0)  # one corpus constant: mean row norm 1
    assert bm25_norms.max() > 1.0 + 1e-6


def test_a_longer_program_with_the_same_term_count_scores_lower():
    scores = _scores(ProgramIndex(**BM25).fit(_short_and_long()), "防災")
    assert scores["short"] > scores["long"] > 0
    assert "other" not in scores


def test_b_zero_removes_length_normalisation():
    scores = _scores(ProgramIndex(**dict(BM25, b=0.0)).fit(_short_and_long()), "防災")
    assert scores["short"] == pytest.approx(scores["long"], rel=1e-12)
    # The lower b, the smaller the long program's handicap.
    gaps = [
        (lambda s: s["short"] / s["long"])(_scores(ProgramIndex(**dict(BM25, b=b)).fit(_short_and_long()), "防災"))
        for b in (0.0, 0.3, 0.75, 1.0)
    ]
    assert gaps == sorted(gaps) and gaps[0] == pytest.approx(1.0) and gaps[-1] > gaps[1]


@pytest.mark.parametrize("k1", [0.9, 2.0])
def test_repeated_terms_saturate_by_k1(k1):
    programs = [
        ProgramRecord(id="once", name="講座", activities="防災を学ぶ", department="防災課"),
        ProgramRecord(id="thrice", name="講座", activities="防災、防災、防災を学ぶ", department="防災課"),
    ]
    scores = _scores(ProgramIndex(weighting="bm25", k1=k1, b=0.0).fit(programs), "防災")
    # b = 0: (k1 + 1) tf / (tf + k1) for every feature of 防災 (the word and its two kanji).
    assert scores["thrice"] / scores["once"] == pytest.approx(3 * (1 + k1) / (3 + k1), rel=1e-9)


def test_explanations_add_up_to_the_bm25_score():
    programs = load_programs()
    index = ProgramIndex(**BM25).fit(programs)
    proposals = [
        ProposalText("a", "防災マップづくり", "地域の防災訓練と避難所の案内を、町内会と一緒に進めたい。"),
        ProposalText("b", "子ども食堂", "子どもたちの居場所として、地域の食堂を開き、学習支援もしたい。"),
    ]
    rows = index.transform(proposals)
    dots = (rows @ index.program_matrix_.T).toarray()
    for i, result in enumerate(index.match(proposals, top_k=len(programs))):
        assert result.matches
        for match in result.matches:
            j = index.program_ids_.index(match.program_id)
            assert match.score == pytest.approx(dots[i, j], rel=1e-12)
            every = index.explain(rows, i, j, limit=None)
            assert sum(t.weight for t in every) == pytest.approx(match.score, rel=1e-9)
            assert sum(t.weight for t in match.terms) + match.other_weight == pytest.approx(match.score, rel=1e-9)


def test_save_and_load_keep_bm25(tmp_path):
    programs = load_programs()
    proposal = [ProposalText("p", "防災講座", "地域の防災講座を開きたい")]
    fitted = ProgramIndex(weighting="bm25", k1=1.5, b=0.3).fit(programs)
    loaded = ProgramIndex.load(fitted.save(tmp_path / "bm25"))
    assert (loaded.weighting, loaded.k1, loaded.b) == ("bm25", 1.5, 0.3)
    assert loaded.fingerprint() == fitted.fingerprint()
    assert _scores(loaded, proposal[0].body) == _scores(fitted, proposal[0].body)
    # Refitting the loaded index's params gives BM25 again, not TF-IDF.
    refit = ProgramIndex(**loaded.get_params()).fit(programs)
    assert (refit.program_matrix_ != fitted.program_matrix_).nnz == 0
    tfidf = ProgramIndex().fit(programs)
    assert tfidf.fingerprint() != fitted.fingerprint()
    # A TF-IDF index writes the params it always wrote: no BM25 keys.
    saved = json.loads((tfidf.save(tmp_path / "tfidf") / "params.json").read_text(encoding="utf-8"))
    assert not {"weighting", "k1", "b"} & set(saved["params"])


@pytest.mark.parametrize(
    "params", [{"weighting": "okapi"}, {"weighting": "bm25", "k1": 0.0}, {"weighting": "bm25", "b": 1.5}]
)
def test_bad_settings_are_refused_at_fit(params):
    index = ProgramIndex(**params)  # scikit-learn contract: validated in fit
    with pytest.raises(ValueError):
        index.fit(_short_and_long())
