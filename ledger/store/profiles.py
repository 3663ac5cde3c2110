"""Household profile tags: scanned at the counter (kept at ingest) and imported by the office.

A profile is a fact with a date (docs/reports.md): an imported tag holds from ``since`` to
``until`` (days, both included; '' = no bound), a scanned one from the first record carrying it
(found at report time: ledger/store/queries.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from .dialect import Dialect
from .privacy import Privacy

__all__ = ["ProfileLine", "Profiles", "merge_spans", "profile_tags"]

# what an import gives for one code: (code, tags) or (code, tags, since, until), days as
# 'YYYY-MM-DD' ('' or None: no bound)
ProfileLine = tuple[str, Sequence[str]] | tuple[str, Sequence[str], str | None, str | None]


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


def merge_spans(spans: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Spans (since, until) of one tag, days both included, '' no bound, merged where they
    overlap or touch: a weighing is in a tag's row once, whatever the file repeats."""
    ordered = sorted(spans, key=lambda s: s[0])  # '' (always) first
    out: list[tuple[str, str]] = []
    for since, until in ordered:
        if out:
            last_since, last_until = out[-1]
            if last_until == "" or since == "" or since <= _next_day(last_until):
                end = "" if "" in (last_until, until) else max(last_until, until)
                out[-1] = (last_since, end)
                continue
        out.append((since, until))
    return out


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


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

    def import_profiles(self, profiles: Iterable[ProfileLine], *, replace_all: bool = False) -> int:
        """Attach tags to beneficiary codes as shown (stored pseudonymised when the ledger
        pseudonymises), in one transaction: a code's tags are replaced by the file's (every
        line of that code), and ``replace_all`` empties the table first. A line may give the
        days its tags hold (``since``, ``until``, both included). Returns the spans stored."""
        self.privacy.require_writable()
        spans: dict[tuple[str, str], list[tuple[str, str]]] = {}
        codes: list[str] = []
        for line in profiles:
            code, tags = line[0], line[1]
            since, until = (str(line[2] or ""), str(line[3] or "")) if len(line) > 2 else ("", "")
            if since and until and until < since:
                raise ValueError(f"{code}: until {until} is before since {since}")
            stored = str(self.privacy.pseudonym(code))
            codes.append(stored)
            for tag in dict.fromkeys(tags):
                spans.setdefault((stored, tag), []).append((since, until))
        rows = [
            (code, tag, since, until)
            for (code, tag), given in spans.items()
            for since, until in merge_spans(given)
        ]

        def body() -> None:
            if replace_all:
                self.db.exec("DELETE FROM profiles")
            else:
                self.db.many(
                    "DELETE FROM profiles WHERE beneficiary = ?",
                    [(c,) for c in dict.fromkeys(codes)],
                )
            if rows:
                self.db.many(
                    "INSERT INTO profiles (beneficiary, tag, since, until) VALUES (?, ?, ?, ?)",
                    rows,
                )

        self.db.atomic(body)
        return len(rows)
