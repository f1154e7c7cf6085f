"""Likely duplicates: two proposal texts that are the same text retyped or
lightly edited, not another project of the same group (issue 15). Pure: the
app adds its own condition (the same organisation or e-mail address,
office.related) and never merges on its own.
"""

from __future__ import annotations

import difflib
import unicodedata

# The likely-duplicate rule: the midpoints between duplicates and the rest on
# the calibration half of tests/data/duplicates.jsonl (benchmarks/tune_themes.py
# --duplicates); a pair less than half alike in its characters is another text.
DUPLICATE_LIKENESS = 0.79
DUPLICATE_LIKENESS_WITH_SCORE = 0.5
DUPLICATE_SCORE = 0.75


def comparable_text(text: str) -> str:
    """What two texts are compared on: NFKC, lower case, without spaces,
    punctuation or symbols (a retyped text differs in those first).

    >>> comparable_text("ＮＰＯ法人 「みどり」、です。")
    'npo法人みどりです'
    """
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PZSC")


def text_likeness(a_text: str, b_text: str) -> float:
    """Character-level likeness of two texts, 0–1: difflib's ratio on
    :func:`comparable_text` (2 × matched characters / both lengths)."""
    a, b = comparable_text(a_text), comparable_text(b_text)
    if not a or not b:
        return 1.0 if a == b else 0.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def likely_duplicate(a_text: str, b_text: str, score: float | None = None) -> bool:
    """Whether two proposal texts (title and body, :func:`matcher.text.proposal_text`)
    are very close: the same text retyped or lightly edited, not another
    project of the same group.

    ``score`` is the pair's TF-IDF cosine (:attr:`matcher.related.Related.lexical`), if
    known: a text reordered or edited in places keeps it high while its
    characters drift. The rule: likeness ≥ DUPLICATE_LIKENESS, or likeness
    ≥ DUPLICATE_LIKENESS_WITH_SCORE with ``score`` ≥ DUPLICATE_SCORE. Whether
    the two come from the same organisation or address is the caller's
    question, not this one's.
    """
    likeness = text_likeness(a_text, b_text)
    if likeness >= DUPLICATE_LIKENESS:
        return True
    return score is not None and likeness >= DUPLICATE_LIKENESS_WITH_SCORE and score >= DUPLICATE_SCORE
