"""Read the tabular files a city office already has: CSV (UTF-8, UTF-8 with BOM
or Shift_JIS/cp932), XLSX and JSONL, as numbered rows of strings.

Rows are streamed, never the whole file at once, and every reader is bounded
by :class:`ReadLimits`: a file over its rows or its expanded size is refused
with a :class:`FileFormatError` before it is parsed (the size) or as soon as
the first row too many is read (the rows), so memory stays bounded whatever
the file (a 156 KB XLSX can expand to a million rows).
"""

from __future__ import annotations

import codecs
import csv
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

# Excel on Japanese Windows saves "CSV" as cp932; newer Excel offers UTF-8 with BOM.
CSV_ENCODINGS = ("utf-8-sig", "cp932")
_CHUNK = 1 << 20


class FileFormatError(ValueError):
    """A file that cannot be read at all, or a row that is not valid.

    ``str()`` is one readable line naming the file and, where there is one,
    the line: ``programs.csv:12: 事業名 is empty``.
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None, *, ja: str | None = None):
        self.path = str(path)
        self.line = line
        self.message = message
        # The same in Japanese, for the coordinator's upload page (the command
        # line keeps one English line).
        self.ja = ja or message
        where = f"{Path(self.path).name}:{line}" if line else Path(self.path).name
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class ReadLimits:
    """How much of one file a reader takes.

    ``max_rows``: rows under the header, blank ones included (a sheet of a
    million empty rows costs time as well). ``max_bytes``: the file once
    expanded: a CSV's or JSONL's own size (its decoded text has at most as
    many characters as it has bytes in UTF-8 or cp932), an XLSX's XML parts
    as the zip's directory states them (zipfile never inflates a part past
    its stated size). The defaults are those of the web app's settings
    IMPORT_MAX_ROWS and IMPORT_MAX_BYTES, which web.settings takes from here.
    """

    # A city's catalogue is a few hundred programs; 20,000 rows is a whole
    # prefecture's, and keeps a validated file's records near 50 MB.
    max_rows: int = 20_000
    # 20,000 realistic rows are a 13 MB CSV and about 30 MB of XLSX XML.
    max_bytes: int = 40_000_000


DEFAULT_LIMITS = ReadLimits()


@dataclass(frozen=True)
class Row:
    """One record of a file: its 1-based line (CSV/JSONL) or sheet row (XLSX)."""

    line: int
    values: dict[str, object]


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    raise FileFormatError(
        path, f"unknown file type {suffix!r} (use .csv, .xlsx or .jsonl)",
        ja=f"この種類のファイル（{suffix or '拡張子なし'}）は読めません。CSV・XLSX・JSONL で保存してください",
    )


def _size_text(size: int) -> str:
    """53,002,861 → 53.0 MB; 5,000 → 5 KB (a coordinator reads sizes as Explorer shows them)."""
    return f"{size / 1_000_000:,.1f} MB" if size >= 1_000_000 else f"{max(size, 1_000) // 1_000:,} KB"


def too_large(path: str | Path, size: int, limits: ReadLimits, *, expanded: bool) -> FileFormatError:
    """The one message of a file over ``max_bytes`` (``expanded``: an XLSX's XML)."""
    what = "expands to" if expanded else "is"
    where = "展開すると" if expanded else ""
    return FileFormatError(
        path, f"file {what} {size:,} bytes, over the limit of {limits.max_bytes:,}",
        ja=f"ファイルが大きすぎます（{where}{_size_text(size)}、上限 {_size_text(limits.max_bytes)}）。"
           "ファイルを分けて取り込んでください",
    )


def too_many_rows(path: str | Path, limits: ReadLimits) -> FileFormatError:
    return FileFormatError(
        path, f"more than {limits.max_rows:,} rows under the header, over the limit",
        ja=f"行数が上限の{limits.max_rows:,}行を超えています。ファイルを分けて取り込んでください",
    )


def _decodes(path: Path, encoding: str) -> bool:
    """Whether the whole file decodes as ``encoding``: read in chunks, kept nowhere."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def csv_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM), else cp932, checked on the whole file
    before any row is read (a bad byte on the last line refuses the file, it
    never cuts it)."""
    for encoding in CSV_ENCODINGS:
        if _decodes(path, encoding):
            return encoding
    raise FileFormatError(
        path, "cannot decode: the file is neither UTF-8 nor Shift_JIS (cp932)",
        ja="文字コードが UTF-8 でも Shift_JIS でもないため読めません",
    )


def read_rows(path: str | Path, limits: ReadLimits = DEFAULT_LIMITS) -> Iterator[Row]:
    """Yield the records of a CSV, XLSX or JSONL file, at most ``limits.max_rows``.

    Raises :class:`FileFormatError` for a missing, empty, undecodable or too
    large file (checked before the first row), and at the first row over the limit.
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(path, "file not found")
    if path.is_dir():
        raise FileFormatError(path, "is a directory, not a file")
    kind = detect_format(path)
    size = path.stat().st_size
    if size == 0:
        raise FileFormatError(path, "file is empty", ja="ファイルが空です")
    if kind == "xlsx":
        yield from _read_xlsx(path, limits)
        return
    if size > limits.max_bytes:
        raise too_large(path, size, limits, expanded=False)
    if kind == "jsonl":
        yield from _read_jsonl(path, limits)
    else:
        yield from _read_csv(path, limits)


def _records(path: Path, reader: csv.DictReader[str], limits: ReadLimits) -> Iterator[dict[str, Any]]:
    """The reader's records, at most ``max_rows``; a cell over the csv module's
    limit (131,072 characters) is a FileFormatError naming its line, not a csv.Error."""
    count = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileFormatError(path, f"unreadable CSV ({exc})", reader.line_num + 1,
                                  ja="セルが長すぎるか、引用符（\"）の対応が崩れています") from None
        count += 1
        if count > limits.max_rows:
            raise too_many_rows(path, limits)
        yield record


def _delimiter(stream: IO[str]) -> str:
    """Tab when the first 4,096 characters hold more tabs than commas (a TSV)."""
    sample = stream.read(4096)
    stream.seek(0)
    return "\t" if sample.count("\t") > sample.count(",") else ","


def _read_csv(path: Path, limits: ReadLimits) -> Iterator[Row]:
    encoding = csv_encoding(path)
    with path.open(encoding=encoding, newline="") as stream:
        reader = csv.DictReader(stream, delimiter=_delimiter(stream))
        try:
            fieldnames = reader.fieldnames
        except csv.Error as exc:
            raise FileFormatError(path, f"unreadable CSV ({exc})", 1,
                                  ja="セルが長すぎるか、引用符（\"）の対応が崩れています") from None
        if not fieldnames or not any(h and h.strip() for h in fieldnames):
            raise FileFormatError(path, "no header row", ja="見出しの行がありません")
        reader.fieldnames = [(h or "").strip() for h in fieldnames]
        seen_any = False
        for record in _records(path, reader, limits):
            seen_any = True
            values = {k: v for k, v in record.items() if k}
            if not any((v or "").strip() for v in values.values() if isinstance(v, str)):
                continue  # blank line inside the sheet
            yield Row(reader.line_num, values)
    if not seen_any:
        raise FileFormatError(path, "no data rows under the header", ja="見出しの下にデータの行がありません")


def _read_jsonl(path: Path, limits: ReadLimits) -> Iterator[Row]:
    if not _decodes(path, "utf-8-sig"):
        raise FileFormatError(path, "cannot decode: JSONL must be UTF-8", ja="JSONL は UTF-8 で保存してください")
    seen_any = False
    with path.open(encoding="utf-8-sig", newline="") as stream:
        for number, line in enumerate(stream, start=1):
            if number > limits.max_rows:
                raise too_many_rows(path, limits)
            if not line.strip():
                continue
            seen_any = True
            yield Row(number, _json_object(path, line, number))
    if not seen_any:
        raise FileFormatError(path, "no records", ja="データの行がありません")


def _json_object(path: Path, line: str, number: int) -> dict[str, object]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise FileFormatError(path, f"invalid JSON ({exc.msg})", number, ja="JSON として読めません") from exc
    except RecursionError:  # [[[[... a line nested deeper than the parser's stack
        raise FileFormatError(path, "invalid JSON (nested too deeply)", number, ja="JSON の入れ子が深すぎます") from None
    if not isinstance(value, dict):
        raise FileFormatError(path, "each line must be a JSON object", number, ja="各行は JSON オブジェクトにしてください")
    return value


def check_xlsx_size(path: Path, limits: ReadLimits) -> None:
    """Refuse an XLSX whose parts would expand past ``max_bytes``, from the
    zip's directory alone, before openpyxl reads a byte of XML (a zip bomb:
    deflate packs a million identical rows into 156 KB)."""
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FileFormatError(
            path, f"cannot open as XLSX ({type(exc).__name__})", ja="Excel（.xlsx）のファイルとして開けません"
        ) from exc
    if expanded > limits.max_bytes:
        raise too_large(path, expanded, limits, expanded=True)


def _cell_text(cell: object) -> object:
    return "" if cell is None else cell if isinstance(cell, str) else str(cell)


def _read_xlsx(path: Path, limits: ReadLimits) -> Iterator[Row]:
    check_xlsx_size(path, limits)
    from openpyxl import load_workbook  # imported late: only XLSX needs it

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several unrelated types for a bad file
        raise FileFormatError(
            path, f"cannot open as XLSX ({type(exc).__name__})", ja="Excel（.xlsx）のファイルとして開けません"
        ) from exc
    rows = workbook.worksheets[0].iter_rows(values_only=True)
    try:
        yield from _sheet_rows(path, rows, limits)
    finally:
        # The sheet's reader first: it holds a member of the zip open, and the
        # zip's file stays open (a ResourceWarning later) until every member is closed.
        rows.close()
        workbook.close()


def _sheet_rows(path: Path, rows: Iterator[tuple[object, ...]], limits: ReadLimits) -> Iterator[Row]:
    """The sheet's records under its first non-blank row (the header); the
    blank rows openpyxl yields for a gap count against ``max_rows`` too."""
    header: list[str] | None = None
    header_row = 0
    seen_any = False
    for number, cells in enumerate(rows, start=1):
        blank = not any(c not in (None, "") for c in cells)
        if header is None:
            if not blank:
                header = [str(c).strip() if c is not None else "" for c in cells]
                header_row = number
            elif number > limits.max_rows:
                break  # a sheet of nothing but blank rows: no header
            continue
        if number - header_row > limits.max_rows:
            raise too_many_rows(path, limits)
        if blank:
            continue
        seen_any = True
        yield Row(number, {h: _cell_text(c) for h, c in zip(header, cells, strict=False) if h})
    if header is None:
        raise FileFormatError(path, "no header row", ja="見出しの行がありません")
    if not seen_any:
        raise FileFormatError(path, "no data rows under the header", ja="見出しの下にデータの行がありません")
