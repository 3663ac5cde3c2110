"""Database URLs as messages and logs may show them: the password replaced, wherever it was."""

from __future__ import annotations

import re

__all__ = ["error_line", "redacted"]

# scheme://user:password@host: up to the token's last @ (a password may hold an unescaped @ or /)
_USERINFO = re.compile(r"(://[^:/@\s'\"]*):\S*@")
# libpq also takes the password as a query parameter (?password=…) or a keyword (password=…)
_PASSWORD_PARAM = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)")


def redacted(text: str) -> str:
    """``postgresql://pesee:secret@host/db`` as ``postgresql://pesee:***@host/db``; also in a
    longer message (an error that quotes the URL)."""
    return _PASSWORD_PARAM.sub(r"\1***", _USERINFO.sub(r"\1:***@", text))


def error_line(exc: BaseException) -> str:
    """An error as one line without a password (psycopg's messages run over two lines)."""
    return redacted(" ".join(str(exc).split()))
