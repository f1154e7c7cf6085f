"""The city's programs (協働事業の候補) as typed records, from the bundled seed
corpus or from a city's own file."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

from corpus.files import DEFAULT_LIMITS, FileFormatError, ReadLimits, Row, read_rows
from corpus.text import unquote_formula

BUNDLED_PROGRAMS = Path(__file__).parent / "data" / "programs.csv"

# One table from each header a city might use to the record's field. The plan's
# own Japanese headers first, then the English keys of the JSONL/API format.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "ID", "事業番号", "番号"),
    "name": ("name", "事業名"),
    "purpose": ("purpose", "目的"),
    "activities": ("activities", "取り組み内容", "取組内容", "事業内容"),
    "department": ("department", "担当課"),
    "policy": ("policy", "施策名", "施策"),
    "budget": ("budget", "予算"),
    "budget_thousand_yen": ("budget_thousand_yen", "予算（千円）", "予算(千円)"),
    "fiscal_year": ("fiscal_year", "年度"),
    "section": ("section", "大項目"),
    "subsection": ("subsection", "中項目"),
    "policy_number": ("policy_number", "施策番号"),
    "source": ("source", "出典"),
    # Not in the city's plan: the coordinator's everyday words for a program
    # (see ProgramRecord.keywords).
    "keywords": ("keywords", "キーワード", "言い換え"),
}

# The Japanese name of each field, for messages.
FIELD_NAMES_JA = {key: aliases[1] if len(aliases) > 1 else aliases[0] for key, aliases in HEADER_ALIASES.items()}

# 担当課 cells such as "市民協働課 環境課" name several departments.
_DEPARTMENT_SPLIT = re.compile(r"[\s、,，・/／]+")
_AMOUNT = re.compile(r"([0-9][0-9,]*)\s*千円")
MAX_FIELD_CHARS = 20_000
# The coordinator's keywords of one program: a few dozen expressions, not a
# document (a long text would outweigh the program's own words).
MAX_KEYWORDS_CHARS = 2_000
# Fields stored in narrower columns (models.tables.ProgramBase): refused by
# line, never cut and never a database error.
COLUMN_CHARS = {"id": 100, "department": 500, "policy_number": 50, "keywords": MAX_KEYWORDS_CHARS}
BUDGET_MAX_THOUSAND_YEN = 100_000_000  # 千円: a city program is not a hundred billion yen


@dataclass(frozen=True)
class ProgramRecord:
    """One program of the catalogue, with the fields of the collaboration plan."""

    id: str
    name: str  # 事業名
    purpose: str = ""  # 目的
    activities: str = ""  # 取り組み内容
    department: str = ""  # 担当課 as written; see ``departments``
    policy: str = ""  # 施策名
    budget: str = ""  # 予算 as written
    budget_thousand_yen: int | None = None
    fiscal_year: int | None = None
    section: str = ""
    subsection: str = ""
    policy_number: str = ""
    source: str = ""
    departments: tuple[str, ...] = field(default=())
    # キーワード: the words citizens use instead of the city's ones (言い換え),
    # written by the coordinator, never part of the city's plan. None: the
    # file has no such column (an import then keeps the stored keywords).
    keywords: str | None = None

    def text_fields(self) -> dict[str, str]:
        """The fields the matcher reads, by matcher field name."""
        return {
            "name": self.name,
            "purpose": self.purpose,
            "activities": self.activities,
            "policy": self.policy,
            "keywords": self.keywords or "",
        }


def split_departments(cell: str) -> tuple[str, ...]:
    """``"市民協働課 環境課"`` → ``("市民協働課", "環境課")``."""
    return tuple(part for part in _DEPARTMENT_SPLIT.split(cell.strip()) if part)


def parse_budget_thousand_yen(text: str) -> int | None:
    """The stated budget in 千円, or None when none is stated.

    Several amounts in one cell (区交付金 + 区長報酬 + ...) are added up. A cell
    that states income (収入) is not a budget and gives None.
    """
    text = unicodedata.normalize("NFKC", text or "").strip()
    if not text or text.startswith("収入"):
        return None
    amounts = [int(m.replace(",", "")) for m in _AMOUNT.findall(text)]
    return sum(amounts) if amounts else None


def _canonical(values: dict[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, aliases in HEADER_ALIASES.items():
        for alias in aliases:
            if alias in values and values[alias] is not None:
                # A cell of our own export comes back without its formula quote.
                out[key] = unquote_formula(str(values[alias]).strip())
                break
    return out


def _int_or_none(text: str) -> int | None:
    text = unicodedata.normalize("NFKC", text).replace(",", "").strip()
    if not text:
        return None
    try:
        return int(float(text))
    except ValueError:
        return None


# A 年度 outside this range is a typo (3000, -5), never a catalogue: the row is
# refused by name instead of deactivating the whole current catalogue.
FISCAL_YEARS = (2000, 2100)
_ERAS = {"令和": 2018, "R": 2018, "平成": 1988, "H": 1988}
_YEAR = re.compile(r"^(令和|平成|R|H)?(\d{1,4}|元)(?:年度|年)?$")


def parse_fiscal_year(text: str) -> int:
    """A 年度 as written: 2026, 2026年度, 令和8, R8, 令和8年度, 平成20, H20, 令和元.

    >>> [parse_fiscal_year(t) for t in ("2026", "令和8", "R8", "令和8年度", "H20", "令和元", "２０２６")]
    [2026, 2026, 2026, 2026, 2008, 2019, 2026]
    """
    found = _YEAR.match(unicodedata.normalize("NFKC", text).strip().upper())
    if found is None:
        raise ValueError(f"年度「{text}」が読めません（例：2026、令和8、R8）")
    era, number = found.group(1), found.group(2)
    value = 1 if number == "元" else int(number)
    year = value + _ERAS[era] if era else value
    if not FISCAL_YEARS[0] <= year <= FISCAL_YEARS[1]:
        raise ValueError(f"年度「{text}」は{FISCAL_YEARS[0]}年度から{FISCAL_YEARS[1]}年度の間で指定してください")
    return year


def fiscal_year_label(year: int) -> str:
    """「令和8年度（2026年度）」: how a coordinator says it, with the western year.

    >>> fiscal_year_label(2026), fiscal_year_label(2008)
    ('令和8年度（2026年度）', '平成20年度（2008年度）')
    """
    era = f"令和{year - 2018}" if year >= 2019 else f"平成{year - 1988}"
    return f"{era}年度（{year}年度）"


def _row_fiscal_year(path: str | Path, row: Row, text: str) -> int | None:
    """The row's 年度 cell, None when empty; a FileFormatError naming the line otherwise."""
    if not text:
        return None
    try:
        return parse_fiscal_year(text)
    except ValueError as exc:
        raise FileFormatError(path, f"年度 {text!r} is not a fiscal year in {FISCAL_YEARS[0]}-{FISCAL_YEARS[1]}",
                              row.line, ja=str(exc)) from None


