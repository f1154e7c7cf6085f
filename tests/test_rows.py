"""The decision-aware row policy (office.rows) on plain values, no database:
rejected pairs never written, accepted pairs always kept at their place,
``is_new`` against the previous publication, the outcome as the matcher said."""

from __future__ import annotations

from matcher import MatchResult, ProgramMatch, ProposalText, Term
from office.rows import (
    STORED_TERMS,
    DecisionContext,
    group,
    kept_rows,
    outcome_row,
    rows_for_result,
)


def match(program_id: int, score: float, n_terms: int = 1) -> ProgramMatch:
    terms = [Term(f"語{i}", score / n_terms, "activities") for i in range(n_terms)]
    return ProgramMatch(str(program_id), f"事業{program_id}", "市民協働課", score, terms)


RANKING = [match(p, s) for p, s in ((11, 0.5), (12, 0.4), (13, 0.3), (14, 0.2), (15, 0.1))]


def result(matches: list[ProgramMatch], proposal_id: int = 1, **fields: object) -> MatchResult:
    return MatchResult(str(proposal_id), False, matches, **fields)  # type: ignore[arg-type]


def never() -> list[ProgramMatch]:
    raise AssertionError("the full ranking is read only for a missing accepted pair")


def test_top_k_without_decisions_is_the_ranking():
    rows = rows_for_result(result(RANKING), top_k=3, context=DecisionContext(), full_ranking=never)
    assert [(r["program_id"], r["rank"], r["kept_by_decision"]) for r in rows] == [
        (11, 1, False), (12, 2, False), (13, 3, False)]
    assert all(r["is_new"] for r in rows)
    assert rows[0]["terms"] == [["語0", 0.5, "activities"]]


def test_rejected_pair_is_skipped_and_the_next_rank_fills_in():
    context = DecisionContext(rejected={1: {11}}, previous={1: {12}})
    rows = rows_for_result(result(RANKING), top_k=3, context=context, full_ranking=never)
    assert [(r["program_id"], r["rank"]) for r in rows] == [(12, 1), (13, 2), (14, 3)]
    assert [r["is_new"] for r in rows] == [False, True, True]


def test_accepted_pair_outside_the_top_k_is_kept_at_its_place():
    context = DecisionContext(rejected={1: {12}}, accepted={1: {14, 99}})
    rows = rows_for_result(result(RANKING[:2]), top_k=1, context=context, full_ranking=lambda: RANKING)
    # 14 is third once the rejected 12 is left out; 99 is no longer ranked: score 0 after all.
    assert [(r["program_id"], r["rank"], r["kept_by_decision"], r["score"]) for r in rows] == [
        (11, 1, False, 0.5), (14, 3, True, 0.2), (99, 5, True, 0.0)]
    assert rows[2]["terms"] == []


def test_a_proposal_that_could_not_be_read_keeps_no_accepted_rows():
    context = DecisionContext(accepted={1: {11}})
    bad = result([], error="body is empty")
    assert rows_for_result(bad, top_k=3, context=context, full_ranking=never) == []


def test_stored_terms_are_capped():
    many = [match(11, 0.5, n_terms=STORED_TERMS + 5)]
    rows = rows_for_result(result(many), top_k=1, context=DecisionContext(), full_ranking=never)
    assert len(rows[0]["terms"]) == STORED_TERMS


def test_kept_rows_sort_by_place():
    rows = kept_rows(1, {15, 13}, set(), set(), RANKING)
    assert [(r["program_id"], r["rank"]) for r in rows] == [(13, 3), (15, 5)]


def test_depth_and_deeper_ranking_follow_the_rejected_pairs():
    context = DecisionContext(rejected={1: {11, 12}})
    assert context.depth(1, 3, 30) == 5 and context.depth(1, 3, 4) == 4 and context.depth(2, 3, 30) == 3
    assert context.needs_deeper(result(RANKING[:3]), 3)
    assert not context.needs_deeper(result(RANKING[2:5]), 3)
    assert not context.needs_deeper(result(RANKING[:2]), 3)  # fewer programs than k: nothing below


def test_exemplars_are_the_accepted_proposals_texts():
    texts = [ProposalText("1", "防災", "防災講座"), ProposalText("2", "子育て", "親子サロン")]
    exemplars = DecisionContext(accepted={1: {12, 11}, 3: {13}}).exemplars(texts)
    assert [(e.program_id, e.proposal.id) for e in exemplars] == [("11", "1"), ("12", "1")]


def test_outcome_row_is_what_the_matcher_concluded():
    done = MatchResult("7", True, RANKING, best_lexical=0.05, best_semantic=0.81, best_exemplar=None,
                       confidence="low", ambiguous=True)
    assert outcome_row(done) == {"proposal_id": 7, "best_lexical": 0.05, "best_semantic": 0.81,
                                 "best_exemplar": None, "no_match": True, "confidence": "low", "ambiguous": True}


def test_group_collects_pairs_per_proposal():
    assert group([(1, 11), (1, 12), (2, 11)]) == {1: {11, 12}, 2: {11}}
