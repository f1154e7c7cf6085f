"""`kyodo match` and `kyodo evaluate` through click's CliRunner, bad input included."""

import json
import re

import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from web.cli import cli

# Proposals written for testing.
PROPOSALS = [
    {"id": "a", "title": "防災講座", "body": "地域の防災リーダーを育てる講座を、災害時の自助をテーマに開きたい。"},
    {"id": "b", "title": "広報", "body": "市の広報紙やホームページを、誰にでも分かりやすい情報提供にしたい。"},
]


@pytest.fixture
def runner():
    return CliRunner()


def _jsonl(path, records):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path


def test_match_jsonl_output_shape(runner, tmp_path):
    # Lexical mode: the JSON stays exactly what it was before the semantic layer.
    result = runner.invoke(
        cli, ["match", "--mode", "lexical", "--proposals", str(_jsonl(tmp_path / "p.jsonl", PROPOSALS)), "--top-k", "3"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["proposal_id"] for line in lines] == ["a", "b"]
    first = lines[0]
    assert set(first) == {"proposal_id", "no_match", "confidence", "ambiguous", "matches", "departments", "related"}
    assert first["confidence"] in {"high", "medium", "low"} and isinstance(first["ambiguous"], bool)
    assert len(first["matches"]) == 3
    assert first["matches"][0]["program_id"] == "KN-B2001"
    assert set(first["matches"][0]) == {"program_id", "program_name", "department", "score", "terms", "other_weight"}
    assert set(first["matches"][0]["terms"][0]) == {"term", "weight", "field", "kind"}
    assert lines[1]["matches"][0]["program_id"] == "H20-05"
    assert lines[1]["departments"][0]["department"] == "人事秘書課"


def test_match_table_and_csv_proposals(runner, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id,title,body\n" + "".join(f"{p['id']},{p['title']},{p['body']}\n" for p in PROPOSALS), encoding="cp932")
    result = runner.invoke(cli, ["match", "--proposals", str(path), "--format", "table"])
    assert result.exit_code == 0, result.output
    assert "■ a" in result.output and "共通語" in result.output and "担当課" in result.output
    # A person's table lists words only: no kanji features, with or without 字:.
    assert "共通の漢字" not in result.output
    assert not re.search(r"字:\S", result.output)


def test_match_with_a_city_programs_file(runner, tmp_path):
    workbook = Workbook()
    workbook.active.append(["事業名", "目的", "担当課"])
    workbook.active.append(["ドッグラン整備", "公園に犬の運動場をつくる", "公園緑地課"])
    workbook.active.append(["防災講座", "市民の防災意識を高める", "防災安全課"])
    workbook.save(tmp_path / "programs.xlsx")
    proposals = _jsonl(tmp_path / "p.jsonl", [{"id": "d", "body": "公園にドッグランがほしい"}])
    result = runner.invoke(cli, ["match", "--programs", str(tmp_path / "programs.xlsx"), "--proposals", str(proposals)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["matches"][0]["department"] == "公園緑地課"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "missing.jsonl: file not found"),
        ("empty.jsonl", b"", "empty.jsonl: file is empty"),
        ("latin.csv", b"id,title,body\n1,\x81\x20,x\n", "latin.csv: cannot decode"),
        ("nobody.csv", "id,title\n1,タイトル\n".encode(), "nobody.csv: missing required column body"),
        ("broken.jsonl", b'{"id": "1", "body": "ok"}\n{not json\n', "broken.jsonl:2: invalid JSON"),
    ],
)
def test_match_bad_proposal_files_exit_with_one_line(runner, tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    result = runner.invoke(cli, ["match", "--proposals", str(path)])
    assert result.exit_code != 0
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_match_bad_programs_file(runner, tmp_path):
    (tmp_path / "programs.csv").write_text("事業名,担当課\n防災,防災安全課\n", encoding="utf-8")
    proposals = _jsonl(tmp_path / "p.jsonl", PROPOSALS)
    result = runner.invoke(cli, ["match", "--programs", str(tmp_path / "programs.csv"), "--proposals", str(proposals)])
    assert result.exit_code != 0
    assert "programs.csv" in result.output and "目的" in result.output


def test_match_bad_records_reported_others_still_out(runner, tmp_path):
    records = [
        {"id": "empty", "title": "x", "body": ""},
        {"id": "huge", "title": "x", "body": "あ" * 1_000_000},
        {"id": "ctrl", "title": "x", "body": "防災\x01講座"},
        PROPOSALS[0],
    ]
    result = runner.invoke(cli, ["match", "--proposals", str(_jsonl(tmp_path / "p.jsonl", records))])
    assert result.exit_code == 0, result.output
    lines = {json.loads(line)["proposal_id"]: json.loads(line) for line in result.output.splitlines()}
    assert "empty" in lines["empty"]["error"]
    assert "longer" in lines["huge"]["error"]
    assert "control" in lines["ctrl"]["error"]
    assert "error" not in lines["a"] and lines["a"]["matches"]


def test_evaluate_prints_kyodo_and_both_baselines(runner, tmp_path):
    gold = _jsonl(
        tmp_path / "gold.jsonl",
        [
            {**PROPOSALS[0], "gold": ["KN-B2001"], "kind": "ordinary"},
            {**PROPOSALS[1], "gold": ["( 拡 ) 広報の充実"], "kind": "ordinary"},  # by name
            {"id": "dog", "title": "ドッグラン", "body": "公園に犬が走れるドッグランを作りたい。", "gold": [], "kind": "off"},
        ],
    )
    result = runner.invoke(cli, ["evaluate", "--mode", "lexical", "--gold", str(gold), "--format", "json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert set(figures) == {"kyodo-match", "lemma TF-IDF (defaults)", "char-bigram TF-IDF", "by_kind"}
    ours = figures["kyodo-match"]
    assert ours["n_in_scope"] == 2 and ours["n_out_of_scope"] == 1
    assert ours["hit_at_1"] == 1.0 and ours["mrr"] == 1.0
    assert ours["out_of_scope_flagged"] == 1.0 and ours["in_scope_flagged"] == 0.0
    assert figures["char-bigram TF-IDF"]["out_of_scope_flagged"] is None
    assert figures["by_kind"]["ordinary"]["kyodo-match"]["n_in_scope"] == 2
    assert figures["by_kind"]["off"]["kyodo-match"]["n_out_of_scope"] == 1
    table = runner.invoke(cli, ["evaluate", "--mode", "lexical", "--gold", str(gold)])
    assert "hit@1" in table.output and "char-bigram" in table.output and "[ordinary]" in table.output


def test_evaluate_rejects_unknown_gold_program(runner, tmp_path):
    gold = _jsonl(tmp_path / "gold.jsonl", [{**PROPOSALS[0], "gold": ["NOPE-1"]}])
    result = runner.invoke(cli, ["evaluate", "--gold", str(gold)])
    assert result.exit_code != 0 and "NOPE-1" in result.output
