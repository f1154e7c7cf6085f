"""Pages of rows and the LIKE pattern: what every list query shares."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


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


def like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own % and _ escaped (ESCAPE '\\\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
