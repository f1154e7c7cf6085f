"""The coordinator's keywords (キーワード) of a program: read from files, kept
by imports that lack the column, carried into the next fiscal year, set by
``kyodo programs keywords``, and read by the matcher as a field of its own.
On SQLite and PostgreSQL where a database is involved."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner
from factories import program_by_external_id
from sqlmodel import select

from corpus import InvalidRowsError, ProgramRecord, load_keywords, load_programs, with_keywords
from matcher import ProgramIndex, ProposalText
from matcher.cli import evaluate_command
from models.tables import AuditEvent, Program
from web.cli import cli

HEADER = "id,年度,施策名,目的,事業名,取り組み内容,担当課"
ROW_1 = "R08-01,2026,防災のまちづくり,市民の防災意識を高める,防災講座の開催,地域で防災講座と避難訓練を行う,危機管理課"
ROW_2 = "R08-02,2026,子育て支援,子育て家庭を地域で支える,親子サロン,子育て中の親子の交流の場をつくる,子育て支援課"


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.replace("\n", "\r\n").encode(encoding))
    return path


def keywords_of(session, external_id, year=2026):
    session.expire_all()
    return session.exec(
        select(Program.keywords).where(Program.external_id == external_id, Program.fiscal_year == year)
    ).one()


# -- files ----------------------------------------------------------------------


def test_programs_file_reads_the_keywords_column_or_says_it_is_absent(tmp_path):
    with_column = write(tmp_path / "a.csv", f"{HEADER},キーワード\n{ROW_1},避難所、備蓄\n{ROW_2},\n")
    without = write(tmp_path / "b.csv", f"{HEADER}\n{ROW_1}\n")
    first, second = load_programs(with_column)
    assert first.keywords == "避難所、備蓄" and second.keywords == ""
    assert load_programs(without)[0].keywords is None
    assert first.text_fields()["keywords"] == "避難所、備蓄"
    assert load_programs(without)[0].text_fields()["keywords"] == ""


def test_keywords_file_errors_name_every_bad_line(tmp_path):
    good = write(tmp_path / "k.csv", "id,キーワード\nR08-01,避難所\nR08-02,ママ友\n", encoding="cp932")
    assert load_keywords(good) == {"R08-01": "避難所", "R08-02": "ママ友"}
    bad = write(
        tmp_path / "bad.csv",
        "id,キーワード\nR08-01,a\nR08-01,b\n," + "x" * 2001 + "\nR08-03," + "y" * 2001 + "\nR08-04,ベル\x07\n",
    )
    with pytest.raises(InvalidRowsError) as caught:
        load_keywords(bad)
    assert [e.line for e in caught.value.errors] == [3, 4, 5, 6]
    assert caught.value.errors[3].ja == "キーワードに制御文字があります"
    with pytest.raises(Exception, match="キーワード"):
        load_keywords(write(tmp_path / "none.csv", "id,名前\nR08-01,a\n"))
    with pytest.raises(ValueError, match="unknown program ids: X-1"):
        with_keywords(load_programs(), {"X-1": "a"})


# -- the matcher ----------------------------------------------------------------


def test_a_keyword_alone_ranks_its_program_first_and_is_the_reason():
    programs = [
        ProgramRecord(id="A", name="地域防災の推進", activities="自主防災組織の訓練を支援する", department="危機管理課"),
        ProgramRecord(id="B", name="子育て家庭の交流", activities="親子の交流の場をつくる", department="子育て支援課",
                      keywords="ママ友、ベビーカー"),
    ]
    # Written for testing: shares no word with either program's own text.
    proposal = ProposalText("p", "ベビーカーで集まれる場所", "ベビーカーを押して気軽に集まり、ママ友をつくれる場所を開きたい。")
    without = list(ProgramIndex(top_k=2).fit_match([replace(p, keywords=None) for p in programs], [proposal]))[0]
    result = list(ProgramIndex(top_k=2).fit_match(programs, [proposal]))[0]
    top = result.matches[0]
    assert top.program_id == "B"
    assert top.score > max(m.score for m in without.matches if m.program_id == "B")
    keyword_terms = {t.term for t in top.terms if t.field == "keywords"}
    assert {"ベビー", "ママ"} <= keyword_terms  # unidic-lite splits ベビーカー, ママ友


def test_evaluate_reads_the_keywords_file():
    runner = CliRunner()
    args = ["--gold", "tests/data/devset.jsonl", "--mode", "lexical", "--format", "json"]
    plain = runner.invoke(evaluate_command, args)
    with_keywords_ = runner.invoke(evaluate_command, [*args, "--keywords", "tests/data/program_keywords.csv"])
    assert plain.exit_code == 0 and with_keywords_.exit_code == 0, with_keywords_.output
    before = json.loads(plain.output)["by_kind"]["paraphrase"]["kyodo-match"]["hit_at_1"]
    after = json.loads(with_keywords_.output)["by_kind"]["paraphrase"]["kyodo-match"]["hit_at_1"]
    assert after > before
    unknown = runner.invoke(evaluate_command, [*args, "--keywords", "tests/data/devset.jsonl"])
    assert unknown.exit_code != 0 and "キーワード" in unknown.output


# -- the database ----------------------------------------------------------------


def test_import_keeps_keywords_unless_the_file_has_the_column(runner, session, tmp_path):
    with_column = write(tmp_path / "a.csv", f"{HEADER},キーワード\n{ROW_1},避難所\n{ROW_2},ママ友\n")
    assert "added 2" in runner.invoke(cli, ["programs", "import", str(with_column)]).output
    assert keywords_of(session, "R08-01") == "避難所"
    # The city's sheet again, without the coordinator's column: nothing changes.
    without = write(tmp_path / "b.csv", f"{HEADER}\n{ROW_1}\n{ROW_2}\n")
    result = runner.invoke(cli, ["programs", "import", str(without)])
    assert "added 0, updated 0, unchanged 2" in result.output, result.output
    assert keywords_of(session, "R08-01") == "避難所"
    # With the column, it is the file's word.
    changed = write(tmp_path / "c.csv", f"{HEADER},キーワード\n{ROW_1},避難所、備蓄\n{ROW_2},ママ友\n")
    assert "updated 1, unchanged 1" in runner.invoke(cli, ["programs", "import", str(changed)]).output
    assert keywords_of(session, "R08-01") == "避難所、備蓄"


def test_next_fiscal_year_takes_the_keywords_of_the_same_id(runner, session, tmp_path):
    runner.invoke(cli, ["programs", "import", str(write(tmp_path / "a.csv", f"{HEADER},キーワード\n{ROW_1},避難所\n"))])
    next_year = write(tmp_path / "b.csv", f"{HEADER}\n{ROW_1.replace(',2026,', ',2027,')}\n")
    assert runner.invoke(cli, ["programs", "import", str(next_year)]).exit_code == 0
    assert keywords_of(session, "R08-01", 2027) == "避難所"


def test_programs_keywords_command_is_all_or_nothing_and_audited(runner, session, tmp_path):
    path = write(tmp_path / "k.csv", "id,キーワード\nH20-01,まちの憲法\nH20-02,シビックプライド\n")
    result = runner.invoke(cli, ["programs", "keywords", str(path)])
    assert result.exit_code == 0, result.output
    assert "keywords updated 2, unchanged 0 (fiscal year 2008)" in result.output
    assert program_by_external_id(session, "H20-01").keywords == "まちの憲法"
    again = runner.invoke(cli, ["programs", "keywords", str(path)])
    assert "updated 0, unchanged 2" in again.output
    typo = write(tmp_path / "t.csv", "id,キーワード\nH20-01,別の言葉\nH20-99,存在しない\n")
    failed = runner.invoke(cli, ["programs", "keywords", str(typo)])
    assert failed.exit_code != 0 and "H20-99" in failed.output
    assert len(failed.output.strip().splitlines()) == 1
    session.expire_all()
    assert program_by_external_id(session, "H20-01").keywords == "まちの憲法"
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "programs.keywords")).all()
    assert len(events) == 2


def test_export_has_the_keywords_and_imports_back_unchanged(runner, session, tmp_path):
    path = write(tmp_path / "k.csv", "id,キーワード\nH20-01,まちの憲法\n")
    runner.invoke(cli, ["programs", "keywords", str(path)])
    exported = runner.invoke(cli, ["programs", "export", "--format", "csv"])
    assert exported.output.splitlines()[0].endswith(",出典,キーワード")
    assert "まちの憲法" in exported.output
    out = tmp_path / "export.xlsx"
    runner.invoke(cli, ["programs", "export", "--format", "xlsx", "-o", str(out)])
    again = runner.invoke(cli, ["programs", "import", str(out)])
    assert "added 0, updated 0, unchanged 30" in again.output, again.output


def test_rematch_reads_the_keywords(runner, session, tmp_path):
    from factories import create_random_proposal

    from models.suggestions import suggestions_for

    # Written for testing: everyday words only.
    proposal = create_random_proposal(session, title="ピアノを駅前に", body="駅前にストリートピアノを置いて、だれでも弾けるようにしたい。")
    program = program_by_external_id(session, "H20-02")
    runner.invoke(cli, ["programs", "keywords", str(write(tmp_path / "k.csv", "id,キーワード\nH20-02,ストリートピアノ\n"))])
    result = runner.invoke(cli, ["rematch"])
    assert result.exit_code == 0, result.output
    session.expire_all()
    rows = suggestions_for(session=session, proposal_ids=[proposal.id])[proposal.id]
    top = rows[0]
    assert top.program_id == program.id
    assert any(term[2] == "keywords" and "ピアノ" in term[0] for term in top.terms)
