"""The one rule for large uploads: the spreadsheet pages accept
MAX_UPLOAD_LENGTH, every other request MAX_CONTENT_LENGTH."""

from __future__ import annotations

from flask import current_app, request

# The pages that take a city's spreadsheet.
UPLOAD_ENDPOINTS = frozenset({"programs.upload", "departments.upload"})


def allow_upload_size() -> None:
    """A before_request function, registered before CSRFProtect reads the form."""
    if request.endpoint in UPLOAD_ENDPOINTS:
        request.max_content_length = current_app.config["MAX_UPLOAD_LENGTH"]
