"""Departments by their duties (matcher.duties), `kyodo match --departments`,
and the real-world benchmark's scoring (matcher.realworld)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from matcher.duties import DutyWeights, merge
from matcher.realworld import RealProposal, family_metrics, load_benchmark
from matcher.results import DepartmentScore, MatchResult
from matcher.text import ProposalText
from web.cli import cli

# Written for testing.
DIRECTORY = "担当課,部,所掌事務\n動物愛護課,環境部,犬や猫の適正な飼い方の啓発、ドッグランの管理運営\n防災課,総務部,地域防災計画、防災訓練、避難所の運営\n"
DOG_RUN = {"id": "dog", "title": "公園にドッグランを", "body": "河川敷の公園に犬が綱を外して走れるドッグランを設けたい。"}


def test_merge_keeps_both_sources_and_ranks_by_both():
    result = MatchResult("p", no_match=False, departments=[DepartmentScore("公園緑地課", 0.4)])
    merged = merge(result, ["動物愛護課", "公園緑地課"], 3, DutyWeights(rrf_k=10.0, duty_weight=1.0))
    assert [(d.department, d.source) for d in merged.departments] == [("公園緑地課", "program"), ("動物愛護課", "duties")]
    assert merged.departments[0].score == pytest.approx(1 / 11 + 1 / 12)


def test_match_with_a_directory_ranks_departments_by_duties(tmp_path):
    (tmp_path / "dirs.csv").write_text(DIRECTORY, encoding="cp932")
    (tmp_path / "p.jsonl").write_text(json.dumps(DOG_RUN, ensure_ascii=False) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["match", "--mode", "lexical", "--proposals", str(tmp_path / "p.jsonl"),
                                      "--departments", str(tmp_path / "dirs.csv")])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.splitlines()[-1])
    assert line["departments"][0] == {**line["departments"][0], "department": "動物愛護課", "source": "duties"}
    assert {d["source"] for d in line["departments"]} == {"duties", "program"}
    without = CliRunner().invoke(cli, ["match", "--mode", "lexical", "--proposals", str(tmp_path / "p.jsonl")])
    assert all(d["source"] == "program" for d in json.loads(without.output.splitlines()[-1])["departments"])


def test_a_directory_without_its_column_is_one_readable_line(tmp_path):
    (tmp_path / "bad.csv").write_text("名前,仕事\n動物愛護課,犬\n", encoding="utf-8")
    (tmp_path / "p.jsonl").write_text(json.dumps(DOG_RUN, ensure_ascii=False) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["match", "--mode", "lexical", "--proposals", str(tmp_path / "p.jsonl"),
                                      "--departments", str(tmp_path / "bad.csv")])
    assert result.exit_code == 1 and "担当課" in result.output and "Traceback" not in result.output


def test_family_metrics_count_distinct_families():
    families = {"子育て支援課": "子ども", "こども家庭課": "子ども", "公園緑地課": "公園", "防災課": "防災"}
    item = RealProposal(ProposalText("a", "t", "b"), "市", "防災", "dev")
    # Two 子ども departments are one answer: 防災 is the second family, within three.
    m = family_metrics([item], [["子育て支援課", "こども家庭課", "公園緑地課", "防災課"]], families)
    assert (m.hit_at_1, m.hit_at_3) == (0.0, 1.0)
    m = family_metrics([item], [["防災課"]], families)
    assert (m.hit_at_1, m.hit_at_3) == (1.0, 1.0)


def test_the_real_benchmark_is_whole_cities_per_split():
    bench = load_benchmark("tests/data/realworld")
    cities = {split: {p.city for p in bench.proposals if p.split == split} for split in ("dev", "heldout")}
    assert cities["dev"] and cities["heldout"] and not cities["dev"] & cities["heldout"]
    assert all(p.family for p in bench.proposals) and len(bench.directory) >= 14
    assert all(d.name in bench.families for d in bench.directory)
