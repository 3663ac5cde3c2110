"""The journal's proof, without SQL: seq gap-free, each hash right, each record linked."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from common.i18n import _
from sync.wire import genesis_hash, record_hash

__all__ = ["Head", "VerifyReport", "walk_chain"]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What :meth:`Store.verify` found. ``problems`` and :attr:`advice` are in the current
    language; ``damage`` holds SQLite's own findings about the file (``integrity_check``)."""

    records: int
    first_seq: int | None
    last_seq: int | None
    problems: tuple[str, ...]
    damage: tuple[str, ...] = ()
    path: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def advice(self) -> str:
        """What to do, in one or two sentences for the technician ("" when all is well)."""
        if self.ok:
            return ""
        if self.damage and all("index" in d for d in self.damage):
            return _(
                "An index of the journal is damaged; the records themselves are intact. Stop "
                "the station (sudo systemctl stop pesee-station), keep a copy of {path}, then "
                "rebuild the indexes: sqlite3 {path} REINDEX"
            ).format(path=self.path)
        if self.damage:
            return _(
                "The journal file is damaged. Stop the station (sudo systemctl stop "
                "pesee-station), keep a copy of {path} and call the technician: records the "
                "ledger acknowledged are safe there, and sqlite3 {path} .recover saves the rest"
            ).format(path=self.path)
        return _(
            "Records of the journal were altered or removed. Do not modify it further: keep a "
            "copy of {path} and tell the office; the ledger keeps every record it received"
        ).format(path=self.path)


@dataclass(frozen=True, slots=True)
class Head:
    """What the journal's meta says about its two ends."""

    epoch: str
    anchor_seq: int  # the last record pruned (0: none), whose hash the chain starts from
    anchor_hash: str | None
    last_seq: int
    last_hash: str | None


def walk_chain(
    rows: Iterable[dict[str, Any]], head: Head, problems: list[str]
) -> tuple[int, int | None, int | None]:
    """Walk ``rows`` in seq order, adding what is wrong to ``problems`` (in the current
    language); returns (records, first seq, last seq)."""
    expected_prev = head.anchor_hash or genesis_hash(head.epoch)
    expected_seq: int | None = None
    first: int | None = None
    last: int | None = None
    n = 0
    for row in rows:
        n += 1
        seq = row["seq"]
        if first is None:
            first = seq
            if seq != head.anchor_seq + 1:
                if head.anchor_seq:
                    problems.append(
                        _(
                            "seq {seq}: journal does not start after the pruning anchor {anchor}"
                        ).format(seq=seq, anchor=head.anchor_seq)
                    )
                else:
                    problems.append(_("seq {seq}: journal does not start at 1").format(seq=seq))
                expected_prev = row["prev_hash"]
        elif seq != expected_seq:
            problems.append(
                _("seq {first}..{last}: missing").format(first=expected_seq, last=seq - 1)
            )
        if row["epoch"] != head.epoch:
            problems.append(
                _("seq {seq}: epoch {epoch} is not this journal's").format(
                    seq=seq, epoch=row["epoch"]
                )
            )
        if row["prev_hash"] != expected_prev:
            problems.append(_("seq {seq}: chain broken (prev_hash does not match)").format(seq=seq))
        if record_hash(row) != row["hash"]:
            problems.append(_("seq {seq}: content altered (hash does not match)").format(seq=seq))
        expected_prev = row["hash"]
        expected_seq = seq + 1
        last = seq
    if (last or 0) != head.last_seq:
        problems.append(
            _("head: meta says last seq {meta}, journal ends at {last}").format(
                meta=head.last_seq, last=last
            )
        )
    elif last is not None and head.last_hash != expected_prev:
        problems.append(_("head: meta last_hash does not match the last record"))
    return n, first, last
