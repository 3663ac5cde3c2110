"""Text from elsewhere (a station, a file) made safe to print: control characters shown, not run."""

from __future__ import annotations

import unicodedata

__all__ = ["visible"]

# C0/C1 controls (ESC starts terminal sequences that clear the screen or retitle the window),
# format characters (bidi overrides reorder what follows, zero-width ones hide it), line and
# paragraph separators
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp"})


def visible(text: str) -> str:
    """``text`` with every control or format character written as its escape (``\\x1b``,
    ``\\u202e``): a station's category can no longer clear a technician's terminal or hide
    lines of a report."""
    if text.isprintable():
        return text
    return "".join(ascii(ch)[1:-1] if unicodedata.category(ch) in _HIDDEN else ch for ch in text)