def stable_id(policy: str, name: str) -> str:
    """An id for a city file without one: the same row always gets the same id."""
    digest = hashlib.sha1(f"{policy}\x1f{name}".encode()).hexdigest()[:12]
    return f"auto-{digest}"


def record_from_row(path: str | Path, row: Row, fiscal_year: int | None = None) -> ProgramRecord:
    """Validate one row; raises :class:`FileFormatError` naming its line."""
    values = _canonical(row.values)
    name = values.get("name", "")
    if not name:
        raise FileFormatError(path, "事業名 (name) is empty", row.line, ja="事業名が空です")
    if not (values.get("purpose") or values.get("activities")):
        raise FileFormatError(
            path, "目的 (purpose) and 取り組み内容 (activities) are both empty", row.line,
            ja="目的と取り組み内容がどちらも空です",
        )
    for key, text in values.items():
        limit = COLUMN_CHARS.get(key, MAX_FIELD_CHARS)
        if len(text) > limit:
            raise FileFormatError(
                path, f"{key} is longer than {limit} characters", row.line,
                ja=f"{FIELD_NAMES_JA[key]}が{limit}文字を超えています",
            )
        if _has_control_characters(text):
            raise FileFormatError(
                path, f"{key} contains control characters", row.line, ja=f"{FIELD_NAMES_JA[key]}に制御文字があります"
            )
    budget = values.get("budget", "")
    if "budget_thousand_yen" in values:
        budget_number = _int_or_none(values["budget_thousand_yen"])
    else:
        budget_number = parse_budget_thousand_yen(budget)
    if budget_number is not None and not 0 <= budget_number <= BUDGET_MAX_THOUSAND_YEN:
        raise FileFormatError(path, f"予算（千円） {budget_number} is outside 0-{BUDGET_MAX_THOUSAND_YEN}", row.line,
                              ja=f"予算（千円）は0から{BUDGET_MAX_THOUSAND_YEN:,}の間で指定してください")
    year = fiscal_year if fiscal_year is not None else _row_fiscal_year(path, row, values.get("fiscal_year", ""))
    department = values.get("department", "")
    return ProgramRecord(
        id=values.get("id") or stable_id(values.get("policy", ""), name),
        name=name,
        purpose=values.get("purpose", ""),
        activities=values.get("activities", ""),
        department=department,
        policy=values.get("policy", ""),
        budget=budget,
        budget_thousand_yen=budget_number,
        fiscal_year=year,
        section=values.get("section", ""),
        subsection=values.get("subsection", ""),
        policy_number=values.get("policy_number", ""),
        source=values.get("source", ""),
        departments=split_departments(department),
        keywords=values.get("keywords"),
    )


@dataclass
class LoadResult:
    programs: list[ProgramRecord]
    errors: list[FileFormatError]
    defaulted: bool = False  # some rows took default_fiscal_year


