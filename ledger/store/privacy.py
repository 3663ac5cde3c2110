"""Pseudonyms, keyed hashes, the database's pseudonymisation mode, and a person's erasure.

A pseudonymising ledger stores a keyed hash of each beneficiary code (``h:`` + HMAC-SHA256) and a
keyed form of each station hash (which, with the other fields, would let a guessed code be
checked). The mode is recorded at a database's first write and checked at every open, so two
keys, or raw codes and hashes, never mix (docs/privacy.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from .dialect import Dialect
from .models import PseudonymMismatch

__all__ = ["PSEUDONYM_HEX", "Privacy", "hide_codes", "pseudonym"]

PSEUDONYM_HEX = 32  # 128 bits of HMAC-SHA256: no collision among millions of codes
_REKEY_CHUNK = 5000  # records per step of the one-time keying of station hashes
_CHECK_TEXT = b"pesee-pseudonym-check"
_REDACTED = "(redacted)"
# what an erasure rewrites: PostgreSQL keeps the old row versions until these are vacuumed
ERASED_TABLES = ("records", "conflicts", "person_ids", "profiles", "quarantine", "heads")


def pseudonym(key: bytes, code: str) -> str:
    """``h:`` + the first :data:`PSEUDONYM_HEX` hex digits of HMAC-SHA256(key, code)."""
    digest = hmac.new(key, code.encode("utf-8"), hashlib.sha256).hexdigest()
    return "h:" + digest[:PSEUDONYM_HEX]


def hide_codes(
    value: Any, hide: Callable[[str | None], str | None], keyed: Callable[[str | None], str | None]
) -> Any:
    """Every ``beneficiary`` member of a JSON value replaced by its pseudonym, every ``hash``
    and ``prev_hash`` by its keyed form (a station hash re-hashed from the other fields with
    a guessed code would give the code back)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "beneficiary":
                # any type: a code sent as a number or a list is a code all the same
                out[k] = hide(v) if isinstance(v, str) else _REDACTED
            elif k in ("hash", "prev_hash") and isinstance(v, str):
                out[k] = keyed(v)
            else:
                out[k] = hide_codes(v, hide, keyed)
        return out
    if isinstance(value, list):
        return [hide_codes(v, hide, keyed) for v in value]
    return value


