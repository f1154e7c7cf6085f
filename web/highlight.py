"""Mark the matcher's shared terms in a proposal or program text with <mark>.

The matcher's terms are lemmas of the NFKC-normalized text (開催する for 開催し,
NPO for ＮＰＯ) and joined noun bigrams (市民活動), so a plain substring search
misses inflected verbs and full-width letters. The text is parsed with the
matcher's own tagger; each token whose lemma (or whose lemma joined with its
neighbour's) is a term is marked, and its span is mapped back to the
original characters. Everything else is escaped.

A suggestion's stored terms are read here too (:func:`stored_terms`, old rows
included): a person is shown the proposal's words (:func:`shown_terms`), and
the texts are marked by their lemmas (:func:`term_lemmas`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any, NamedTuple

from markupsafe import Markup, escape

from matcher.counting import KANJI_PREFIX
from matcher.explain import SHOWN_KINDS
from matcher.tokenize import FUNCTION_LEMMAS, parse_tokens


class StoredTerm(NamedTuple):
    """One stored shared term of a suggestion: as the proposal wrote it, its
    weight, the program's field, its kind and the matcher's lemma."""

    term: str
    weight: float
    field: str
    kind: str
    lemma: str


def stored_terms(rows: Any) -> list[StoredTerm]:
    """A suggestion's stored ``terms``: ``[term, weight, field, kind, lemma]``
    (kind and lemma left out when they are ``"word"`` and the term itself),
    or rows stored before kinds existed, ``[term, weight, field]`` with a
    lemma as term: their kind is inferred (a ``字:`` feature is a kanji, a
    function-word lemma a function word). Anything else is skipped."""
    out = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, list | tuple) or len(row) < 3 or not isinstance(row[0], str):
            continue
        term, weight, field = row[0], row[1], str(row[2])
        weight = float(weight) if isinstance(weight, int | float) else 0.0
        if len(row) > 3:
            lemma = str(row[4]) if len(row) > 4 else term
            out.append(StoredTerm(term, weight, field, str(row[3]), lemma))
        elif term.startswith(KANJI_PREFIX):
            out.append(StoredTerm(term[len(KANJI_PREFIX) :], weight, field, "kanji", term))
        else:
            kind = "function" if term in FUNCTION_LEMMAS else "keyword" if field == "keywords" else "word"
            out.append(StoredTerm(term, weight, field, kind, term))
    return out


def shown_terms(rows: Any) -> list[StoredTerm]:
    """The stored terms a person is shown: words, キーワード and compounds,
    never single-kanji features or function words."""
    return [t for t in stored_terms(rows) if t.kind in SHOWN_KINDS]


def term_lemmas(rows: Any) -> list[str]:
    """The lemmas of :func:`shown_terms`, what :func:`highlight` marks (a
    program may write 子供 where the proposal wrote 子ども)."""
    return [t.lemma for t in shown_terms(rows)]


def _normalized_with_map(text: str) -> tuple[str, list[int]]:
    """NFKC per character, with the original index of every normalized character."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        normalized = unicodedata.normalize("NFKC", ch) if not ch.isascii() else ch
        for n in normalized:
            # Half-width ｶﾞ is two characters whose NFKC forms compose into ガ.
            if chars and unicodedata.combining(n):
                composed = unicodedata.normalize("NFC", chars[-1] + n)
                if len(composed) == 1:
                    chars[-1] = composed
                    continue
            chars.append(n)
            origin.append(i)
    return "".join(chars), origin


def _tokens(normalized: str) -> list[tuple[int, int, str, str]]:
    """(start, end, lemma, pos1) of every token, with offsets into ``normalized``."""
    tokens: list[tuple[int, int, str, str]] = []
    cursor = 0
    for surface, lemma, pos1 in parse_tokens(normalized):
        if not surface:
            continue
        start = normalized.find(surface, cursor)
        if start < 0:
            continue  # the tagger rewrote the surface: leave it unmarked
        end = start + len(surface)
        tokens.append((start, end, lemma, pos1))
        cursor = end
    return tokens


def term_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Merged (start, end) character spans of ``text`` where a term occurs."""
    wanted = {unicodedata.normalize("NFKC", t) for t in terms if t}
    if not text or not wanted:
        return []
    normalized, origin = _normalized_with_map(text)
    tokens = _tokens(normalized)
    marked = [False] * len(tokens)
    for i, (_, _, lemma, pos1) in enumerate(tokens):
        if lemma in wanted:
            marked[i] = True
        if pos1 == "名詞" and i + 1 < len(tokens) and tokens[i + 1][3] == "名詞":
            if lemma + tokens[i + 1][2] in wanted:
                marked[i] = marked[i + 1] = True
    spans: list[tuple[int, int]] = []
    for (start, end, _, _), is_marked in zip(tokens, marked, strict=True):
        if not is_marked:
            continue
        # Up to the next character's origin, so a trailing ﾞ stays inside the mark.
        following = origin[end] if end < len(origin) else len(text)
        o_start, o_end = origin[start], max(origin[end - 1] + 1, following)
        if spans and spans[-1][1] >= o_start:
            spans[-1] = (spans[-1][0], o_end)
        else:
            spans.append((o_start, o_end))
    return spans


def highlight(text: str, terms: Iterable[str]) -> Markup:
    """``text`` escaped, with each occurrence of a shared term in <mark>."""
    out: list[str] = []
    cursor = 0
    for start, end in term_spans(text, terms):
        out.append(str(escape(text[cursor:start])))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        cursor = end
    out.append(str(escape(text[cursor:])))
    return Markup("".join(out))
