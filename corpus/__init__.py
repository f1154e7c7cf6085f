"""The city's program data (from the seeds, word for word) and the readers for a
city's own files."""

from corpus.files import FileFormatError, Row, read_rows
from corpus.programs import (
    BUNDLED_PROGRAMS,
    InvalidRowsError,
    ProgramRecord,
    load_keywords,
    load_programs,
    load_programs_report,
    split_departments,
    with_keywords,
)

__all__ = [
    "BUNDLED_PROGRAMS",
    "FileFormatError",
    "InvalidRowsError",
    "ProgramRecord",
    "Row",
    "load_keywords",
    "load_programs",
    "load_programs_report",
    "read_rows",
    "split_departments",
    "with_keywords",
]
