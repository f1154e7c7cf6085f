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
* unidic's short units cut compounds (``市民活動総合保険制度``,
  ``ホーム + ページ``): adjacent content nouns are also emitted joined as a
  bigram (``市民活動``, ``保険制度``, ``ホームページ``), so a proposal naming the
  compound shares more weight with the program naming it.

The parse uses one node-format string for the whole text, about 2-3 times
faster than reading ``word.feature`` per token (see docs/benchmarks.md).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import fugashi

from corpus.text import blank_control_characters

# One line per token: pos1, pos2, lemma, surface. -U formats unknown words,
# which have no lemma field. -F is ignored unless -O '' is also given. POS
# first, so the loop below can reject function words before splitting further.
_NODE_FORMAT = r"-O '' -F '%f[0]\t%f[1]\t%f[7]\t%m\n' -U '%f[0]\t%f[1]\t\t%m\n' -E ''"

# (新)(拡)(継) with optional spaces, ASCII or full-width parentheses.
PLAN_MARKER = re.compile(r"[(（]\s*[新拡継]\s*[)）]")
# Digits with separators and the unit or counter right after them. Run after NFKC.
_NUMBER = re.compile(
    r"[0-9][0-9,.]*\s*(?:千円|万円|億円|円|ヶ所|か所|箇所|カ所|人|名|件|回|年度|年|月|日|時間|歳|%|％)?"
)

_CONTENT_POS = frozenset({"名詞", "動詞", "形容詞", "形状詞"})
# pos2 values that are not content: 数詞 (numbers), 非自立可能 (する, なる, ある, いる),
# 助数詞可能 stays (it includes 年, 回 used as nouns).
_SKIP_POS2 = frozenset({"数詞", "非自立可能"})


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


def tokenize(text: str, *, compounds: bool = True) -> list[str]:
    """Content-word lemmas of ``text``, in order, plus joined noun bigrams.

    >>> tokenize("(新)市民活動総合保険制度の新設")
    ['市民', '活動', '市民活動', '総合', '活動総合', '保険', '総合保険', '制度', '保険制度', '新設']
    """
    parsed = _tagger().parse(normalize(text))
    tokens: list[str] = []
    append = tokens.append
    previous_noun = ""
    for line in parsed.split("\n"):
        pos1, _, rest = line.partition("\t")
        if pos1 not in _CONTENT_POS:
            previous_noun = ""
            continue
        pos2, lemma, surface = rest.split("\t")
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
        if pos1 == "名詞":
            if compounds and previous_noun:
                append(previous_noun + token)
            previous_noun = token
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


def tokenize_many(
    texts: list[str], *, compounds: bool = True, n_jobs: int = 1, batch_size: int = 256
) -> list[list[str]]:
    """:func:`tokenize` over many texts, in ``n_jobs`` processes when worth it.

    Tokenizing is 90 % of a fit, and MeCab holds the GIL, so threads do not
    help; worker processes share the memory-mapped dictionary.
    """
    if n_jobs <= 1 or len(texts) < 4 * batch_size:
        return _tokenize_batch((texts, compounds))
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    batches = [(texts[i : i + batch_size], compounds) for i in range(0, len(texts), batch_size)]
    # fork: workers start at once with the tagger and dictionary mapped.
    # Only the batch commands ask for n_jobs > 1, never the threaded web app.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context) as pool:
        out: list[list[str]] = []
        for batch in pool.map(_tokenize_batch, batches):
            out.extend(batch)
    return out