class Privacy:
    """The store's keyed forms and the rules that protect them, over one database."""

    def __init__(self, db: Dialect, key: bytes | None) -> None:
        self.db = db
        self._key = key
        # set at open when the database was made pseudonymised and no key was given: a reader
        # (the dashboard) may read, nothing may write
        self._mode_error: str | None = None
        self._mode_known = False

    @property
    def pseudonymised(self) -> bool:
        return self._key is not None

    # -- the keyed forms --------------------------------------------------------------------
    def kept_hash(self, station_hash: str | None) -> str | None:
        """What the ledger stores for a station's record hash: HMAC-SHA256(key, hash) (hex)
        when pseudonymising, the hash itself otherwise. Comparisons (duplicates, chain across
        batches, conflicts) are made on this form."""
        if self._key is None or station_hash is None:
            return station_hash
        return hmac.new(self._key, station_hash.encode(), hashlib.sha256).hexdigest()

    def pseudonym(self, code: str | None) -> str | None:
        """What the ledger stores for a beneficiary code: its keyed hash when pseudonymising,
        the code itself otherwise (importers of codes call this too)."""
        if self._key is None or not code:
            return code
        return pseudonym(self._key, code)

    def hidden(self, value: Any) -> Any:
        """A JSON value as the ledger may keep it: codes pseudonymised, hashes keyed."""
        if self._key is None:
            return value
        return hide_codes(value, self.pseudonym, self.kept_hash)

    def kept_payload(self, payload: bytes) -> bytes | None:
        """A refused message's bytes as the ledger may keep them: as received, except when
        pseudonymising: then a JSON payload is kept redacted and any other payload (a truncated
        frame, not JSON) keeps no bytes at all: they could hold a raw code."""
        if self._key is None:
            return payload
        with suppress(ValueError, UnicodeDecodeError, RecursionError):
            return json.dumps(self.hidden(json.loads(payload)), ensure_ascii=False).encode()
        return None

    def _rehide(self, code: str | None) -> str | None:
        """A code of an old quarantined payload: pseudonymised unless it already is."""
        if code is None or code.startswith(("h:", "x:")):
            return code
        return self.pseudonym(code)

    # -- the mode the database was made with ------------------------------------------------
    def _mode_value(self) -> str:
        if self._key is None:
            return "off"
        return "hmac:" + hmac.new(self._key, _CHECK_TEXT, hashlib.sha256).hexdigest()

    def check_mode(self) -> None:
        """Compare the opener's setting with the one stored at the database's first write.

        A key given: it must be the database's (or the database new). No key: a database made
        pseudonymised is readable, but every write is refused (:meth:`require_writable`)."""
        rows = self.db.exec("SELECT value FROM ledger_meta WHERE name = 'pseudonym'")
        if not rows:
            if self._key is not None:
                self._record_mode()
            return
        stored = str(rows[0][0])
        self._mode_known = True
        if stored == self._mode_value():
            if self._key is not None:
                self._key_station_hashes()
            return
        if stored == "off":
            message = (
                "this ledger database stores raw beneficiary codes: it cannot be opened with "
                "pseudonymise = true (the codes already stored would stay raw); set "
                "[ledger] pseudonymise = false or start a new database"
            )
        elif self._key is not None:
            message = (
                "[ledger] pseudonym_key is not the key this database was made with: the same "
                "person would get another hash; use the database's key"
            )
        else:
            message = (
                "this ledger database is pseudonymised: writing needs [ledger] pseudonymise = "
                "true and its pseudonym_key"
            )
        if self._key is not None:
            raise PseudonymMismatch(message)
        self._mode_error = message

    def _record_mode(self) -> None:
        """The database's mode, once, at its first write (or first open with a key)."""
        if self._mode_known:
            return

        def body() -> None:
            self.db.exec(
                "INSERT INTO ledger_meta (name, value) VALUES ('pseudonym', ?) "
                "ON CONFLICT (name) DO NOTHING",
                (self._mode_value(),),
            )

        self.db.atomic(body)
        self._mode_known = True
        self.check_mode()  # another process may have recorded another mode first

    def require_writable(self) -> None:
        """Raise :class:`PseudonymMismatch` when this store may not write (see above); the
        first write of a new database records its mode."""
        if self._mode_error is not None:
            raise PseudonymMismatch(self._mode_error)
        if not self._mode_known:
            self._record_mode()
            if self._mode_error is not None:
                raise PseudonymMismatch(self._mode_error)

    def _key_station_hashes(self) -> None:
        """Once per pseudonymised database: station hashes stored by a ledger before they were
        keyed (raw SHA-256 of the record with its raw code) are replaced by their keyed form,
        in records, heads, conflicts (and the JSON each conflict keeps)."""
        done = "SELECT value FROM ledger_meta WHERE name = 'station_hashes'"
        if self.db.exec(done):
            return

        def body() -> None:
            if self.db.exec(done):
                return  # another worker did it meanwhile
            after: tuple[Any, ...] = ("", "", -1)
            while True:
                rows = self.db.exec(
                    "SELECT station, epoch, seq, hash, prev_hash FROM records "
                    "WHERE (station > ?) OR (station = ? AND epoch > ?) "
                    "OR (station = ? AND epoch = ? AND seq > ?) "
                    f"ORDER BY station, epoch, seq LIMIT {_REKEY_CHUNK}",
                    (after[0], after[0], after[1], after[0], after[1], after[2]),
                )
                if not rows:
                    break
                self.db.many(
                    "UPDATE records SET hash = ?, prev_hash = ? "
                    "WHERE station = ? AND epoch = ? AND seq = ?",
                    [
                        (self.kept_hash(h), self.kept_hash(p), st, ep, seq)
                        for st, ep, seq, h, p in rows
                    ],
                )
                after = tuple(rows[-1][:3])
            heads = self.db.exec("SELECT station, epoch, last_hash FROM heads")
            self.db.many(
                "UPDATE heads SET last_hash = ? WHERE station = ? AND epoch = ?",
                [(self.kept_hash(h), st, ep) for st, ep, h in heads],
            )
            conflicts = self.db.exec("SELECT id, existing_hash, new_hash, record FROM conflicts")
            self.db.many(
                "UPDATE conflicts SET existing_hash = ?, new_hash = ?, record = ? WHERE id = ?",
                [
                    (
                        self.kept_hash(old),
                        self.kept_hash(new),
                        json.dumps(
                            hide_codes(json.loads(text), lambda c: c, self.kept_hash),
                            ensure_ascii=False,
                        ),
                        cid,
                    )
                    for cid, old, new, text in conflicts
                ],
            )
            # quarantined payloads kept by an older ledger: redacted the same way now
            for qid, payload in self.db.exec(
                "SELECT id, payload FROM quarantine WHERE payload IS NOT NULL"
            ):
                kept: bytes | None = None
                with suppress(ValueError, UnicodeDecodeError, RecursionError):
                    body = hide_codes(json.loads(bytes(payload)), self._rehide, self.kept_hash)
                    kept = json.dumps(body, ensure_ascii=False).encode()
                self.db.exec("UPDATE quarantine SET payload = ? WHERE id = ?", (kept, qid))
            self.db.exec(
                "INSERT INTO ledger_meta (name, value) VALUES ('station_hashes', 'keyed') "
                "ON CONFLICT (name) DO NOTHING"
            )

        self.db.atomic(body)

    # -- a person's rights ------------------------------------------------------------------
    def records_of(self, code: str) -> list[dict[str, Any]]:
        """Every record of one person (an access request), by the code they show."""
        return self.db.fetch(
            "SELECT occurred_at, station, kind, category, referrer, net_mg, pieces, voided_by, "
            "seq FROM records WHERE beneficiary = ? ORDER BY occurred_at, station, seq",
            [self.pseudonym(code)],
        )

    def erase(self, code: str) -> int:
        """An erasure request: the person's code replaced by a tombstone of their own in every
        record, profile tag and conflict. Totals and unique counts stay; the link to the code
        is gone. Returns the number of records that named them."""
        self.require_writable()
        stored = self.pseudonym(code)
        tombstone = "x:" + secrets.token_hex(PSEUDONYM_HEX // 2)
        db = self.db

        def body() -> int:
            n = db.exec("SELECT count(*) FROM records WHERE beneficiary = ?", (stored,))[0][0]
            # the person's station hashes go too: with the other fields of a row, a hash (or
            # its keyed form, for whoever holds the key) lets a guessed code be checked. The
            # neighbours' links to them, a head at them and conflicts naming them go as well;
            # ingest takes a NULL hash as "stored" and a NULL link as chained.
            theirs = "(SELECT hash FROM records WHERE beneficiary = ? AND hash IS NOT NULL)"
            db.exec(f"UPDATE heads SET last_hash = NULL WHERE last_hash IN {theirs}", (stored,))
            db.exec(f"UPDATE records SET prev_hash = NULL WHERE prev_hash IN {theirs}", (stored,))
            for column in ("existing_hash", "new_hash"):
                db.exec(
                    f"UPDATE conflicts SET {column} = NULL WHERE {column} IN {theirs}", (stored,)
                )
            db.exec(
                "UPDATE records SET hash = NULL, prev_hash = NULL WHERE beneficiary = ?", (stored,)
            )
            db.exec("UPDATE records SET beneficiary = ? WHERE beneficiary = ?", (tombstone, stored))
            # the person's id stays (unique counts unchanged), its code goes
            db.exec(
                "UPDATE person_ids SET beneficiary = ? WHERE beneficiary = ?", (tombstone, stored)
            )
            # household profile tags stay attached to the (now anonymous) person
            for table in ("profiles", "scanned_profiles"):
                db.exec(
                    f"UPDATE {table} SET beneficiary = ? WHERE beneficiary = ?", (tombstone, stored)
                )
            # quarantined messages naming the code (as stored: raw, or pseudonymised in a
            # redacted copy) lose their bytes; topic, reason, size and SHA-256 stay
            needle = str(stored).encode()
            for qid, payload in db.exec(
                "SELECT id, payload FROM quarantine WHERE payload IS NOT NULL"
            ):
                if needle in bytes(payload):
                    db.exec("UPDATE quarantine SET payload = NULL WHERE id = ?", (qid,))
            for cid, text in db.exec(
                "SELECT id, record FROM conflicts WHERE record LIKE ?", (f"%{stored}%",)
            ):
                record = json.loads(text)
                if record.get("beneficiary") == stored:
                    record["beneficiary"] = tombstone
                    record["hash"] = record["prev_hash"] = None
                    db.exec(
                        "UPDATE conflicts SET record = ?, existing_hash = NULL, new_hash = NULL "
                        "WHERE id = ?",
                        (json.dumps(record, ensure_ascii=False), cid),
                    )
            return int(n)

        return db.atomic(body)
