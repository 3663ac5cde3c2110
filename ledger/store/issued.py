"""Beneficiary codes the office issued on cards: each one once, never a code already in use.

A code is stored as the records store codes (its keyed pseudonym in a pseudonymising ledger,
docs/privacy.md), so the office's list of issued codes holds no more than its records do. A
fresh code must be in neither this table nor the codes the ledger has seen: ``person_ids``
(every code ever ingested, kept while a record or an aggregate needs it), imported profiles and
households. The insert itself is ``ON CONFLICT DO NOTHING``: two offices issuing at the same
moment on one PostgreSQL cannot both get a code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .dialect import Dialect
from .models import utc_now
from .privacy import Privacy

__all__ = ["CodesExhausted", "IssuedCode", "IssuedCodes"]

TRIES = 500  # random draws for one fresh code before the pattern is called full


class CodesExhausted(Exception):
    """No fresh code found in :data:`TRIES` draws: the pattern's codes are (nearly) all used."""

    def __init__(self, issued: int) -> None:
        super().__init__(f"no fresh code after {issued} issued")
        self.issued = issued


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """One issued code's row (``code`` as stored: a pseudonym when pseudonymising)."""

    code: str
    referrer: str | None
    pattern: str | None
    issued_at: str
    printed: int
    printed_at: str


# the tables that hold codes the ledger has seen (every one indexed on its code first)
_SEEN = (
    "SELECT 1 FROM issued_codes WHERE code = ?",
    "SELECT 1 FROM person_ids WHERE beneficiary = ?",
    "SELECT 1 FROM profiles WHERE beneficiary = ?",
    "SELECT 1 FROM households WHERE beneficiary = ?",
)


class IssuedCodes:
    """The ``issued_codes`` table over one database."""

    def __init__(self, db: Dialect, privacy: Privacy) -> None:
        self.db = db
        self.privacy = privacy

    def _stored(self, code: str) -> str:
        stored = self.privacy.pseudonym(code)
        assert stored is not None
        return stored

    def known(self, code: str) -> bool:
        """``code`` was issued, or the ledger has seen it (records, profiles, households)."""
        stored = self._stored(code)
        return any(self.db.exec(sql, (stored,)) for sql in _SEEN)

    def issue(
        self, make: Callable[[], str], count: int, *, referrer: str | None, pattern: str
    ) -> list[str]:
        """``count`` fresh codes from ``make`` (a random code each call), recorded as issued in
        one transaction: all of them, or none (:class:`CodesExhausted`)."""

        def run() -> list[str]:
            now = utc_now()
            fresh: list[str] = []
            for _n in range(count):
                for _try in range(TRIES):
                    code = make()
                    if code in fresh or self.known(code):
                        continue
                    added = self.db.exec(
                        "INSERT INTO issued_codes "
                        "(code, referrer, pattern, issued_at, printed, printed_at) "
                        "VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (code) DO NOTHING RETURNING code",
                        (self._stored(code), referrer, pattern, now, now),
                    )
                    if added:
                        fresh.append(code)
                        break
                else:
                    raise CodesExhausted(len(fresh))
            return fresh

        return self.db.atomic(run)

    def get(self, code: str) -> IssuedCode | None:
        rows = self.db.fetch(
            "SELECT code, referrer, pattern, issued_at, printed, printed_at FROM issued_codes "
            "WHERE code = ?",
            (self._stored(code),),
        )
        return IssuedCode(**rows[0]) if rows else None

    def reprinted(self, code: str) -> IssuedCode | None:
        """Count one more printing of an issued ``code`` (a lost card); None if never issued."""
        stored = self._stored(code)

        def run() -> None:
            self.db.exec(
                "UPDATE issued_codes SET printed = printed + 1, printed_at = ? WHERE code = ?",
                (utc_now(), stored),
            )

        self.db.atomic(run)
        return self.get(code)

    def count(self, referrer: str | None = None) -> int:
        if referrer is None:
            rows = self.db.fetch("SELECT count(*) AS n FROM issued_codes")
        else:
            rows = self.db.fetch(
                "SELECT count(*) AS n FROM issued_codes WHERE referrer = ?", (referrer,)
            )
        return int(rows[0]["n"])
