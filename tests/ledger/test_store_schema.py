"""The ledger's schema steps are frozen once released, and hold every field of the wire record."""

from __future__ import annotations

import hashlib
import sqlite3

from ledger.store import INSERT_COLUMNS, open_store
from ledger.store.migrations import LATEST, MIGRATIONS
from sync.wire import RECORD_FIELDS

# the SHA-256 (first 16 hex digits) of each released step, both dialects: a step is never
# edited once released (a database made by it would differ from one made today); a change to
# the schema is a new step, added here with its digest
RELEASED = {
    1: "306feb23732e10b7",
    2: "8c858512cb19e9fe",
    3: "12ae4845fff1b763",
    4: "720d95d44df5576e",
    5: "f6c1dbaebae13ca8",
    6: "8c26ede87c2eb108",
    7: "864095ed17a3d976",
    8: "94af058e32da95af",
    9: "61f8a1272733c6cc",
    10: "c44acd1f4dd9be73",
    11: "9b6dcc4809a09d63",
    12: "1481ec91dcc6bbd5",
    13: "77368d6cbaf81ce3",
    14: "d57d339bbd2c660c",
    15: "ca31399169bcb3c7",
    16: "b243881716259d18",
}


def _digest(version: int) -> str:
    step = MIGRATIONS[version - 1]
    text = "\n".join([*step.steps("sqlite"), "--", *step.steps("postgresql")])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_released_steps_are_frozen() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST + 1))
    assert {v: _digest(v) for v in RELEASED} == RELEASED


def test_the_first_step_does_not_follow_the_live_field_list() -> None:
    """Step 1 is text written once: a field added to the wire record later must come with a
    step of its own, not slip into the first one."""
    first = MIGRATIONS[0].steps("sqlite")[0]
    assert "pieces_computed INTEGER" in first  # written out, as released
    assert "{" not in first and "}" not in first


def test_every_wire_field_has_its_column(tmp_path: object, ledger_url: str) -> None:
    store = open_store(ledger_url)
    if store.dialect == "sqlite":
        db = sqlite3.connect(ledger_url)
        columns = {row[1] for row in db.execute("PRAGMA table_info(records)")}
        db.close()
    else:
        columns = {
            r["column_name"]
            for r in store.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'records'"
            )
        }
    store.close()
    assert set(RECORD_FIELDS) <= columns, "a wire field needs a migration step adding its column"
    assert set(INSERT_COLUMNS) <= columns
