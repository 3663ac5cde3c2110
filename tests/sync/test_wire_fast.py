"""The fast batch decoder (orjson, one pass) against the reference decoder (the standard json
module, field by field): on any payload, the same batch accepted or the same reason refused,
including what older stations sent (escaped non-ASCII, spaces, another member order); and the
rows the ledger's decode process sends on (decode_batch_rows), the same again."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sync.record as record_module
from station.store import Store
from sync.record import BOUNDS, RECORD_FIELDS, Record, record_hash
from sync.wire import Batch, WireError, decode_batch, decode_batch_rows, encode

KEY = b"station-key-0123"


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    path: Path = tmp_path_factory.mktemp("fast") / "station.db"
    with Store(path, "st-1") as store:
        store.append("visit_open", visit="v1", beneficiary="B0011234564", referrer="001")
        store.append(
            "weighing",
            visit="v1",
            net_mg=1_250_000,
            unit="kg",
            stable=True,
            raw="S S      1.250 kg",
            category="CAT-VÊT",
            data={"note": "été ☂"},
        )
        store.append(
            "weighing",
            visit="v1",
            net_mg=3_000,
            pieces=12,
            unit_weight_mg=250,
            stable=True,
            operator="OP-1",
        )
        store.append("void", visit="v1", voids=3, reason="button_hold")
        return store.epoch, [{k: v for k, v in r.items() if v is not None} for r in store.records()]


def outcome(
    payload: bytes, key: bytes | None, *, reference: bool, as_rows: bool = False
) -> tuple[str, Any]:
    """("ok", the batch) or ("refused", the reason), by the fast path or the reference one
    (orjson made to fail, the standard library then decides); ``as_rows``: by
    decode_batch_rows, its rows read by field name."""

    def refuse(_data: Any) -> Any:
        raise orjson.JSONDecodeError("forced", "", 0)

    with pytest.MonkeyPatch.context() as patch:
        if reference:
            patch.setattr(orjson, "loads", refuse)
        try:
            if as_rows:
                table = decode_batch_rows(payload, topic_station="st-1", key=key)
                rows = [dict(zip(RECORD_FIELDS, r, strict=True)) for r in table.rows]
                return "ok", (table.station, table.epoch, table.sent_at, rows)
            batch = decode_batch(payload, topic_station="st-1", key=key)
        except WireError as exc:
            return "refused", exc.reason
    rows = [r.to_row() for r in batch.records]
    return "ok", (batch.station, batch.epoch, batch.sent_at, rows)


def body_of(epoch: str, rows: list[dict[str, Any]], key: bytes = b"") -> dict[str, Any]:
    forged: tuple[Any, ...] = tuple(rows)
    body: dict[str, Any] = json.loads(
        encode(Batch("st-1", epoch, forged, "2026-11-21T10:00:00.000Z"), key)
    )
    return body


# values a hostile or broken station could put in a record's field
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 2**62, 2**62 + 1, 2**63, 2**64, -(2**63) - 1, 10**10 + 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["", "\x00", "a\x00", "\ud800", "x" * 4097, "é" * 2049, "\u2028"]),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def mutations(draw: st.DrawFn) -> Callable[[dict[str, Any]], None]:
    index = draw(st.integers(0, 3))
    name = draw(st.sampled_from([*RECORD_FIELDS, "colour"]))
    value = draw(ODD)
    rehash = draw(st.booleans())

    def mutate(body: dict[str, Any]) -> None:
        record = body["records"][index]
        record[name] = value
        if rehash:  # a consistent forgery: its hash matches the new content when it can
            with contextlib.suppress(TypeError, UnicodeEncodeError, ValueError):
                record["hash"] = record_hash(record)

    return mutate


def forms(body: dict[str, Any]) -> Iterator[bytes]:
    """The ways a station could have written the same body: ours, the standard library's
    default (ASCII escapes, spaces), indented, members in another order."""
    # a lone surrogate written as UTF-8 bytes too (the standard decoder reads them back)
    yield json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass"
    )
    yield json.dumps(body).encode()
    yield json.dumps(body, indent=2, sort_keys=True).encode()
    reordered = dict(reversed(body.items()))
    yield json.dumps(reordered, ensure_ascii=False).encode("utf-8", "surrogatepass")


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mutations(), max_size=3), st.booleans())
def test_the_fast_decoder_agrees_with_the_reference(
    journal: tuple[str, list[dict[str, Any]]],
    changes: list[Callable[[dict[str, Any]], None]],
    signed: bool,
) -> None:
    epoch, rows = journal
    key = KEY if signed else None
    body = body_of(epoch, [dict(r) for r in rows], key or b"")
    for change in changes:
        change(body)
    for payload in forms(body):
        said = outcome(payload, key, reference=True)
        assert outcome(payload, key, reference=False) == said
        for reference in (False, True):
            assert outcome(payload, key, reference=reference, as_rows=True) == said


def test_what_older_stations_sent_is_accepted_by_the_fast_path(
    journal: tuple[str, list[dict[str, Any]]],
) -> None:
    epoch, rows = journal
    body = body_of(epoch, rows, KEY)
    calls: list[bytes] = []
    fast = orjson.loads

    def counting(data: Any) -> Any:
        calls.append(bytes(data))
        return fast(data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(orjson, "loads", counting)
        for payload in forms(body):
            kind, batch = outcome(payload, KEY, reference=False)
            assert kind == "ok" and [r["hash"] for r in batch[3]] == [r["hash"] for r in rows]
    assert len(calls) == 4  # each decoded once, by orjson: no fall back to the reference


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mutations(), max_size=3))
def test_the_fast_decoder_agrees_once_its_checks_cache_is_full(
    journal: tuple[str, list[dict[str, Any]]],
    changes: list[Callable[[dict[str, Any]], None]],
) -> None:
    """Past the cap on generated per-signature checks (a hostile station's variety of field
    sets), the one generic check takes over: the same verdicts, the same reasons."""
    epoch, rows = journal
    body = body_of(epoch, [dict(r) for r in rows])
    for change in changes:
        change(body)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(record_module, "_CHECKERS", {})
        patch.setattr(record_module, "_MAX_SIGNATURES", 0)
        for payload in forms(body):
            assert outcome(payload, None, reference=False) == outcome(payload, None, reference=True)


def test_records_of_the_fast_path_are_frozen_records(
    journal: tuple[str, list[dict[str, Any]]],
) -> None:
    """The fast path builds its Records without the dataclass __init__: they are Records all
    the same, immutable, equal to the reference decoder's and to the journal's rows."""
    epoch, rows = journal
    payload = json.dumps(body_of(epoch, rows)).encode()
    fast = decode_batch(payload, topic_station="st-1").records
    _kind, reference = outcome(payload, None, reference=True)
    assert [r.to_row() for r in fast] == reference[3]
    for record, row in zip(fast, rows, strict=True):
        assert type(record) is Record
        assert record == Record.from_wire(row) and record == {**dict.fromkeys(RECORD_FIELDS), **row}
        assert hash(record) == hash(Record.from_wire(row))
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.net_mg = 1  # type: ignore[misc]


FORGERIES = [
    *((name, high + 1) for name, (_low, high) in BOUNDS.items()),
    *((name, low - 1) for name, (low, _high) in BOUNDS.items()),
    ("category", "a\x00b"),
    ("raw", "x" * 4097),
    ("kind", "weighed"),
    ("uuid", "not-a-uuid"),
    ("stable", True),
    ("unit", 1),
]


@pytest.mark.parametrize("generated", [True, False], ids=["generated", "generic"])
@pytest.mark.parametrize(("name", "value"), FORGERIES)
def test_a_consistent_forgery_is_refused_by_both_checks(
    journal: tuple[str, list[dict[str, Any]]], name: str, value: Any, generated: bool
) -> None:
    """A record that breaks one rule but carries the hash of its content: refused, for the
    reference's reason, by the generated per-signature checks and by the generic one."""
    epoch, rows = journal
    body = body_of(epoch, [dict(r) for r in rows])
    record = body["records"][2]
    record[name] = value
    record["hash"] = record_hash(record)
    payload = json.dumps(body, ensure_ascii=False).encode()
    with pytest.MonkeyPatch.context() as patch:
        if not generated:
            patch.setattr(record_module, "_CHECKERS", {})
            patch.setattr(record_module, "_MAX_SIGNATURES", 0)
        fast = outcome(payload, None, reference=False)
    assert fast[0] == "refused"
    assert fast == outcome(payload, None, reference=True)
