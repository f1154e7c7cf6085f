"""Explanations for people (issue 14): the proposal's own words, never a
single-kanji feature or a function word in what a person sees, at most 8
terms per pair plus ``other_weight``, a ``kind`` per term; in the JSON of
``kyodo match``, in the stored suggestion rows and on the proposal page."""

from __future__ import annotations

import json
import re

import pytest
import scipy.sparse as sp
from click.testing import CliRunner
from sqlmodel import select

from corpus import ProgramRecord, load_programs
from matcher import ProgramIndex, ProposalText
from matcher.explain import MAX_TERMS, SHOWN_KINDS
from matcher.results import ProgramMatch, Term
from matcher.tokenize import (
    FUNCTION_LEMMAS,
    tokenize,
    tokenize_many_with_forms,
    tokenize_with_forms,
)
from models.tables import Suggestion
from office.accounts import create_user
from office.rows import terms as stored_form
from web.cli import cli
from web.highlight import shown_terms, stored_terms, term_lemmas

# A catalogue and a proposal written for testing: the program writes 子供 and
# 合わせる, the proposal 子ども and 併せ; both have function words (ため, に関する).
PROGRAMS = [
    ProgramRecord(
        id="k", name="子供食堂の運営", department="子育て支援課",
        purpose="子供の居場所を地域で作るため、団体の力を合わせて運営する事業",
        activities="食堂の運営に関する相談", keywords="こども食堂 フードバンク",
    ),
    ProgramRecord(id="b", name="広報紙の発行", purpose="市政情報を分かりやすく伝える", department="広報課"),
    ProgramRecord(id="d", name="防災講座", purpose="防災の意識を高める", department="防災安全課"),
]
PROPOSAL = ProposalText(
    "p", "子ども食堂",
    "子どもたちのために、地域の皆さんと力を併せて食堂をつくります。運営に関する事も相談したい。フードバンクとも連携します。",
)
KINDS = {"word", "keyword", "compound", "kanji"}


@pytest.fixture(scope="module")
def index():
    return ProgramIndex(top_k=3).fit(PROGRAMS)


def _top(index, proposal=PROPOSAL) -> ProgramMatch:
    return index.match([proposal])[0].matches[0]


def test_terms_are_written_as_the_proposal_wrote_them(index):
    top = _top(index)
    assert top.program_id == "k"
    by_lemma = {t.lemma: t.term for t in top.terms}
    assert by_lemma["子供"] == "子ども"  # not the dictionary's 子供
    assert by_lemma["作る"] == "つくる"
    assert not {"子供", "作る"} & {t.term for t in top.terms}
    everything = index.explain(index.transform([PROPOSAL]), 0, 0, limit=None)
    assert ("併せる", "合わせる") in {(t.term, t.lemma) for t in everything}  # 併せ, uninflected


def test_function_words_and_kanji_are_never_listed_for_a_person(index):
    top = _top(index)
    everything = index.explain(index.transform([PROPOSAL]), 0, 0, limit=None)
    hidden = {t.lemma for t in everything if t.kind == "function"}
    assert {"為", "関する"} <= hidden  # shared, and they count in the score...
    assert {t.kind for t in everything} >= {"function", "kanji", "word", "keyword"}
    assert not hidden & {t.lemma for t in top.terms}  # ...but are never listed
    assert all(t.kind in SHOWN_KINDS for t in top.terms)  # words exist: no kanji listed


def test_at_most_eight_terms_and_the_rest_is_other_weight(index):
    top = _top(index)
    everything = index.explain(index.transform([PROPOSAL]), 0, 0, limit=None)
    assert len(everything) > MAX_TERMS == len(top.terms) == 8
    assert sum(t.weight for t in everything) == pytest.approx(top.score, rel=1e-12)
    listed = set(top.terms)
    assert listed <= set(everything)
    rest = sum(t.weight for t in everything if t not in listed)
    assert top.other_weight == pytest.approx(rest, rel=1e-9) and rest > 0
    weights = [t.weight for t in top.terms]
    assert weights == sorted(weights, reverse=True)
    # The listed words are the heaviest words: none left out weighs more.
    left_out = [t.weight for t in everything if t not in listed and t.kind in SHOWN_KINDS]
    assert max(left_out, default=0.0) <= min(weights)


def test_a_pair_sharing_only_kanji_lists_them_as_kanji():
    programs = [ProgramRecord(id="d", name="防災講座", purpose="防災の意識を高める"), PROGRAMS[1]]
    match = ProgramIndex(kanji_weight=0.5).fit(programs).match([ProposalText("p", body="減災の勉強会")])[0].matches[0]
    assert [(t.term, t.kind, t.lemma) for t in match.terms] == [("災", "kanji", "字:災")]
    assert shown_terms(stored_form(match)) == []  # a person sees no kanji