def load_programs_report(
    path: str | Path, *, fiscal_year: int | None = None, default_fiscal_year: int | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> LoadResult:
    """Read every row, keeping the valid records and the error of each bad row.

    ``fiscal_year`` sets every row's 年度; otherwise the file's column, and for a
    row without one ``default_fiscal_year`` (the importer passes the current
    年度), which ``LoadResult.defaulted`` then reports. The rows are streamed
    (each kept only as its record) within ``limits`` (:func:`corpus.read_rows`).
    """
    programs: list[ProgramRecord] = []
    errors: list[FileFormatError] = []
    seen: dict[str, int] = {}
    keys: set[str] = set()
    defaulted = False
    for row in read_rows(path, limits):
        keys.update(row.values)
        try:
            record = record_from_row(path, row, fiscal_year)
        except FileFormatError as exc:
            # Without its traceback: the frames would keep every bad row's cells alive.
            errors.append(exc.with_traceback(None))
            continue
        if record.id in seen:
            errors.append(
                FileFormatError(
                    path, f"id {record.id!r} repeats line {seen[record.id]}", row.line,
                    ja=f"id「{record.id}」が{seen[record.id]}行目と重複しています",
                )
            )
            continue
        seen[record.id] = row.line
        if record.fiscal_year is None and default_fiscal_year is not None:
            record = replace(record, fiscal_year=default_fiscal_year)
            defaulted = True
        programs.append(record)
    # A missing column is the file's one error, whatever its rows said.
    _check_columns(path, keys)
    return LoadResult(programs, errors, defaulted)


def _check_columns(path: str | Path, keys: set[str]) -> None:
    canonical = {key for key, aliases in HEADER_ALIASES.items() if keys & set(aliases)}
    if "name" not in canonical:
        raise FileFormatError(path, "missing required column 事業名 (or name)", ja="「事業名」の列がありません")
    if not canonical & {"purpose", "activities"}:
        raise FileFormatError(
            path, "missing required column 目的 or 取り組み内容 (purpose or activities)",
            ja="「目的」か「取り組み内容」の列が必要です",
        )


def load_programs(
    path: str | Path | None = None,
    *,
    fiscal_year: int | None = None,
    skip_invalid: bool = False,
) -> list[ProgramRecord]:
    """Load programs from ``path``, or the bundled seed corpus when None.

    A file with any invalid row raises :class:`InvalidRowsError` listing every
    bad line, unless ``skip_invalid`` is true.
    """
    result = load_programs_report(path or BUNDLED_PROGRAMS, fiscal_year=fiscal_year)
    if result.errors and not skip_invalid:
        raise InvalidRowsError(result.errors)
    return result.programs


def load_keywords(path: str | Path, limits: ReadLimits = DEFAULT_LIMITS) -> dict[str, str]:
    """Program id → キーワード, from a file of two columns (id, キーワード) in
    any format of :func:`corpus.read_rows` (within ``limits``); raises
    :class:`InvalidRowsError` naming every bad line."""
    rows = list(read_rows(path, limits))
    keys: set[str] = set()
    for row in rows:
        keys.update(row.values)
    for column, label in (("id", "id"), ("keywords", "キーワード (or keywords)")):
        if not keys & set(HEADER_ALIASES[column]):
            raise FileFormatError(path, f"missing required column {label}", ja=f"「{label.split()[0]}」の列がありません")
    out: dict[str, str] = {}
    errors: list[FileFormatError] = []
    for row in rows:
        values = _canonical(row.values)
        program_id, text = values.get("id", ""), values.get("keywords", "")
        if not program_id:
            errors.append(FileFormatError(path, "id is empty", row.line, ja="id が空です"))
        elif program_id in out:
            errors.append(FileFormatError(path, f"id {program_id!r} repeats", row.line, ja=f"id「{program_id}」が重複しています"))
        elif len(text) > MAX_KEYWORDS_CHARS:
            errors.append(FileFormatError(
                path, f"キーワード is longer than {MAX_KEYWORDS_CHARS} characters", row.line,
                ja=f"キーワードが{MAX_KEYWORDS_CHARS}文字を超えています",
            ))
        elif _has_control_characters(text):
            errors.append(FileFormatError(
                path, "キーワード contains control characters", row.line, ja="キーワードに制御文字があります"
            ))
        else:
            out[program_id] = text
    if errors:
        raise InvalidRowsError(errors)
    return out


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in text)


def with_keywords(programs: list[ProgramRecord], keywords: dict[str, str]) -> list[ProgramRecord]:
    """The programs with the keywords of ``keywords`` (by program id); an id
    that names no program is an error (a typo would otherwise go unnoticed)."""
    unknown = sorted(set(keywords) - {p.id for p in programs})
    if unknown:
        raise ValueError(f"keywords for unknown program ids: {', '.join(unknown[:10])}")
    return [replace(p, keywords=keywords[p.id]) if p.id in keywords else p for p in programs]


class InvalidRowsError(ValueError):
    """Several bad rows at once; ``str()`` names every one, one per line."""

    def __init__(self, errors: list[FileFormatError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))
