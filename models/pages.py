"""Pages of rows and the LIKE pattern: what every list query shares."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, select


@dataclass
class Page:
    rows: list[Any]
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))


def clamp_page(page: int, total: int, page_size: int) -> int:
    """``page`` within 1 … the last page of ``total`` rows (an empty list has one page)."""
    return min(max(1, page), max(1, math.ceil(total / page_size)))


def paginate(
    *, session: Session, model: Any, conditions: Sequence[Any], order_by: Sequence[Any], page: int, page_size: int,
) -> Page:
    """One page of ``model`` rows matching ``conditions``, with the total: two queries."""
    total = int(session.exec(select(func.count()).select_from(model).where(*conditions)).one())
    page = clamp_page(page, total, page_size)
    query = select(model).where(*conditions).order_by(*order_by).offset((page - 1) * page_size).limit(page_size)
    return Page(list(session.exec(query)), page, page_size, total)


def like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own % and _ escaped (ESCAPE '\\\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains_exactly(session: Session, text: Any, part: str) -> ColumnElement[bool]:
    """SQL condition: ``part`` occurs in ``text`` exactly, letter case included
    (SQLite's LIKE ignores ASCII case; PostgreSQL's does not)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.strpos(text, part) > 0
    return func.instr(text, part) > 0
