"""The matcher's 確からしさ (matcher.confidence): levels, the ambiguity
notice, and constants that the dev-only tuning script reproduces."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from corpus import load_programs
from matcher import confidence
from matcher.index import ProgramIndex, ProposalText
from matcher.results import MatchResult, ProgramMatch

ROOT = Path(__file__).resolve().parents[1]


def _result(first: float, second: float, *, departments=("防災課", "広報課"), no_match=False, semantic=None):
    return MatchResult(
        "p", no_match=no_match, best_lexical=first, best_semantic=semantic,
        matches=[ProgramMatch("a", "A", departments[0], first), ProgramMatch("b", "B", departments[1], second)],
    )


def test_low_is_exactly_no_match():
    assert confidence.assess(_result(0.5, 0.1, no_match=True)).confidence == "low"
    assert confidence.assess(_result(0.5, 0.1)).confidence == "high"
    assert confidence.assess(MatchResult("e", no_match=True, error="text contains control characters")).confidence == "low"


def test_a_weak_or_close_first_suggestion_is_medium():
    # Lexical: a low best score with a small lead is not sure, though not no_match.
    assert confidence.assess(_result(0.08, 0.07)).confidence == "medium"
    assert confidence.LEXICAL.first_right((0.08, 0.01)) < confidence.LEXICAL.high_from
    assert confidence.LEXICAL.first_right((0.5, 0.4)) > confidence.LEXICAL.high_from


def test_ambiguous_only_between_departments_within_the_margin():
    close = confidence.LEXICAL.ambiguity_margin / 2
    assert confidence.assess(_result(0.20, 0.20 - close)).ambiguous
    assert not confidence.assess(_result(0.20, 0.20 - close, departments=("防災課", "防災課"))).ambiguous
    assert not confidence.assess(_result(0.20, 0.20 - 2 * confidence.LEXICAL.ambiguity_margin)).ambiguous


def test_semantic_results_read_the_semantic_calibration():
    result = _result(0.3, 0.2, semantic=0.88)
    assert confidence.calibration_for(result) is confidence.SEMANTIC
    assert len(confidence.signals(result)) == len(confidence.SEMANTIC.weights) == 3
    assert len(confidence.signals(_result(0.3, 0.2))) == len(confidence.LEXICAL.weights) == 2


def test_every_result_of_an_index_is_assessed():
    index = ProgramIndex(top_k=3).fit(load_programs())
    results = index.match([
        ProposalText("on", "防災講座", "地域の防災訓練と避難所の運営について学ぶ講座を開きます。"),
        ProposalText("off", "ドッグラン", "河川敷に犬が走れるドッグランを設けたい。"),
    ])
    assert all(r.confidence in confidence.LEVELS for r in results)
    assert all((r.confidence == "low") == r.no_match for r in results)
    assert results[1].confidence == "low" and results[0].confidence != "low"
    assert {"confidence", "ambiguous"} <= set(results[0].to_dict())


def _tuning():
    spec = importlib.util.spec_from_file_location("tune_confidence", ROOT / "benchmarks" / "tune_confidence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lexical_constants_are_what_the_dev_tuning_chooses():
    tuning = _tuning()
    threshold, calibration = tuning.calibrate("lexical", load_programs(), tuning.load(tuning.DEV))
    assert threshold == pytest.approx(ProgramIndex().no_match_threshold, abs=1e-4)
    assert calibration == confidence.LEXICAL
