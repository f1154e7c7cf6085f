"""The bundled corpus comes from the seeds word for word; the loader reads a
city's own files in every format it may have."""

import csv
import json
import os
import re
from pathlib import Path

import pytest
from openpyxl import Workbook

from corpus import (
    BUNDLED_PROGRAMS,
    FileFormatError,
    InvalidRowsError,
    load_programs,
    split_departments,
)
from corpus.programs import parse_budget_thousand_yen

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_bundled_corpus_has_the_30_programs():
    programs = load_programs()
    assert len(programs) == 30
    assert sum(p.id.startswith("H20-") for p in programs) == 25
    assert [p.id for p in programs if p.id.startswith("KN-")] == [
        "KN-B2001", "KN-532-1", "KN-532-2", "KN-532-3", "KN-532-4"
    ]
    assert len({p.id for p in programs}) == 30


# Outside CI a checkout may sit without ../shared; in CI the seeds must be there.
@pytest.mark.skipif(
    not SEEDS.exists() and not os.environ.get("CI"), reason="the seeds live in ../shared/seeds"
)
def test_every_text_cell_is_in_the_seeds_word_for_word():
    seeds = _squash("".join(p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))))
    with BUNDLED_PROGRAMS.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for column in ("大項目", "中項目", "施策名", "目的", "事業名", "取り組み内容", "担当課", "予算"):
                if row[column]:
                    assert _squash(row[column]) in seeds, (row["id"], column)


def test_departments_split_and_empty_where_the_seed_names_none():
    by_id = {p.id: p for p in load_programs()}
    assert by_id["H20-14"].departments == ("市民協働課", "環境課")
    assert by_id["H20-15"].departments == ("市民協働課", "防災安全課", "環境課")
    for pid in ("KN-532-1", "KN-532-2", "KN-532-3", "KN-532-4"):
        assert by_id[pid].department == "" and by_id[pid].departments == ()


def test_budgets_keep_text_and_number():
    by_id = {p.id: p for p in load_programs()}
    assert by_id["H20-03"].budget == "2,000千円" and by_id["H20-03"].budget_thousand_yen == 2000
    assert by_id["H20-14"].budget_thousand_yen == 24484 + 11421 + 29930
    assert by_id["H20-08"].budget.startswith("収入") and by_id["H20-08"].budget_thousand_yen is None
    assert by_id["H20-01"].budget == "-" and by_id["H20-01"].budget_thousand_yen is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("300千円", 300), ("7ヶ所 7,800千円", 7800), ("-", None), ("", None), ("収入 1,020千円", None), ("１００千円", 100)],
)
def test_parse_budget(text, expected):
    assert parse_budget_thousand_yen(text) == expected


def test_split_departments_separators():
    assert split_departments("企画政策課、市民協働課") == ("企画政策課", "市民協働課")
    assert split_departments("") == ()


HEADERS = ["施策名", "目的", "事業名", "取り組み内容", "担当課", "予算"]
ROWS = [
    ["防災の推進", "市民の防災意識を高める", "防災講座", "講座を開く", "防災安全課", "100千円"],
    ["広報の充実", "分かりやすい情報提供", "広報紙の発行", "毎月発行する", "人事秘書課", "-"],
]


def _write_csv(path: Path, encoding: str) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADERS)
        writer.writerows(ROWS)
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_csv_in_every_encoding(tmp_path, encoding):
    programs = load_programs(_write_csv(tmp_path / "list.csv", encoding))
    assert [p.name for p in programs] == ["防災講座", "広報紙の発行"]
    assert programs[0].budget_thousand_yen == 100
    assert programs[0].id.startswith("auto-")
    assert load_programs(tmp_path / "list.csv")[0].id == programs[0].id  # stable


def test_xlsx(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADERS)
    for row in ROWS:
        sheet.append(row)
    workbook.save(tmp_path / "list.xlsx")
    programs = load_programs(tmp_path / "list.xlsx", fiscal_year=2026)
    assert [p.department for p in programs] == ["防災安全課", "人事秘書課"]
    assert programs[0].fiscal_year == 2026


def test_jsonl_with_english_keys(tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"id": f"p{i}", "name": r[2], "purpose": r[1], "department": r[4]}, ensure_ascii=False)
            for i, r in enumerate(ROWS)
        ),
        encoding="utf-8",
    )
    assert [p.id for p in load_programs(path)] == ["p0", "p1"]


def test_invalid_rows_are_all_named(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("事業名,目的\n防災講座,\n,目的だけ\n広報,情報提供\n", encoding="utf-8")
    with pytest.raises(InvalidRowsError) as info:
        load_programs(path)
    assert [e.line for e in info.value.errors] == [2, 3]
    assert "bad.csv:2" in str(info.value) and "bad.csv:3" in str(info.value)
    assert [p.name for p in load_programs(path, skip_invalid=True)] == ["広報"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        (b"", "empty"),
        (b"\xff\xfe\x00\x81\x00", "cannot decode"),
        ("目的,担当課\nあ,い\n".encode(), "事業名"),
        ("事業名,担当課\nあ,い\n".encode(), "目的"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "programs.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(FileFormatError, match=message) as info:
        load_programs(path)
    assert str(info.value).startswith("programs.csv")
    assert "\n" not in str(info.value)
