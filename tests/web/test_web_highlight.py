"""<mark> of the matcher's shared terms (lemmas) in Japanese text, everything else escaped."""

from __future__ import annotations

import pytest

from matcher import tokenize
from web.highlight import highlight


@pytest.mark.parametrize(
    "text,terms,expected",
    [
        ("講座を開催しました", ["開催"], "講座を<mark>開催</mark>しました"),
        ("公園で作った", ["作る"], "公園で<mark>作っ</mark>た"),  # inflected verb, lemma 作る
        ("ＮＰＯ法人です", ["NPO"], "<mark>ＮＰＯ</mark>法人です"),  # full-width, NFKC term
        ("ｶﾞｲﾄﾞﾌﾞｯｸを配る", ["ガイドブック"], "<mark>ｶﾞｲﾄﾞﾌﾞｯｸ</mark>を配る"),  # half-width kana
        ("市民活動総合保険制度", ["保険制度"], "市民活動総合<mark>保険制度</mark>"),  # noun bigram
        ("京都の都市", ["都"], "京都の都市"),  # no substring hits inside other words
    ],
)
def test_marks_terms_by_their_surface(text, terms, expected):
    assert str(highlight(text, terms)) == expected


def test_everything_else_is_escaped():
    html = str(highlight('<script>alert("開催")</script> & 開催', ["開催"]))
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp;" in html
    assert html.count("<mark>開催</mark>") == 2


def test_every_term_the_matcher_finds_can_be_marked():
    text = "地域の子育て支援として親子の交流会を開き、ボランティアを募集します。"
    marked = str(highlight(text, tokenize(text)))
    assert marked.replace("<mark>", "").replace("</mark>", "") == text
    for word in ("子育て", "支援", "交流", "ボランティア", "募集"):
        assert word in "".join(part.split("</mark>")[0] for part in marked.split("<mark>")[1:]), word


def test_no_terms_or_empty_text():
    assert str(highlight("", ["開催"])) == ""
    assert str(highlight("a<b", [])) == "a&lt;b"
