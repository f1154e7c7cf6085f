"""Themes (matcher/themes.py) and ``kyodo themes``. The proposals here were
written for testing; tests/data/devset.jsonl too (tests/data/README.md)."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from test_related import PROPOSALS  # written for testing, shared
from test_theme_edits import THEME_TEXTS

from matcher.index import ProposalText
from matcher.related import PairGraph, build_space, pair_graph
from matcher.results import MatchResult, ProgramMatch
from matcher.themes import Theme, clusters, is_noun, label_words, shared_programs, themes, themes_in
from web.cli import cli

DATA = Path(__file__).parent / "data"


def _dev():
    rows = [json.loads(line) for line in (DATA / "devset.jsonl").read_text(encoding="utf-8").splitlines()]
    return [ProposalText(r["id"], r["title"], r["body"]) for r in rows]


def _partition_ok(found: list[Theme], ids: list[str]) -> None:
    listed = [pid for t in found for pid in t.proposal_ids]
    assert sorted(listed) == sorted(ids) and len(listed) == len(set(listed))
    assert [t.theme for t in found] == list(range(1, len(found) + 1))
    assert [len(t.proposal_ids) for t in found] == sorted((len(t.proposal_ids) for t in found), reverse=True)


def test_every_proposal_in_exactly_one_theme():
    found = themes(PROPOSALS, mode="lexical", embedder=None)
    _partition_ok(found, [p.id for p in PROPOSALS])
    groups = {frozenset(t.proposal_ids) for t in found}
    assert {frozenset({"food-1", "food-2"}), frozenset({"bousai-1", "bousai-2"}), frozenset({"park-1", "park-2"})} <= groups
    unreadable = next(t for t in found if "empty" in t.proposal_ids)
    assert unreadable.proposal_ids == ("empty",) and unreadable.label == ""


def test_dev_split_partition_and_labels():
    dev = _dev()
    found = themes(dev, mode="lexical", embedder=None)
    _partition_ok(found, [p.id for p in dev])
    assert 1 < len(found) < len(dev)
    for theme in found:
        assert theme.label == "・".join(theme.terms)
        # Words a person reads: nouns of two characters or more, no kanji feature.
        assert all(len(w) > 1 and not w.startswith("字:") for w in theme.terms)
        assert all(is_noun(w) for w in theme.terms), theme.terms


def test_labels_are_written_forms_and_shared_words():
    space = build_space(PROPOSALS, mode="lexical", embedder=None)
    words = label_words(space, [0, 2])  # the two 子ども食堂 proposals
    assert words[:2] == ("食堂", "子ども") or set(words[:2]) == {"食堂", "子ども"}
    assert "子供" not in words


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clusters_are_scipy_average_linkage(seed):
    rng = np.random.default_rng(seed)
    n = 40
    points = rng.normal(size=(n, 3)) + np.repeat(rng.normal(scale=4, size=(5, 3)), 8, axis=0)
    similarity = -np.linalg.norm(points[:, None] - points[None], axis=2)
    a, b = np.triu_indices(n, 1)
    shift = similarity[a, b].min()  # clusters() reads missing pairs as 0: keep every score above it
    graph = PairGraph(n, a, b, similarity[a, b] - shift, similarity[a, b], None)
    tree = linkage(squareform(-similarity, checks=False), "average")
    for threshold in np.quantile(similarity[a, b] - shift, [0.5, 0.8, 0.9, 0.97]):
        expected = fcluster(tree, -(threshold + shift), "distance")
        mine = clusters(graph, float(threshold))
        assert sorted(sorted(m) for m in mine) == sorted(
            sorted(np.flatnonzero(expected == c).tolist()) for c in set(expected.tolist())
        )


def test_sparse_graph_still_partitions():
    space = build_space(_dev(), mode="lexical", embedder=None)
    found = themes_in(space, graph=pair_graph(space, max_neighbours=3))
    _partition_ok(found, list(space.ids))


def test_higher_threshold_makes_more_themes():
    dev = _dev()
    space = build_space(dev, mode="lexical", embedder=None)
    graph = pair_graph(space)
    counts = [len(themes_in(space, threshold=t, graph=graph)) for t in (1.0, 2.0, 4.0, 100.0)]
    assert counts == sorted(counts) and counts[-1] == len(dev)


def test_shared_programs():
    def result(pid, programs):
        return MatchResult(pid, False, [ProgramMatch(p, p, "", 1.0) for p in programs])

    found = [Theme(1, "", ("a", "b", "c")), Theme(2, "", ("d",))]
    results = {"a": result("a", ["P1", "P2", "P3"]), "b": result("b", ["P2", "P1", "P9"]), "c": result("c", ["P7", "P8", "P2"]),
               "d": result("d", ["P5", "P6", "P4"])}
    assert shared_programs(found, results) == {1: ["P2", "P1"], 2: ["P5", "P6", "P4"]}


@pytest.fixture
def proposals_file(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(p.__dict__, ensure_ascii=False) for p in PROPOSALS) + "\n", encoding="utf-8")
    return path


def test_cli_jsonl_shape(proposals_file):
    result = CliRunner().invoke(cli, ["themes", "--mode", "lexical", "--proposals", str(proposals_file)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert all(set(line) == {"theme", "label", "proposal_ids"} for line in lines)
    assert sorted(pid for line in lines for pid in line["proposal_ids"]) == sorted(p.id for p in PROPOSALS)
    assert isinstance(lines[0]["theme"], int) and isinstance(lines[0]["label"], str)


def test_cli_table_and_programs(proposals_file):
    table = CliRunner().invoke(cli, ["themes", "--mode", "lexical", "--proposals", str(proposals_file), "--format", "table"])
    assert table.exit_code == 0, table.output
    assert "■ テーマ 1" in table.output and "子ども食堂を始めたい" in table.output
    programs = CliRunner().invoke(
        cli, ["themes", "--mode", "lexical", "--proposals", str(proposals_file), "--programs", "corpus/data/programs.csv"]
    )
    assert programs.exit_code == 0, programs.output
    lines = [json.loads(line) for line in programs.output.splitlines()]
    assert all(set(line) == {"theme", "label", "proposal_ids", "programs"} for line in lines)
    bousai = next(line for line in lines if "bousai-1" in line["proposal_ids"])
    assert bousai["programs"][0] == "KN-B2001"  # the 防災講座 of the support office


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "missing.jsonl: file not found"),
        (b"", "missing.jsonl: file is empty"),
        (b'{"id": "1", "body": "ok"}\n{not json\n', "missing.jsonl:2: invalid JSON"),
        ('{"id": "a", "body": "防災"}\n{"id": "a", "body": "広報"}\n'.encode(), "ids must be unique: 'a' repeats"),
    ],
)
def test_cli_bad_file_exits_1_with_one_line(tmp_path, content, message):
    path = tmp_path / "missing.jsonl"
    if content is not None:
        path.write_bytes(content)
    result = CliRunner().invoke(cli, ["themes", "--mode", "lexical", "--proposals", str(path)])
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_proposal_sent_twice_keeps_its_theme_with_its_partners():
    # The office's proposals of tests/test_theme_edits.py (three groups on 子ども食堂, two on 防災), the first sent twice.
    texts = [ProposalText("abcdefgh"[n], title, body) for n, (title, body, _) in enumerate(THEME_TEXTS)]
    copy = ProposalText("a2", texts[0].title, texts[0].body)
    grouped = {frozenset(t.proposal_ids) for t in themes([*texts, copy], mode="lexical", embedder=None)}
    # The copy is the first's nearest by far; left out of its spread, it does not push b and c away.
    assert {"a", "a2", "b", "c"} in grouped and {"d", "e"} in grouped
