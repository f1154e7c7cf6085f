"""Read the tabular files a city office already has: CSV (UTF-8, UTF-8 with BOM
or Shift_JIS/cp932), XLSX and JSONL, as numbered rows of strings."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Excel on Japanese Windows saves "CSV" as cp932; newer Excel offers UTF-8 with BOM.
CSV_ENCODINGS = ("utf-8-sig", "cp932")


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


def decode_csv_bytes(path: Path, data: bytes) -> str:
    """Decode CSV bytes as UTF-8 (with or without BOM), else cp932."""
    for encoding in CSV_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FileFormatError(
        path, "cannot decode: the file is neither UTF-8 nor Shift_JIS (cp932)",
        ja="文字コードが UTF-8 でも Shift_JIS でもないため読めません",
    )


def read_rows(path: str | Path) -> Iterator[Row]:
    """Yield the records of a CSV, XLSX or JSONL file.

    Raises :class:`FileFormatError` for a missing, empty or undecodable file.
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(path, "file not found")
    if path.is_dir():
        raise FileFormatError(path, "is a directory, not a file")
    kind = detect_format(path)
    if path.stat().st_size == 0:
        raise FileFormatError(path, "file is empty", ja="ファイルが空です")
    if kind == "xlsx":
        yield from _read_xlsx(path)
    elif kind == "jsonl":
        yield from _read_jsonl(path)
    else:
        yield from _read_csv(path)


def _records(path: Path, reader: csv.DictReader[str]) -> Iterator[dict[str, Any]]:
    """The reader's records; a cell over the csv module's limit (131,072
    characters) is a FileFormatError naming its line, not a csv.Error."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileFormatError(path, f"unreadable CSV ({exc})", reader.line_num + 1,
                                  ja="セルが長すぎるか、引用符（\"）の対応が崩れています") from None


def _read_csv(path: Path) -> Iterator[Row]:
    text = decode_csv_bytes(path, path.read_bytes())
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if not reader.fieldnames or not any(h and h.strip() for h in reader.fieldnames):
        raise FileFormatError(path, "no header row", ja="見出しの行がありません")
    reader.fieldnames = [(h or "").strip() for h in reader.fieldnames]
    seen_any = False
    for record in _records(path, reader):
        seen_any = True
        values = {k: v for k, v in record.items() if k}
        if not any((v or "").strip() for v in values.values() if isinstance(v, str)):
            continue  # blank line inside the sheet
        yield Row(reader.line_num, values)
    if not seen_any:
        raise FileFormatError(path, "no data rows under the header", ja="見出しの下にデータの行がありません")


def _read_jsonl(path: Path) -> Iterator[Row]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(path, "cannot decode: JSONL must be UTF-8", ja="JSONL は UTF-8 で保存してください") from exc
    seen_any = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FileFormatError(path, f"invalid JSON ({exc.msg})", number, ja="JSON として読めません") from exc
        if not isinstance(value, dict):
            raise FileFormatError(path, "each line must be a JSON object", number, ja="各行は JSON オブジェクトにしてください")
        seen_any = True
        yield Row(number, value)
    if not seen_any:
        raise FileFormatError(path, "no records", ja="データの行がありません")


def _read_xlsx(path: Path) -> Iterator[Row]:
    from openpyxl import load_workbook  # imported late: only XLSX needs it

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several unrelated types for a bad file
        raise FileFormatError(
            path, f"cannot open as XLSX ({type(exc).__name__})", ja="Excel（.xlsx）のファイルとして開けません"
        ) from exc
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header: list[str] | None = None
        seen_any = False
        for number, cells in enumerate(rows, start=1):
            if header is None:
                if not any(c not in (None, "") for c in cells):
                    continue
                header = [str(c).strip() if c is not None else "" for c in cells]
                continue
            if not any(c not in (None, "") for c in cells):
                continue
            seen_any = True
            values: dict[str, object] = {
                h: ("" if c is None else str(c) if not isinstance(c, str) else c)
                for h, c in zip(header, cells, strict=False)
                if h
            }
            yield Row(number, values)
        if header is None:
            raise FileFormatError(path, "no header row", ja="見出しの行がありません")
        if not seen_any:
            raise FileFormatError(path, "no data rows under the header", ja="見出しの下にデータの行がありません")
    finally:
        workbook.close()
