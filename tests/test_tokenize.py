"""The tokenizer's handling of each unidic pitfall measured on the seed text."""

import pytest

from matcher.tokenize import analyze, normalize, tokenize


@pytest.mark.parametrize(
    "text",
    ["(新)協働のまちづくりに関する条例制定", "( 拡 ) 広報の充実", "(継)まち育て塾の開催", "（拡）広報の充実"],
)
def test_plan_markers_leave_no_token(text):
    tokens = tokenize(text)
    assert not {"新", "ヒロム", "拡", "継ぎ", "継", "(", "（"} & set(tokens)
    assert tokens  # the rest of the name is still there


def test_marker_removal_keeps_real_words_with_the_same_characters():
    assert "新設" in tokenize("保険制度を新設する")
    assert "拡大" in tokenize("活動を拡大する")


def test_loanword_gloss_is_cut():
    tokens = tokenize("NPOへのインターンシップ制度とコミュニティリーダー")
    assert "インターンシップ" in tokens
    assert "リーダー" in tokens
    assert not [t for t in tokens if "-" in t]


def test_unknown_words_keep_their_surface():
    assert "NPO" in tokenize("NPOの活動")


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [("ＮＰＯ", "NPO"), ("ﾎｰﾑﾍﾟｰｼﾞ", "ホームページ"), ("ＮＰＯフェスタ", "NPOフェスタ")],
)
def test_width_variants_tokenize_alike(variant, canonical):
    assert tokenize(f"{variant}を充実する") == tokenize(f"{canonical}を充実する")


@pytest.mark.parametrize("text", ["2,000千円", "予算 12,500千円", "21年度から", "7ヶ所 7,800千円", "１２３"])
def test_numbers_and_amounts_are_not_tokens(text):
    tokens = tokenize(text)
    assert not [t for t in tokens if any(ch.isdigit() for ch in t)]
    assert "," not in tokens and "千" not in tokens


def test_compound_nouns_are_also_joined():
    tokens = tokenize("市民活動総合保険制度の新設")
    assert {"市民", "活動", "保険", "制度"} <= set(tokens)
    assert {"市民活動", "保険制度"} <= set(tokens)
    assert "ホームページ" in tokenize("ホームページで公開")


def test_compounds_can_be_turned_off():
    assert "市民活動" not in tokenize("市民活動総合保険制度", compounds=False)


def test_spelling_variants_share_a_lemma():
    assert "取り組み" in tokenize("取組を進める") and "取り組み" in tokenize("取り組みを進める")
    assert "町作り" in tokenize("まちづくりの推進") and "町作り" in tokenize("町づくりの推進")


def test_function_words_and_light_verbs_are_dropped():
    tokens = tokenize("講座を開催することとしている")
    assert "為る" not in tokens and "を" not in tokens and "居る" not in tokens
    assert "講座" in tokens and "開催" in tokens


def test_na_adjectives_are_kept():
    assert "様々" in tokenize("様々なメディアを活用する")


def test_control_characters_do_not_break_parsing():
    assert tokenize("防災\x00講座\x07の開催") == tokenize("防災 講座 の開催")


def test_normalize_is_nfkc_without_markers_or_numbers():
    assert normalize("(拡)ＮＰＯ 2,000千円") .split() == ["NPO"]


def test_analyze_is_space_joined_tokens():
    assert analyze("防災講座の開催") == " ".join(tokenize("防災講座の開催"))


def test_empty_text():
    assert tokenize("") == []


def test_c1_control_characters_are_blanked():
    assert normalize("防災\x85講座\x9f") == "防災 講座 "
    assert tokenize("防災\x85講座", compounds=False) == ["防災", "講座"]