def test_compounds_get_their_kind_and_their_written_form():
    programs = [ProgramRecord(id="c", name="まちづくり活動の支援", purpose="市民によるまちづくり活動を応援する"), PROGRAMS[1]]
    index = ProgramIndex(compounds=True, stop_words=()).fit(programs)
    top = _top(index, ProposalText("p", body="まちづくり活動を広げたい"))
    kinds = {t.term: (t.kind, t.lemma) for t in top.terms}
    assert kinds["まちづくり活動"] == ("compound", "町作り活動")
    assert kinds["まちづくり"] == ("word", "町作り")


def test_the_json_of_a_match(index):
    data = _top(index).to_dict()
    assert set(data) == {"program_id", "program_name", "department", "score", "terms", "other_weight"}
    assert all(set(t) == {"term", "weight", "field", "kind"} and t["kind"] in KINDS for t in data["terms"])
    assert sum(t["weight"] for t in data["terms"]) + data["other_weight"] == pytest.approx(data["score"], abs=5e-4)


def test_kyodo_match_lists_at_most_eight_terms_that_add_up(tmp_path):
    path = tmp_path / "p.jsonl"
    proposals = [
        {"id": "a", "title": "子どもの防災", "body": "子どもたちのために地域の防災講座を開き、ＮＰＯと一緒に避難訓練を行う。"},
        {"id": "b", "title": "広報", "body": "市の広報紙やホームページを、誰にでも分かりやすい情報提供にしたい。"},
    ]
    path.write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in proposals), encoding="utf-8")
    catalogue = tmp_path / "programs.csv"
    catalogue.write_text(
        "事業名,目的,担当課\n子供の防災教室,子供と地域の防災意識を高めるため講座を開く,防災安全課\n"
        "広報紙の発行,市政情報を分かりやすく伝える,広報課\n", encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli, ["match", "--mode", "lexical", "--programs", str(catalogue), "--proposals", str(path)]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["proposal_id"] for line in lines] == ["a", "b"]
    shown = set()
    for match in (m for line in lines for m in line["matches"]):
        assert len(match["terms"]) <= 8 and match["other_weight"] >= 0
        assert all(t["kind"] in KINDS for t in match["terms"])
        total = sum(t["weight"] for t in match["terms"]) + match["other_weight"]
        assert total == pytest.approx(match["score"], abs=5e-4 * (len(match["terms"]) + 2))
        shown |= {t["term"] for t in match["terms"] if t["kind"] != "kanji"}
    assert "子ども" in shown and "子供" not in shown
    assert not shown & FUNCTION_LEMMAS


def test_written_forms_keep_the_first_spelling_and_the_title_first():
    tokens, forms = tokenize_with_forms("取組を進め、取り組みを広げる")
    assert tokens == tokenize("取組を進め、取り組みを広げる")
    assert forms.display("取り組み") == "取組"
    index = ProgramIndex().fit([ProgramRecord(id="t", name="取り組みの支援", purpose="取組を広げる"), PROGRAMS[1]])
    top = _top(index, ProposalText("p", "取り組みの紹介", "地域の取組を広げる"))
    assert {t.lemma: t.term for t in top.terms}["取り組み"] == "取り組み"  # the title's spelling


def test_forms_from_worker_processes_equal_those_of_one_process():
    texts = [f"子どもたちのために{i}回目の講座をつくる。" * 3 for i in range(1100)]
    one = tokenize_many_with_forms(texts, compounds=True)
    two = tokenize_many_with_forms(texts, compounds=True, n_jobs=2, batch_size=256)
    assert one == two and one[0][1].display("子供") == "子ども"


def test_query_rows_keep_their_forms_when_sliced(index):
    rows = index.transform([PROPOSAL, ProposalText("q", body="防災講座をつくる")])
    assert [f.display("子供") for f in rows[0:1].forms] == ["子ども"]
    assert index.explain(rows[1:2], 0, 2)[0].term == "防災"
    # A bare CSR matrix (no forms) is explained with the lemmas.
    plain = sp.csr_matrix(rows)
    assert {t.term for t in index.explain(plain, 0, 0)} >= {"子供", "作る"}


# -- stored rows and the proposal page -------------------------------------------


def test_stored_rows_carry_kind_and_lemma_only_when_needed(index):
    stored = stored_form(_top(index))
    assert ["食堂", pytest.approx(stored[0][1]), "activities"] == stored[0]  # a plain word: three items
    assert ["子ども", stored[1][1], "keywords", "keyword", "子供"] == stored[1]
    assert [t.term for t in shown_terms(stored)] == [t.term for t in _top(index).terms]
    assert "子供" in term_lemmas(stored)


