"""Household profile tags: scanned at the counter (kept at ingest) and imported by the office."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from .dialect import Dialect
from .privacy import Privacy

__all__ = ["Profiles", "profile_tags"]


def profile_tags(data: str | None) -> list[str]:
    """The profile tags a record's ``data`` carries (``{"profile": "tag" | ["tag", …]}``)."""
    if not data or '"profile"' not in data:
        return []
    try:
        body = json.loads(data)
    except ValueError:
        return []
    tags = body.get("profile") if isinstance(body, dict) else None
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list):
        return []
    return [t.strip() for t in tags if isinstance(t, str) and t.strip()]


class Profiles:
    """The ``profiles`` (imported) and ``scanned_profiles`` (from records) tables."""

    def __init__(self, db: Dialect, privacy: Privacy) -> None:
        self.db = db
        self.privacy = privacy

    def keep_scanned(self, pairs: Sequence[tuple[str, str]]) -> None:
        """(stored code, tag) pairs seen in records, inside the caller's transaction."""
        if pairs:
            self.db.many(
                "INSERT INTO scanned_profiles (beneficiary, tag) VALUES (?, ?) "
                "ON CONFLICT (beneficiary, tag) DO NOTHING",
                pairs,
            )

    def fill_scanned(self) -> None:
        """Once per database (schema step 9): the profile tags of records stored before."""
        done = "SELECT value FROM ledger_meta WHERE name = 'scanned_profiles'"
        if self.db.exec(done):
            return

        def body() -> None:
            if self.db.exec(done):
                return
            pairs = {
                (str(code), tag)
                for code, data in self.db.exec(
                    "SELECT DISTINCT beneficiary, data FROM records WHERE data LIKE ? "
                    "AND beneficiary IS NOT NULL",
                    ('%"profile"%',),
                )
                for tag in profile_tags(data)
            }
            self.keep_scanned(sorted(pairs))
            self.db.exec(
                "INSERT INTO ledger_meta (name, value) VALUES ('scanned_profiles', 'filled') "
                "ON CONFLICT (name) DO NOTHING"
            )

        self.db.atomic(body)

    def import_profiles(
        self, profiles: Iterable[tuple[str, Sequence[str]]], *, replace_all: bool = False
    ) -> int:
        """Attach tags to beneficiary codes as shown (stored pseudonymised when the ledger
        pseudonymises), in one transaction: a code's tags are replaced by the new ones, and
        ``replace_all`` empties the table first. Returns the (code, tag) pairs stored."""
        self.privacy.require_writable()
        pairs: list[tuple[str, str]] = []
        codes: list[str] = []
        for code, tags in profiles:
            stored = str(self.privacy.pseudonym(code))
            codes.append(stored)
            pairs += [(stored, tag) for tag in dict.fromkeys(tags)]

        def body() -> None:
            if replace_all:
                self.db.exec("DELETE FROM profiles")
            else:
                self.db.many("DELETE FROM profiles WHERE beneficiary = ?", [(c,) for c in codes])
            if pairs:
                self.db.many("INSERT INTO profiles (beneficiary, tag) VALUES (?, ?)", pairs)

        self.db.atomic(body)
        return len(pairs)
