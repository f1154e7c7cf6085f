"""Text rules shared by every layer that reads what people type or import.

The one definition of a control character: Unicode category Cc (C0, DEL and
the C1 range such as U+0085) except tab, line feed and carriage return, which
are ordinary in multi-line fields. Forms, imports and the matcher all ask here.
"""

from __future__ import annotations

import re

# Category Cc is exactly U+0000-U+001F and U+007F-U+009F (tests/test_corpus.py
# checks this against unicodedata); tab, LF and CR are left out.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a control character other than tab and newlines.

    >>> has_control_characters("防災\\n訓練"), has_control_characters("a\\x85b"), has_control_characters("\\x00")
    (False, True, True)
    """
    return _CONTROL.search(text) is not None


def blank_control_characters(text: str) -> str:
    """``text`` with each control character (as above) replaced by a space."""
    return _CONTROL.sub(" ", text)


# A spreadsheet cell starting with one of these runs as a formula in Excel
# (=HYPERLINK(...), +, -, @, and tab / CR that some readers strip first).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe_text(text: str) -> str:
    """``text`` for a CSV or XLSX cell: a leading ``'`` when Excel would run it.

    >>> formula_safe_text('=HYPERLINK("http://x","y")'), formula_safe_text("防災")
    ('\\'=HYPERLINK("http://x","y")', '防災')
    """
    return "'" + text if text[:1] in FORMULA_STARTS else text


def unquote_formula(text: str) -> str:
    """The inverse for a cell read back: an exported file imports unchanged.

    >>> unquote_formula("'=1+1"), unquote_formula("'quoted")
    ('=1+1', "'quoted")
    """
    return text[1:] if text[:1] == "'" and text[1:2] in FORMULA_STARTS else text
