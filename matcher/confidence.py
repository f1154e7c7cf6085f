"""How sure the matcher is of one proposal's ranking: 高 / 中 / 低, and
whether the first two suggestions are a toss-up between departments.

* ``low`` (低) is the index's ``no_match`` rule (該当なしの可能性): the best
  scores over all programs say that probably nothing in the catalogue fits.
* ``high`` (高): the first suggestion is right with a probability of at least
  ``high_from`` under a logistic model over the best scores and the margin
  between the first two programs.
* ``medium`` (中): the rest.
* ``ambiguous``: the first two programs belong to different departments and
  lie within ``ambiguity_margin`` of each other, so the coordinator should
  weigh both (Rasa's ambiguity threshold is the pattern).

Every constant was chosen on the dev split only by
``benchmarks/tune_confidence.py``; docs/quality.md reports the reliability of
each level on dev and on the held-out splits. Pure: no database, no Flask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from matcher.results import MatchResult

LEVELS = ("high", "medium", "low")


@dataclass(frozen=True)
class Calibration:
    """The ``high`` model and the ambiguity margin of one index mode.

    ``weights`` multiply the signals of :func:`signals`: (best TF-IDF cosine,
    margin) in lexical mode, (best TF-IDF cosine, best e5 cosine, margin) in
    semantic mode, where the margin is on the scale of the matches' ``score``.
    """

    intercept: float
    weights: tuple[float, ...]
    high_from: float
    ambiguity_margin: float

    def first_right(self, values: tuple[float, ...]) -> float:
        """Probability that the first suggestion is right."""
        z = self.intercept + sum(w * v for w, v in zip(self.weights, values, strict=True))
        return 1.0 / (1.0 + math.exp(-z))


# benchmarks/tune_confidence.py, dev split: the lowest probability at which
# the first suggestion was right ≥ 97 % of the time with ≤ 3 % of the
# out-of-scope proposals (a margin under the bar of 95 % / 5 %), covering as
# many in-scope proposals as possible.
LEXICAL = Calibration(intercept=-0.7718, weights=(8.4543, 4.4604), high_from=0.6042, ambiguity_margin=0.0077)
SEMANTIC = Calibration(intercept=-2.7209, weights=(4.1013, 1.0803, 1.0169), high_from=0.7705, ambiguity_margin=0.9341)


def margin(result: MatchResult) -> float:
    """Score of the first program minus that of the second (the first's own
    score when there is no second)."""
    if not result.matches:
        return 0.0
    if len(result.matches) == 1:
        return abs(result.matches[0].score)
    return result.matches[0].score - result.matches[1].score


def signals(result: MatchResult) -> tuple[float, ...]:
    """What the ``high`` model reads, by the result's mode (an e5 score
    present means semantic)."""
    lexical = result.best_lexical or 0.0
    if result.best_semantic is None:
        return (lexical, margin(result))
    return (lexical, result.best_semantic, margin(result))


def calibration_for(result: MatchResult) -> Calibration:
    return LEXICAL if result.best_semantic is None else SEMANTIC


def is_ambiguous(result: MatchResult, calibration: Calibration) -> bool:
    """The first two programs belong to different departments and are
    within the calibrated margin."""
    if len(result.matches) < 2:
        return False
    first, second = result.matches[0], result.matches[1]
    return first.department != second.department and margin(result) < calibration.ambiguity_margin


def level(result: MatchResult, calibration: Calibration) -> str:
    """``"high"``, ``"medium"`` or ``"low"`` (``low`` exactly when ``no_match``)."""
    if result.no_match or not result.matches:
        return "low"
    if calibration.first_right(signals(result)) >= calibration.high_from:
        return "high"
    return "medium"


def assess(result: MatchResult, calibration: Calibration | None = None) -> MatchResult:
    """``result`` with its ``confidence`` and ``ambiguous`` set.

    >>> from matcher.results import ProgramMatch
    >>> r = MatchResult("p", no_match=False, best_lexical=0.6, matches=[
    ...     ProgramMatch("a", "防災講座", "防災課", 0.6), ProgramMatch("b", "広報", "広報課", 0.1)])
    >>> assessed = assess(r)
    >>> assessed.confidence, assessed.ambiguous
    ('high', False)
    >>> assess(MatchResult("q", no_match=True)).confidence
    'low'
    """
    calibration = calibration or calibration_for(result)
    return replace(
        result,
        no_match=result.no_match or not result.matches,
        confidence=level(result, calibration),
        ambiguous=is_ambiguous(result, calibration),
    )