def test_rows_stored_before_kinds_are_still_read():
    old = [["字:災", 0.02, "activities"], ["防災", 0.1, "name"], ["為", 0.01, "purpose"], ["ママ", 0.03, "keywords"]]
    read = stored_terms(old)
    assert [(t.term, t.kind, t.lemma) for t in read] == [
        ("災", "kanji", "字:災"), ("防災", "word", "防災"), ("為", "function", "為"), ("ママ", "keyword", "ママ"),
    ]
    assert [t.term for t in shown_terms(old)] == ["防災", "ママ"]
    assert stored_terms([None, [], ["x"], [1, 2, 3], "bad"]) == [] and stored_terms(None) == []


WRITTEN = {
    "organization": "NPO法人まちの輪", "representative": "山田花子", "email": "hanako@example.jp",
    "title": "まちづくりの情報交換会",
    "body": "子どもたちと一緒に、まちづくりの情報を交換する会を地域でつくります。防災のため、講座も開きます。",
    "expected_effect": "地域のつながりが深まる。", "collaboration_type": "co_hosting", "consent": "y",
}


@pytest.fixture
def coordinator_client(client, session):
    create_user(session=session, username="coord", password="correct horse battery")
    assert client.post("/login", data={"username": "coord", "password": "correct horse battery"}).status_code == 302
    return client


def _submit(client) -> int:
    response = client.post("/proposals/new", data=WRITTEN)
    assert response.status_code == 303, response.data.decode()[:500]
    receipt = client.get(response.headers["Location"]).data.decode()
    number = re.search(r'data-testid="receipt-number">[^-<]+-(\d+)', receipt)
    assert number, receipt[:500]
    return int(number.group(1))


def _listed(html: str) -> list[list[str]]:
    return [re.findall(r"<mark[^>]*>([^<]+)</mark>", p) for p in re.findall(r'data-testid="shared-terms">(.*?)</p>', html)]


def test_the_proposal_page_lists_the_proposals_words(coordinator_client, session):
    proposal_id = _submit(coordinator_client)
    html = coordinator_client.get(f"/review/proposals/{proposal_id}").data.decode()
    listed = [w for words in _listed(html) for w in words]
    assert "まちづくり" in listed and "町作り" not in listed  # as written, not the lemma
    assert not set(listed) & FUNCTION_LEMMAS and "ため" not in listed
    stored = [t for s in session.exec(select(Suggestion).where(Suggestion.proposal_id == proposal_id)) for t in s.terms]
    assert stored and all(len(words) <= 8 for words in _listed(html))
    kanji_only = {t[0] for t in stored if len(t) > 3 and t[3] == "kanji"} - {t[0] for t in shown_terms(stored)}
    assert not kanji_only & set(listed) and "共通する漢字" not in html and "字:" not in html
    body = re.search(r'data-testid="proposal-body">(.*?)</div>', html, re.S)
    assert body and "<mark>まちづくり</mark>" in body.group(1)  # marked by its lemma in the proposal's text


def test_a_suggestion_stored_before_kinds_still_renders(coordinator_client, session):
    proposal_id = _submit(coordinator_client)
    suggestion = session.exec(select(Suggestion).where(Suggestion.proposal_id == proposal_id)).first()
    suggestion.terms = [["町作り", 0.2, "activities"], ["字:災", 0.05, "activities"], ["為", 0.01, "purpose"]]
    session.add(suggestion)
    session.commit()
    response = coordinator_client.get(f"/review/proposals/{proposal_id}")
    assert response.status_code == 200
    html = response.data.decode()
    assert ["町作り"] in _listed(html)  # the old row's lemma, the best it knows
    assert "字:" not in html and "<mark>災</mark>" not in html and "<mark>為</mark>" not in html


def test_terms_equal_and_hash_as_values():
    a = Term("子ども", 0.5, "purpose", "word", "子供")
    assert a == Term("子ども", 0.5, "purpose", "word", "子供") and len({a, a}) == 1
    assert Term("語", 0.5, "activities").kind == "word"


def test_the_seed_catalogue_never_lists_function_words_or_kanji_with_words():
    index = ProgramIndex().fit(load_programs())
    texts = ["地域の防災のために、子どもたちと一緒に講座を開催することとしたい。", "高齢者の見守りに関する相談の場をつくる"]
    for result in index.match([ProposalText(str(i), body=t) for i, t in enumerate(texts)]):
        for match in result.matches:
            assert len(match.terms) <= 8
            assert not {t.lemma for t in match.terms} & FUNCTION_LEMMAS
            if any(t.kind in SHOWN_KINDS for t in match.terms):
                assert all(t.kind in SHOWN_KINDS for t in match.terms)
