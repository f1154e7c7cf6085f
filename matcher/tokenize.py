"""Japanese tokenizer for administrative prose, on fugashi + unidic-lite.

Each pitfall of unidic on the seed text is handled on purpose:

* The plan's markers (新) (拡) (継) are stripped before parsing: unidic tags 新
  as 記号, gives 拡 the lemma ヒロム and 継 the lemma 継ぎ, so they would
  become spurious shared terms between every new or extended program.
* Text is NFKC-normalized first: half-width ``NPO`` is unknown while
  full-width ``ＮＰＯ`` is known, and ``ﾎｰﾑﾍﾟｰｼﾞ`` is one unknown token until
  it becomes ``ホームページ``.
* Lemmas carry an English gloss for loanwords (``インターンシップ-internship``)
  and a tag for counters (``円-助数詞``): the suffix is cut.
* Unknown words have no lemma: the surface is used.
* Numbers and amounts (``2,000千円``, ``21年度``) are removed before parsing:
  unidic splits them into ``2 / , / 000`` noise.
* Lemmas are dictionary spellings the NPO may never have written (子供 for
  子ども, 為 for ため, 合わせる for 併せ): :func:`tokenize_with_forms` also
  keeps, per text, each term as written (unidic's orthBase, the spelling of
  the text in its uninflected form: 子ども, ため, 併せる) and marks function
  words (形式名詞 such as 事 / 為, 複合辞 verbs such as 因る / 対する), so that
  an explanation shows a person the proposal's own words and only words.
* unidic's short units cut compounds (``市民活動総合保険制度``,
  ``ホーム + ページ``): adjacent content nouns are also emitted joined as a
  bigram (``市民活動``, ``保険制度``, ``ホームページ``), so a proposal naming the
  compound shares more weight with the program naming it.

The parse uses one node-format string for the whole text, about 2-3 times
faster than reading ``word.feature`` per token (see docs/benchmarks.md).
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

import fugashi

from corpus.text import blank_control_characters

# One line per token: pos1, pos2, lemma, surface. -U formats unknown words,
# which have no lemma field. -F is ignored unless -O '' is also given. POS
# first, so the loop below can reject function words before splitting further.
# parse_tokens and matcher.evaluate read this four-field format.
_NODE_FORMAT = r"-O '' -F '%f[0]\t%f[1]\t%f[7]\t%m\n' -U '%f[0]\t%f[1]\t\t%m\n' -E ''"
# The tokenizer's format: the same four fields and the orthBase (f[10], the
# text's spelling uninflected), the surface again for an unknown word.
_FORMS_FORMAT = r"-O '' -F '%f[0]\t%f[1]\t%f[7]\t%m\t%f[10]\n' -U '%f[0]\t%f[1]\t\t%m\t%m\n' -E ''"

# (新)(拡)(継) with optional spaces, ASCII or full-width parentheses.
PLAN_MARKER = re.compile(r"[(（]\s*[新拡継]\s*[)）]")
# Digits with separators and the unit or counter right after them. Run after NFKC.
_NUMBER = re.compile(
    r"[0-9][0-9,.]*\s*(?:千円|万円|億円|円|ヶ所|か所|箇所|カ所|人|名|件|回|年度|年|月|日|時間|歳|%|％)?"
)

_CONTENT_POS = frozenset({"名詞", "動詞", "形容詞", "形状詞"})
# No other unidic pos1 (代名詞 連体詞 副詞 接続詞 感動詞 助動詞 助詞 接頭辞
# 接尾辞 記号 補助記号 空白) starts with one of these characters.
_CONTENT_FIRST = frozenset(pos[0] for pos in _CONTENT_POS)
# pos2 values that are not content: 数詞 (numbers), 非自立可能 (する, なる, ある, いる),
# 助数詞可能 stays (it includes 年, 回 used as nouns).
_SKIP_POS2 = frozenset({"数詞", "非自立可能"})
# Content by POS but grammar in use, so never shown to a person as a shared
# word (they still count in the score): pos2 副詞可能 (ため, 今後, 場合, 一部)
# and 助動詞語幹 (よう, そう), and the lemmas of formal nouns and of verbs
# used as compound particles (による, に対して, に関する, に向けて, において).
_FUNCTION_POS2 = frozenset({"副詞可能", "助動詞語幹"})
FUNCTION_LEMMAS = frozenset({
    "事", "物", "為", "所", "訳", "筈", "方", "的", "時", "点", "際", "上", "中", "内", "等",
    "因る", "対する", "関する", "向ける", "於く", "通ずる", "通じる", "基づく", "伴う", "際する",
})


def normalize(text: str) -> str:
    """NFKC, markers and numbers removed, control characters blanked (those of
    :func:`corpus.text.has_control_characters`, C1 such as U+0085 included)."""
    text = unicodedata.normalize("NFKC", text)
    text = PLAN_MARKER.sub(" ", text)
    text = blank_control_characters(text)
    return _NUMBER.sub(" ", text)


@lru_cache(maxsize=1)
def _tagger() -> fugashi.Tagger:
    # One tagger per process; the dictionary is memory-mapped, so worker
    # processes share it. parse() returns the node-format string, never
    # per-token feature objects.
    return fugashi.Tagger(_NODE_FORMAT)


@lru_cache(maxsize=1)
def _forms_tagger() -> fugashi.Tagger:
    return fugashi.Tagger(_FORMS_FORMAT)


@dataclass(slots=True)
class WrittenForms:
    """How one text wrote its terms: ``written``, the spelling of each lemma
    the text writes otherwise (子供 → 子ども; the first occurrence wins);
    ``hidden``, its function words; ``compounds``, its joined noun bigrams."""

    written: dict[str, str] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)
    compounds: set[str] = field(default_factory=set)

    def display(self, lemma: str) -> str:
        """``lemma`` as this text wrote it."""
        return self.written.get(lemma, lemma)

    def then(self, later: WrittenForms, own_terms: Collection[str]) -> WrittenForms:
        """These forms of a text with the terms ``own_terms``, then
        ``later``'s for the lemmas that text does not hold (a proposal's
        title, then its body: the first spelling a reader meets wins)."""
        written = {lemma: w for lemma, w in later.written.items() if lemma not in own_terms}
        written.update(self.written)
        return WrittenForms(written, self.hidden | later.hidden, self.compounds | later.compounds)


def tokenize(text: str, *, compounds: bool = True) -> list[str]:
    """Content-word lemmas of ``text``, in order, plus joined noun bigrams.

    >>> tokenize("(新)市民活動総合保険制度の新設")
    ['市民', '活動', '市民活動', '総合', '活動総合', '保険', '総合保険', '制度', '保険制度', '新設']
    """
    return _scan(text, compounds, None)


def tokenize_with_forms(text: str, *, compounds: bool = True) -> tuple[list[str], WrittenForms]:
    """:func:`tokenize`, and how ``text`` wrote its terms.

    >>> tokens, forms = tokenize_with_forms("子どものために")
    >>> tokens, forms.display("子供"), sorted(forms.hidden)
    (['子供', '為'], '子ども', ['為'])
    """
    forms = WrittenForms()
    tokens = _scan(text, compounds, forms)
    # Every first spelling was kept while scanning (the first one wins);
    # only those that differ from the lemma are worth keeping per proposal.
    forms.written = {lemma: w for lemma, w in forms.written.items() if w != lemma}
    return tokens, forms


def _scan(text: str, compounds: bool, forms: WrittenForms | None) -> list[str]:
    # One loop for both: the hot path of every fit; ``forms`` only for proposals.
    parsed = _forms_tagger().parse(normalize(text))
    tokens: list[str] = []
    append = tokens.append
    previous_noun = previous_written = ""
    # Every lemma's first spelling, and whether it is a function word (a
    # property of the lemma: looked at once per lemma, not per token).
    first_spelling = forms.written if forms is not None else None
    hidden = forms.hidden if forms is not None else set()
    for line in parsed.split("\n"):
        # The first character tells a content POS (名詞 動詞 形容詞 形状詞)
        # from every other unidic pos1: most lines are rejected unsplit.
        if line[:1] not in _CONTENT_FIRST:
            previous_noun = ""
            continue
        pos1, pos2, lemma, surface, written = line.split("\t")
        if pos2 in _SKIP_POS2:
            previous_noun = ""
            continue
        if lemma:
            cut = lemma.find("-", 1)
            token = lemma[:cut] if cut > 0 else lemma
        elif surface.isalpha() and len(surface) > 1:
            token = surface  # unknown word such as NPO
        else:
            previous_noun = ""
            continue  # unknown symbol runs, single letters
        append(token)
        if first_spelling is not None and token not in first_spelling:
            first_spelling[token] = written
            if pos2 in _FUNCTION_POS2 or token in FUNCTION_LEMMAS:
                hidden.add(token)
        if pos1 == "名詞":
            if compounds and previous_noun:
                append(previous_noun + token)
                if forms is not None:
                    forms.compounds.add(previous_noun + token)
                    forms.written.setdefault(previous_noun + token, previous_written + written)
            previous_noun, previous_written = token, written
        else:
            previous_noun = ""
    return tokens


def clean_lemma(surface: str, lemma: str) -> str:
    """A lemma as the matcher uses it: the gloss cut (インターンシップ-internship →
    インターンシップ), the surface for an unknown word. ``tokenize`` inlines this."""
    if not lemma or lemma == "*":
        return surface
    cut = lemma.find("-", 1)
    return lemma[:cut] if cut > 0 else lemma


def parse_tokens(text: str) -> list[tuple[str, str, str]]:
    """(surface, lemma, pos1) of every token of ``text``, parsed as given (no
    normalization, nothing dropped): to find where a matcher term occurs in a
    text, e.g. to highlight it."""
    out = []
    for line in _tagger().parse(text).split("\n"):
        if line:
            pos1, _pos2, lemma, surface = line.split("\t")
            out.append((surface, clean_lemma(surface, lemma), pos1))
    return out


def analyze(text: str) -> str:
    """Tokens joined by spaces: the pre-split form handed to the vectorizer.

    A module-level function, so it pickles for worker processes.
    """
    return " ".join(tokenize(text))


def _tokenize_batch(args: tuple[list[str], bool]) -> list[list[str]]:
    texts, compounds = args
    return [tokenize(text, compounds=compounds) if text else [] for text in texts]


def _forms_batch(args: tuple[list[str], bool]) -> list[tuple[list[str], WrittenForms]]:
    texts, compounds = args
    return [tokenize_with_forms(text, compounds=compounds) if text else ([], WrittenForms()) for text in texts]


def tokenize_many(
    texts: list[str], *, compounds: bool = True, n_jobs: int = 1, batch_size: int = 256
) -> list[list[str]]:
    """:func:`tokenize` over many texts, in ``n_jobs`` processes when worth it.

    Tokenizing is 90 % of a fit, and MeCab holds the GIL, so threads do not
    help; worker processes share the memory-mapped dictionary.
    """
    return _map_batches(_tokenize_batch, texts, compounds, n_jobs, batch_size)


def tokenize_many_with_forms(
    texts: list[str], *, compounds: bool = True, n_jobs: int = 1, batch_size: int = 256
) -> list[tuple[list[str], WrittenForms]]:
    """:func:`tokenize_with_forms` over many texts, as :func:`tokenize_many`."""
    return _map_batches(_forms_batch, texts, compounds, n_jobs, batch_size)


_In = TypeVar("_In")
_Out = TypeVar("_Out")


def _map_batches(
    function: Callable[[tuple[list[str], bool]], list[_Out]],
    texts: list[str], compounds: bool, n_jobs: int, batch_size: int,
) -> list[_Out]:
    if n_jobs <= 1 or len(texts) < 4 * batch_size:
        return function((texts, compounds))
    batches = [(texts[i : i + batch_size], compounds) for i in range(0, len(texts), batch_size)]
    return [item for batch in parallel_map(function, batches, n_jobs) for item in batch]


def default_jobs(jobs: int) -> int:
    """The processes a batch command's ``--jobs`` asks for: ``jobs``, or for
    0 one per core up to 8 (each worker holds its share of a batch, and
    tokenizing gains little beyond that).

    >>> default_jobs(3), 1 <= default_jobs(0) <= 8
    (3, True)
    """
    return jobs or min(os.cpu_count() or 1, 8)


def parallel_map(function: Callable[[_In], _Out], items: list[_In], n_jobs: int) -> list[_Out]:
    """``function`` over ``items`` in ``n_jobs`` worker processes, in order.

    fork: workers start at once with the tagger and dictionary mapped. Only
    the batch commands ask for n_jobs > 1, never the threaded web app.
    ``function`` and the items must pickle (module-level functions).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context) as pool:
        return list(pool.map(function, items))
