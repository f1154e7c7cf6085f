"""The catalogue search as the coordinator types it: the words as written
first, then by their dictionary form, so こども finds 子ども and 子供 and
ぼうさい finds 防災 (the tokenizer's lemmas; UniDic reads kana and kanji
spellings of a word to one lemma)."""

from __future__ import annotations

from functools import lru_cache

from sqlmodel import Session, col, select

from matcher.tokenize import tokenize
from models.pages import Page, paginate
from models.review import SEARCHED_COLUMNS, search_programs
from models.tables import Program


@lru_cache(maxsize=20_000)
def _lemmas(text: str) -> frozenset[str]:
    # Cached by the program's text: a changed program is tokenized again, an
    # unchanged catalogue only once per process.
    return frozenset(tokenize(text))


def _text(program: Program) -> str:
    return "\n".join(str(getattr(program, name) or "") for name in SEARCHED_COLUMNS)


def find_programs(
    *, session: Session, q: str = "", active_only: bool = False, page: int = 1, page_size: int = 25,
) -> Page:
    """``models.review.search_programs``; when the words as typed find nothing,
    the programs whose text holds every lemma of ``q``, in the same order."""
    found = search_programs(session=session, q=q, active_only=active_only, page=page, page_size=page_size)
    wanted = frozenset(tokenize(q)) if q.strip() and not found.total else frozenset()
    if not wanted:
        return found
    query = select(Program)
    if active_only:
        query = query.where(col(Program.active).is_(True))
    ids = [p.id for p in session.exec(query) if wanted <= _lemmas(_text(p))]
    order = [col(Program.active).desc(), col(Program.fiscal_year).desc(), col(Program.id)]
    return paginate(session=session, model=Program, conditions=[col(Program.id).in_(ids)], order_by=order,
                    page=page, page_size=page_size)
