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
