"""Time, in one place: stored times are UTC; people read Japan time (JST) and
count in fiscal years (年度, April to March)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

JST = timezone(timedelta(hours=9), "JST")


def utcnow() -> datetime:
    """Now, time-zone aware in UTC (SQLModel's datetime columns require it)."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored time as aware UTC: SQLite gives naive UTC back, PostgreSQL aware."""
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with Z, as the API and the JSON exports write times.

    >>> iso_utc(datetime(2026, 4, 1, 9, 0, tzinfo=JST))
    '2026-04-01T00:00:00Z'
    """
    return as_utc(moment).replace(tzinfo=None).isoformat() + "Z"


def to_jst(moment: datetime) -> datetime:
    """A stored time in Japan time."""
    return as_utc(moment).astimezone(JST)


def fiscal_year(moment: datetime) -> int:
    """The Japanese fiscal year (年度, April to March) of a stored time.

    >>> fiscal_year(datetime(2027, 3, 31, 14, 59, tzinfo=UTC)), fiscal_year(datetime(2027, 3, 31, 15, 0))
    (2026, 2027)
    """
    local = to_jst(moment)
    return local.year if local.month >= 4 else local.year - 1
