"""The rules for large uploads: the spreadsheet pages accept
MAX_UPLOAD_LENGTH, every other request MAX_CONTENT_LENGTH; and every import
(page or command) reads at most IMPORT_MAX_ROWS rows and IMPORT_MAX_BYTES
once expanded (:class:`corpus.files.ReadLimits`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app, request

from corpus.files import ReadLimits

# The pages that take a city's spreadsheet.
UPLOAD_ENDPOINTS = frozenset({"programs.upload", "departments.upload"})


def allow_upload_size() -> None:
    """A before_request function, registered before CSRFProtect reads the form."""
    if request.endpoint in UPLOAD_ENDPOINTS:
        request.max_content_length = current_app.config["MAX_UPLOAD_LENGTH"]


def read_limits(config: Mapping[str, Any] | None = None) -> ReadLimits:
    """The readers' limits of these settings (default: the current app's)."""
    config = current_app.config if config is None else config
    return ReadLimits(max_rows=config["IMPORT_MAX_ROWS"], max_bytes=config["IMPORT_MAX_BYTES"])
