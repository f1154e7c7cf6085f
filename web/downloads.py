"""File downloads for Excel: a Japanese file name (RFC 6266 ``filename*``, with
an ASCII fallback for old clients) and the right type for CSV and XLSX."""

from __future__ import annotations

from urllib.parse import quote

from flask import Response

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download(content: str | bytes, *, name: str, fallback: str) -> Response:
    """``name`` is what the coordinator sees (組み合わせと判断.csv), ``fallback`` plain ASCII."""
    kind = "text/csv; charset=utf-8" if fallback.endswith(".csv") else XLSX
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"
    return Response(content, content_type=kind, headers={"Content-Disposition": disposition})
