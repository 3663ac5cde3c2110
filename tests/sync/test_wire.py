"""Wire format v1: round trips, every refusal and its reason, fuzzing, the documented schema."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from station.store import Store
from sync.topics import Topics
from sync.wire import (
    MAX_BATCH_BYTES,
    MAX_RECORDS,
    RECORD_FIELDS,
    VERSION,
    Ack,
    Batch,
    LedgerStatus,
    Registry,
    StationStatus,
    WireError,
    canonical,
    decode_ack,
    decode_batch,
    decode_batch_rows,
    decode_ledger_status,
    decode_registry,
    decode_status,
    encode,
    genesis_hash,
    record_hash,
    sign,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"
KEY = b"station-secret"
DOC_KEY = b"demo-station-key"  # the key the batch example of docs/wire-format.md is signed with
EPOCH = "0123456789abcdef0123456789abcdef"
STATION_RE = r"[a-z0-9][a-z0-9_-]{0,63}"
EPOCH_RE = r"[0-9a-f]{32}"

Body = dict[str, Any]
Mutator = Callable[[Body], None]

DECODERS: dict[str, Callable[[bytes], object]] = {
    "batch": decode_batch,
    "ack": decode_ack,
    "status": decode_status,
    "ledger_status": decode_ledger_status,
    "registry": decode_registry,
}


# -- material ----------------------------------------------------------------------------------
def fill(store: Store) -> None:
    """One real visit: open, two weighings (one with a container), a void, the close."""
    visit = "6c2dbfe24dd84f34b287a8b98a5ffc74"
    common: dict[str, Any] = {
        "boot_id": "3f1c2a9e-7b4d-4e8a-9c61-0d5e2f7a8b90",
        "clock_synced": True,
        "visit": visit,
        "beneficiary": "B0011234564",
        "referrer": "001",
        "operator": "OP-0001",
    }
    store.append("visit_open", mono_ns=1_000, **common)
    store.append(
        "weighing",
        mono_ns=2_000,
        category="CAT-VET",
        source="scale",
        stable=True,
        tare_mg=450_000,
        net_mg=1_250_000,
        unit="kg",
        scale_id="mt-sics:B123456789",
        raw="S S      1.700 kg\\x0d\\x0a",
        data={"container": "BAC-1", "container_tare_mg": 450_000, "note": "Vêtements d'été"},
        **common,
    )
    store.append(
        "weighing",
        mono_ns=3_000,
        category="CAT-ALIM",
        source="scale",
        stable=True,
        gross_mg=3_420_000,
        tare_mg=0,
        net_mg=3_420_000,
        unit="kg",
        pieces=12,
        unit_weight_mg=285_000,
        pieces_computed=False,
        **common,
    )
    store.append("void", mono_ns=4_000, voids=3, reason="button_hold", **common)
    store.append(
        "visit_close", mono_ns=5_000, reason="end_code", data={"items": 1, "net_mg": 1_250_000}
    )


@functools.cache
def journal() -> tuple[str, tuple[dict[str, Any], ...]]:
    """Epoch and rows of a real store filled by :func:`fill` (made once, read-only)."""
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "station.db", "st-1") as store:
        fill(store)
        return store.epoch, tuple(store.records())


def rows() -> list[dict[str, Any]]:
    return [dict(r) for r in journal()[1]]


def batch_body(key: bytes = b"") -> Body:
    epoch, records = journal()
    body: Body = json.loads(encode(Batch("st-1", epoch, records, "2026-03-14T09:12:05Z"), key))
    return body


def dump(body: Body) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def rehash(record: Body) -> None:
    """Make ``hash`` match the (changed) content, so only the intended fault remains."""
    record["hash"] = record_hash(record)


def last_record(change: Callable[[Body], None], *, fix_hash: bool = True) -> Mutator:
    """A mutator of the batch's last record (no later record whose chain it could break)."""

    def mutate(body: Body) -> None:
        record = body["records"][-1]
        change(record)
        if fix_hash:
            rehash(record)

    return mutate


def setter(key: str, value: Any) -> Mutator:
    def mutate(body: Body) -> None:
        body[key] = value

    return mutate


def deleter(key: str) -> Mutator:
    def mutate(body: Body) -> None:
        del body[key]

    return mutate


def valid_messages() -> dict[str, Batch | Ack | StationStatus | LedgerStatus | Registry]:
    """A valid message of each type, with every field set."""
    epoch = journal()[0]
    return {
        "batch": Batch("st-1", epoch, journal()[1], "2026-03-14T09:12:05Z"),
        "ack": Ack("st-1", epoch, 5, ({"reason": "seq 6: not chained to seq 5"},), "t", 9),
        "status": StationStatus(
            "st-1",
            True,
            3,
            version="0.1.0",
            epoch=epoch,
            last_seq=5,
            synced_through=4,
            backlog=1,
            last_sync="2026-03-14T09:12:05+00:00",
            last_record_at="2026-03-14T09:11:54.668Z",
            clock_synced=True,
            scale_ok=False,
            scale_detail="no answer",
            calibration_age_days=41.5,
            ts="2026-03-14T09:12:06Z",
        ),
        "ledger_status": LedgerStatus(True, "2026-03-14T08:00:00Z"),
        "registry": Registry(
            4,
            ({"code": "CAT-VET", "name": "Vêtements"},),
            ({"code": "001", "name": "CCAS", "city": "Lyon"},),
            ({"name": "orientation", "regex": r"B\d{10}", "check_digit": "luhn"},),
            {"published_at": "2026-03-01T10:00:00Z"},
        ),
    }


def valid_bodies() -> dict[str, Body]:
    """A freshly encoded valid message of each type, parsed."""
    return {kind: json.loads(encode(m)) for kind, m in valid_messages().items()}


@functools.cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (DOCS / "wire-format.schema.json").read_text(encoding="utf-8")
    )
    return loaded


def validator() -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(schema())


def doc_text() -> str:
    return (DOCS / "wire-format.md").read_text(encoding="utf-8")


def doc_examples() -> list[Body]:
    blocks = re.findall(r"^```json\n(.*?)^```$", doc_text(), flags=re.S | re.M)
    return [json.loads(block) for block in blocks]


# -- round trips -------------------------------------------------------------------------------
def test_batch_from_a_real_store_round_trips(tmp_path: Path) -> None:
    with Store(tmp_path / "station.db", "st-1") as store:
        fill(store)
        records = tuple(store.records())
        assert store.verify().ok
        payload = encode(Batch("st-1", store.epoch, records, "2026-03-14T09:12:05Z"))
        batch = decode_batch(payload, topic_station="st-1")
    assert batch == Batch("st-1", store.epoch, records, "2026-03-14T09:12:05Z")
    assert (batch.first_seq, batch.last_seq) == (1, 5)
    assert records[0]["prev_hash"] == genesis_hash(store.epoch)
    # absent means null: nothing null is sent, everything null comes back
    body = json.loads(payload)
    assert all(v is not None for r in body["records"] for v in r.values())
    assert "gross_mg" not in body["records"][1]
    assert all(set(r) == set(RECORD_FIELDS) for r in batch.records)


def test_a_batch_can_start_anywhere_in_the_journal() -> None:
    epoch, records = journal()
    batch = decode_batch(encode(Batch("st-1", epoch, records[2:4])))
    assert (batch.first_seq, batch.last_seq, batch.sent_at) == (3, 4, "")


def test_signed_batch_round_trips_and_the_signature_covers_the_documented_bytes() -> None:
    body = batch_body(KEY)
    payload = dump(body)
    assert decode_batch(payload, key=KEY).records == journal()[1]
    assert decode_batch(payload).records == journal()[1]  # no key here: sig ignored
    unsigned = {k: v for k, v in body.items() if k != "sig"}
    text = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert text.isascii() and "\\u00ea" in text  # "ê" of the weighing's data, escaped
    assert body["sig"] == hmac.new(KEY, text.encode(), hashlib.sha256).hexdigest()
    assert body["sig"] == sign(KEY, text.encode())
    # over the parsed body, not the bytes: spacing and member order do not matter
    shuffled = dict(reversed(list(body.items())))
    assert decode_batch(json.dumps(shuffled, indent=3).encode(), key=KEY).last_seq == 5


def test_record_hash_is_sha256_of_the_documented_canonical_json() -> None:
    record = rows()[1]
    text = canonical(record).decode("utf-8")
    content = json.loads(text)
    assert list(content) == sorted(RECORD_FIELDS.keys() - {"hash"})
    assert content["gross_mg"] is None and content["net_mg"] == 1_250_000
    assert "Vêtements" in text  # ensure_ascii=False: UTF-8, not \u escapes
    expected = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert text == expected
    assert record["hash"] == hashlib.sha256(expected.encode("utf-8")).hexdigest()
    # absent and null are the same content
    compact = {k: v for k, v in record.items() if v is not None}
    assert record_hash(compact) == record["hash"]
    assert genesis_hash(EPOCH) == hashlib.sha256(f"pesee-genesis:{EPOCH}".encode()).hexdigest()


def test_ack_round_trips() -> None:
    ack = Ack("st-1", EPOCH, 41, ({"reason": "seq 42: same key, other content"},), "ts", 57)
    assert decode_ack(encode(ack)) == ack
    # received_through is never written below acked_through
    body = json.loads(encode(Ack("st-1", EPOCH, 41)))
    assert body["received_through"] == 41 and body["rejects"] == []
    # optional members: an ack without them is valid
    minimal = {"v": 1, "type": "ack", "station": "st-1", "epoch": EPOCH, "acked_through": 0}
    assert decode_ack(dump(minimal)) == Ack("st-1", EPOCH, 0, (), "", 0)


@pytest.mark.parametrize(
    "status",
    [
        StationStatus("st-1", False, 7),  # a Last Will
        StationStatus(
            "st-1",
            True,
            8,
            version="0.1.0",
            epoch=EPOCH,
            last_seq=120,
            synced_through=100,
            backlog=20,
            last_sync="2026-03-14T09:12:05+00:00",
            last_record_at="2026-03-14T09:11:54.668Z",
            clock_synced=False,
            scale_ok=True,
            scale_detail="mt-sics:B123456789",
            calibration_age_days=3.25,
            ts="2026-03-14T09:12:06Z",
        ),
    ],
    ids=["will", "full"],
)
def test_status_round_trips(status: StationStatus) -> None:
    assert decode_status(encode(status)) == status


def test_ledger_status_and_registry_round_trip() -> None:
    for online in (True, False):
        ledger = LedgerStatus(online, "2026-03-14T08:00:00Z")
        assert decode_ledger_status(encode(ledger)) == ledger
    registry = Registry(
        12,
        ({"code": "CAT-VET", "name": "Vêtements"},),
        ({"code": "001", "name": "CCAS", "city": "Lyon"},),
        ({"name": "orientation", "prefix": "B", "length": 11, "check_digit": "luhn"},),
        {"published_at": "2026-03-01T10:00:00Z", "nested": {"a": [1, 2]}},
    )
    assert decode_registry(encode(registry)) == registry
    assert decode_registry(b'{"v":1,"type":"registry","version":0}') == Registry(0)


@pytest.mark.parametrize("kind", list(DECODERS))
def test_encoded_messages_are_compact_utf8_json(kind: str) -> None:
    payload = encode(valid_messages()[kind])
    body = json.loads(payload.decode("utf-8"))
    assert body["v"] == VERSION == 1 and body["type"] == kind
    assert payload == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    assert DECODERS[kind](payload) is not None
    if kind in ("batch", "registry"):
        assert "ê".encode() in payload and b"\\u00ea" not in payload


# -- refusals ----------------------------------------------------------------------------------
def non_consecutive(body: Body) -> None:
    del body["records"][1]  # seqs 1, 3, 4, 5 ...
    body["last_seq"] = 4  # ... with a count that matches first_seq..last_seq


def broken_chain(body: Body) -> None:
    record = body["records"][2]
    record["prev_hash"] = "0" * 64
    rehash(record)


def tampered(body: Body) -> None:
    body["records"][1]["net_mg"] += 1  # content changed, hash kept


BATCH_REFUSALS: list[tuple[str, Mutator, str]] = [
    ("wrong version", setter("v", 2), "unsupported version 2"),
    ("no version", deleter("v"), "unsupported version None"),
    ("wrong type", setter("type", "ack"), "expected type 'batch', got 'ack'"),
    ("no type", deleter("type"), "expected type 'batch', got None"),
    ("bad station", setter("station", "St 1"), "bad station"),
    ("station too long", setter("station", "s" * 65), "bad station"),
    ("no station", deleter("station"), "bad station"),
    ("bad epoch", setter("epoch", EPOCH.upper()), "bad epoch"),
    ("first_seq zero", setter("first_seq", 0), "bad first_seq"),
    ("first_seq bool", setter("first_seq", True), "bad first_seq"),
    ("first_seq float", setter("first_seq", 1.0), "bad first_seq"),
    ("no first_seq", deleter("first_seq"), "bad first_seq"),
    ("last_seq string", setter("last_seq", "5"), "bad last_seq"),
    ("no records", deleter("records"), "no records"),
    ("empty records", setter("records", []), "no records"),
    ("records not a list", setter("records", {"1": {}}), "no records"),
    ("count mismatch", setter("last_seq", 6), "record count does not match"),
    ("empty record", last_record(lambda r: r.clear(), fix_hash=False), "record lacks seq"),
    ("unknown record field", last_record(lambda r: r.update(colour="red")), "unknown fields"),
    ("seq bool", last_record(lambda r: r.update(seq=True)), "record seq is not an integer"),
    ("seq float", last_record(lambda r: r.update(seq=5.0)), "record seq is not an integer"),
    ("net_mg bool", last_record(lambda r: r.update(net_mg=True)), "net_mg is not an integer"),
    ("net_mg string", last_record(lambda r: r.update(net_mg="1250")), "net_mg is not an integer"),
    ("net_mg float", last_record(lambda r: r.update(net_mg=1.5)), "net_mg is not an integer"),
    ("operator int", last_record(lambda r: r.update(operator=12)), "operator is not a string"),
    ("raw too long", last_record(lambda r: r.update(raw="x" * 4097)), "record raw too long"),
    ("seq zero", last_record(lambda r: r.update(seq=0)), "record seq out of range"),
    ("no uuid", last_record(lambda r: r.pop("uuid")), "record lacks uuid"),
    ("null hash", last_record(lambda r: r.update(hash=None), fix_hash=False), "lacks hash"),
    ("no recorded_at", last_record(lambda r: r.pop("recorded_at")), "lacks recorded_at"),
    ("other station", last_record(lambda r: r.update(station="st-2")), "differ from the batch"),
    ("other epoch", last_record(lambda r: r.update(epoch=EPOCH)), "differ from the batch"),
    ("unknown kind", last_record(lambda r: r.update(kind="sale")), "kind 'sale' unknown"),
    ("bad uuid", last_record(lambda r: r.update(uuid="not-a-uuid")), "record uuid malformed"),
    (
        "uppercase hash",
        last_record(lambda r: r.update(hash=r["hash"].upper()), fix_hash=False),
        "record hash malformed",
    ),
    ("short prev_hash", last_record(lambda r: r.update(prev_hash="ab")), "hash malformed"),
    ("net_mg too big", last_record(lambda r: r.update(net_mg=10**12 + 1)), "net_mg out of range"),
    ("tare too small", last_record(lambda r: r.update(tare_mg=-(10**12) - 1)), "tare_mg out"),
    ("gross too big", last_record(lambda r: r.update(gross_mg=10**15)), "gross_mg out of range"),
    ("unit weight", last_record(lambda r: r.update(unit_weight_mg=2**63)), "unit_weight_mg out"),
    ("non-consecutive seqs", non_consecutive, "records not consecutive"),
    ("broken chain", broken_chain, "record 3 not chained to the previous one"),
    ("hash not matching", tampered, "record 2 hash does not match its content"),
]


@pytest.mark.parametrize(
    ("mutate", "reason"), [c[1:] for c in BATCH_REFUSALS], ids=[c[0] for c in BATCH_REFUSALS]
)
def test_invalid_batch_is_refused_with_its_reason(mutate: Mutator, reason: str) -> None:
    body = batch_body()
    mutate(body)
    with pytest.raises(WireError) as info:
        decode_batch(dump(body), topic_station="st-1")
    assert reason in info.value.reason
    assert str(info.value) == info.value.reason


def test_record_that_is_not_an_object_is_refused() -> None:
    body = batch_body()
    body["records"][-1] = ["seq", 5]
    with pytest.raises(WireError, match="record is not an object"):
        decode_batch(dump(body))


@pytest.mark.parametrize(
    "payload",
    [b"", b"{", b"\xff\xfe\x00garbage", b"{'v': 1}", b"v=1&type=batch", b'{"v":1,}'],
)
def test_not_json_is_refused(payload: bytes) -> None:
    with pytest.raises(WireError, match=r"^not JSON$"):
        decode_batch(payload)


@pytest.mark.parametrize("payload", [b"[]", b"1", b'"batch"', b"null"])
def test_json_that_is_not_an_object_is_refused(payload: bytes) -> None:
    with pytest.raises(WireError, match=r"^not a JSON object$"):
        decode_batch(payload)


def test_oversized_batch_is_refused_before_parsing() -> None:
    payload = b" " * MAX_BATCH_BYTES + b"{}"
    with pytest.raises(WireError, match=r"too large \(262146 bytes > 262144\)"):
        decode_batch(payload)
    good = dump(batch_body())
    with pytest.raises(WireError, match="too large"):
        decode_batch(good, max_bytes=len(good) - 1)
    assert decode_batch(good, max_bytes=len(good)).last_seq == 5


def test_too_many_records_are_refused() -> None:
    body = batch_body()
    body["records"] = [{}] * (MAX_RECORDS + 1)
    body["last_seq"] = MAX_RECORDS + 1
    with pytest.raises(WireError, match="record count does not match"):
        decode_batch(dump(body), max_bytes=10 * MAX_BATCH_BYTES)


def test_station_in_payload_must_be_the_topic_station() -> None:
    payload = dump(batch_body())
    with pytest.raises(WireError, match="station 'st-1' published under 'st-2'"):
        decode_batch(payload, topic_station="st-2")
    topics = Topics()
    assert decode_batch(payload, topic_station=topics.station_of(topics.records("st-1")))


@pytest.mark.parametrize(
    "mutate",
    [
        setter("sig", "0" * 64),
        setter("sig", 5),
        deleter("sig"),
        setter("sent_at", "2026-03-14T09:12:06Z"),
        setter("extra", 1),  # an unknown member is covered by the signature too
        last_record(lambda r: r.update(net_mg=1)),  # a consistent rewrite of the content
    ],
    ids=[
        "wrong sig",
        "sig not a string",
        "missing sig",
        "sent_at changed",
        "member added",
        "rewritten",
    ],
)
def test_bad_or_missing_signature_is_refused_when_a_key_is_given(mutate: Mutator) -> None:
    body = batch_body(KEY)
    mutate(body)
    with pytest.raises(WireError, match=r"^bad signature$"):
        decode_batch(dump(body), key=KEY)


def test_a_lone_surrogate_as_signature_is_refused_not_a_crash() -> None:
    """JSON's "\\ud800" reads as a lone surrogate, which has no UTF-8 form: it once raised
    UnicodeEncodeError out of the decoder (and ended the ledger's decode process)."""
    body = batch_body(KEY)
    body["sig"] = "\ud800"
    payload = json.dumps(body).encode()  # ASCII escapes, as a station may write them
    for decode in (decode_batch, decode_batch_rows):
        with pytest.raises(WireError, match=r"^bad signature$"):
            decode(payload, key=KEY)


def test_signature_with_another_key_is_refused() -> None:
    with pytest.raises(WireError, match=r"^bad signature$"):
        decode_batch(encode(Batch("st-1", *journal()), key=b"another key"), key=KEY)
    with pytest.raises(WireError, match=r"^bad signature$"):
        decode_batch(encode(Batch("st-1", *journal())), key=KEY)  # unsigned


OTHER_REFUSALS: list[tuple[str, str, Mutator, str]] = [
    ("ack", "wrong type", setter("type", "batch"), "expected type 'ack'"),
    ("ack", "bad station", setter("station", "-st"), "bad station"),
    ("ack", "bad epoch", setter("epoch", "xyz"), "bad epoch"),
    ("ack", "negative", setter("acked_through", -1), "bad acked_through"),
    ("ack", "bool", setter("acked_through", False), "bad acked_through"),
    ("ack", "missing", deleter("acked_through"), "bad acked_through"),
    ("ack", "received string", setter("received_through", "9"), "bad received_through"),
    ("ack", "rejects not a list", setter("rejects", {"a": 1}), "bad rejects"),
    ("ack", "reject not an object", setter("rejects", ["seq 3"]), "bad rejects"),
    ("status", "online missing", deleter("online"), "bad online"),
    ("status", "online string", setter("online", "yes"), "bad online"),
    ("status", "online int", setter("online", 1), "bad online"),
    ("status", "session missing", deleter("session"), "bad session"),
    ("status", "session negative", setter("session", -1), "bad session"),
    ("status", "session bool", setter("session", True), "bad session"),
    ("status", "bad station", setter("station", "ST-1"), "bad station"),
    ("status", "wrong version", setter("v", 0), "unsupported version 0"),
    # text no ledger database can keep is refused alike on both (issue 15 item 6)
    ("status", "NUL in a text", setter("scale_detail", "ok\x00"), "bad scale_detail"),
    ("ledger_status", "online missing", deleter("online"), "bad online"),
    ("ledger_status", "online null", setter("online", None), "bad online"),
    ("registry", "version missing", deleter("version"), "bad version"),
    ("registry", "version string", setter("version", "3"), "bad version"),
    ("registry", "categories object", setter("categories", {}), "bad categories"),
    ("registry", "category no name", setter("categories", [{"code": "A"}]), "needs name"),
    ("registry", "empty code", setter("referrers", [{"code": "", "name": "x"}]), "needs code"),
    ("registry", "code int", setter("categories", [{"code": 5, "name": "x"}]), "needs code"),
    ("registry", "pattern not object", setter("beneficiary_patterns", ["B"]), "bad beneficiary"),
]


@pytest.mark.parametrize(
    ("kind", "mutate", "reason"),
    [(c[0], c[2], c[3]) for c in OTHER_REFUSALS],
    ids=[f"{c[0]}: {c[1]}" for c in OTHER_REFUSALS],
)
def test_invalid_message_is_refused_with_its_reason(
    kind: str, mutate: Mutator, reason: str
) -> None:
    body = valid_bodies()[kind]
    mutate(body)
    with pytest.raises(WireError) as info:
        DECODERS[kind](dump(body))
    assert reason in info.value.reason


def test_a_status_with_text_no_database_keeps_is_refused() -> None:
    """A lone surrogate (escaped, as JSON allows) failed on both databases as an internal
    error; refused at the door instead, like a NUL (issue 15 item 6)."""
    body = valid_bodies()["status"]
    body["version"] = "1.\ud800"
    with pytest.raises(WireError, match=r"^bad version$"):
        decode_status(json.dumps(body).encode())  # ASCII: the surrogate as \ud800


@pytest.mark.parametrize(
    ("kind", "limit"), [("ack", 64 * 1024), ("status", 16 * 1024), ("ledger_status", 4096)]
)
def test_small_messages_have_size_limits(kind: str, limit: int) -> None:
    body = valid_bodies()[kind]
    body["ts"] = "x" * limit
    with pytest.raises(WireError, match="too large"):
        DECODERS[kind](dump(body))


# -- fuzzing: nothing but WireError ------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)


# what a conforming producer may put in free-form members: real JSON, so no NaN or infinity
finite_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)


def only_wire_errors(payload: bytes, **kwargs: Any) -> None:
    for kind, decode in DECODERS.items():
        try:
            if kind == "batch":
                decode_batch(payload, **kwargs)
            else:
                decode(payload)
        except WireError as exc:
            assert exc.reason


@given(st.binary(max_size=4096))
def test_random_bytes_raise_only_wire_errors(payload: bytes) -> None:
    only_wire_errors(payload)
    only_wire_errors(payload, topic_station="st-1")


@given(
    st.sampled_from([*DECODERS, "other"]),
    st.dictionaries(st.text(max_size=12), json_values, max_size=8),
)
def test_random_json_objects_raise_only_wire_errors(kind: str, extra: Body) -> None:
    only_wire_errors(dump(extra))
    only_wire_errors(dump({**extra, "v": 1, "type": kind}))


record_keys = st.sampled_from([*RECORD_FIELDS, "colour"])
member_keys = st.text(max_size=8) | st.sampled_from(
    sorted({k for body in [*valid_bodies().values(), {"sig": 0}] for k in body})
)


@given(
    st.sampled_from(list(DECODERS)),
    st.lists(
        st.tuples(st.booleans(), member_keys),
        max_size=3,
    ),
    st.lists(st.tuples(st.integers(0, 4), record_keys, st.booleans()), max_size=3),
    st.data(),
)
def test_mutated_valid_messages_raise_only_wire_errors(
    kind: str,
    top: list[tuple[bool, str]],
    inner: list[tuple[int, str, bool]],
    data: st.DataObject,
) -> None:
    body = valid_bodies()[kind]
    for delete, key in top:
        if delete:
            body.pop(key, None)
        else:
            body[key] = data.draw(json_values)
    records = body.get("records")
    for index, key, delete in inner:
        if isinstance(records, list) and index < len(records) and isinstance(records[index], dict):
            if delete:
                records[index].pop(key, None)
            else:
                records[index][key] = data.draw(json_values)
    # key=None: a non-ASCII "sig" with a key given is a known bug (see the known-bug tests)
    only_wire_errors(dump(body), topic_station="st-1")


@given(
    st.from_regex(STATION_RE, fullmatch=True),
    st.from_regex(EPOCH_RE, fullmatch=True),
    st.integers(0, 2**62),
    st.integers(0, 2**62),
    st.lists(st.dictionaries(st.text(max_size=8), finite_json_values, max_size=3), max_size=3),
)
def test_any_valid_ack_round_trips_and_fits_the_schema(
    station: str, epoch: str, acked: int, received: int, rejects: list[Body]
) -> None:
    ack = Ack(station, epoch, acked, tuple(rejects), "ts", max(acked, received))
    payload = encode(ack)
    assert decode_ack(payload) == ack
    validator().validate(json.loads(payload))


@given(
    st.integers(0, 2**62),
    st.lists(st.fixed_dictionaries({"code": st.text(min_size=1), "name": st.text(min_size=1)})),
    st.dictionaries(
        st.text().filter(
            lambda k: (
                k not in {"v", "type", "version", "categories", "referrers"}
                and k != "beneficiary_patterns"
            )
        ),
        finite_json_values,
        max_size=4,
    ),
)
def test_any_valid_registry_round_trips_and_fits_the_schema(
    version: int, categories: list[dict[str, str]], extra: Body
) -> None:
    registry = Registry(version, tuple(categories), (), (), extra)
    payload = encode(registry)
    decoded = decode_registry(payload)
    assert (decoded.version, decoded.categories) == (version, tuple(categories))
    assert json.dumps(decoded.extra, sort_keys=True) == json.dumps(extra, sort_keys=True)
    validator().validate(json.loads(payload))


# -- the documentation and its schema ----------------------------------------------------------
def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema()["$defs"]) >= {"record", *DECODERS}
    record = schema()["$defs"]["record"]
    assert set(record["properties"]) == set(RECORD_FIELDS)
    assert record["additionalProperties"] is False
    assert schema()["$defs"]["status"]["additionalProperties"] is False
    assert schema()["$defs"]["registry"]["additionalProperties"] is True


def test_every_documented_example_fits_the_schema_and_decodes() -> None:
    examples = doc_examples()
    assert sorted(e["type"] for e in examples) == sorted(DECODERS)
    for body in examples:
        validator().validate(body)
        payload = dump(body)
        if body["type"] == "batch":
            batch = decode_batch(payload, topic_station="st-1", key=DOC_KEY)
            assert batch.records[0]["prev_hash"] == genesis_hash(batch.epoch)
        else:
            DECODERS[body["type"]](payload)


def test_the_documented_independent_check_agrees_with_the_decoder() -> None:
    blocks = re.findall(r"^```python\n(.*?)^```$", doc_text(), flags=re.S | re.M)
    assert len(blocks) == 1
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], "docs/wire-format.md", "exec"), namespace)
    check_batch: Callable[..., list[str]] = namespace["check_batch"]
    (example,) = [e for e in doc_examples() if e["type"] == "batch"]
    assert check_batch(example, key=DOC_KEY) == []
    assert check_batch(example, key=b"wrong") == ["bad signature"]
    body = batch_body(KEY)
    assert check_batch(body, key=KEY) == []
    for record in rows():
        assert namespace["record_hash"](record) == record["hash"]
    tampered(body)
    assert check_batch(body) == ["seq 2: hash does not match the content"]


def test_documented_topics_are_the_real_ones() -> None:
    topics = Topics()
    documented = set(re.findall(r"^\| `(pesee/v1/[^`]+)`", doc_text(), flags=re.M))
    real = {
        topics.records("{station}"),
        topics.ack("{station}"),
        topics.status("{station}"),
        topics.config("{station}"),
        topics.config_all,
        topics.ledger_status,
    }
    assert documented == real


def test_documented_worked_example_is_the_first_example_record() -> None:
    (example,) = [e for e in doc_examples() if e["type"] == "batch"]
    first = example["records"][0]
    text = doc_text()
    assert canonical(first).decode() in text
    assert genesis_hash(example["epoch"]) in text and first["hash"] in text


@pytest.mark.parametrize("kind", list(DECODERS))
def test_freshly_encoded_messages_fit_the_schema(kind: str) -> None:
    validator().validate(valid_bodies()[kind])


def test_signed_batches_and_minimal_messages_fit_the_schema() -> None:
    check = validator()
    check.validate(batch_body(KEY))
    check.validate(json.loads(encode(StationStatus("st-1", False, 0))))
    check.validate(json.loads(encode(Ack("st-1", EPOCH, 0))))
    check.validate(json.loads(encode(Registry(0))))
    check.validate(json.loads(encode(LedgerStatus(False))))
    check.validate({"v": 1, "type": "ack", "station": "a", "epoch": EPOCH, "acked_through": 0})


def status_extra(body: Body) -> None:
    body["colour"] = "red"


BOTH_REFUSE: list[tuple[str, str, Mutator]] = [
    ("batch", "wrong version", setter("v", 2)),
    ("batch", "string version", setter("v", "1")),
    ("batch", "bad station", setter("station", "St 1")),
    ("batch", "bad epoch", setter("epoch", "0" * 31)),
    ("batch", "first_seq zero", setter("first_seq", 0)),
    ("batch", "last_seq bool", setter("last_seq", True)),
    ("batch", "no records", deleter("records")),
    ("batch", "empty records", setter("records", [])),
    ("batch", "unknown record field", last_record(lambda r: r.update(colour="red"))),
    ("batch", "record seq bool", last_record(lambda r: r.update(seq=True))),
    ("batch", "net_mg string", last_record(lambda r: r.update(net_mg="1"))),
    ("batch", "operator int", last_record(lambda r: r.update(operator=1))),
    ("batch", "net_mg too big", last_record(lambda r: r.update(net_mg=10**12 + 1))),
    ("batch", "tare too small", last_record(lambda r: r.update(tare_mg=-(10**12) - 1))),
    ("batch", "no uuid", last_record(lambda r: r.pop("uuid"))),
    ("batch", "null kind", last_record(lambda r: r.update(kind=None))),
    ("batch", "unknown kind", last_record(lambda r: r.update(kind="sale"))),
    ("batch", "bad uuid", last_record(lambda r: r.update(uuid=r["uuid"].upper()))),
    ("batch", "bad prev_hash", last_record(lambda r: r.update(prev_hash="0" * 63))),
    ("batch", "raw too long", last_record(lambda r: r.update(raw="x" * 4097))),
    ("batch", "record seq zero", last_record(lambda r: r.update(seq=0))),
    ("ack", "negative acked_through", setter("acked_through", -1)),
    ("ack", "acked_through too big", setter("acked_through", 2**62 + 1)),
    ("ack", "no epoch", deleter("epoch")),
    ("ack", "reject not an object", setter("rejects", [1])),
    ("ack", "received_through string", setter("received_through", "1")),
    ("status", "online string", setter("online", "yes")),
    ("status", "no session", deleter("session")),
    ("status", "wrong type", setter("type", "state")),
    ("ledger_status", "no online", deleter("online")),
    ("ledger_status", "online int", setter("online", 1)),
    ("registry", "no version", deleter("version")),
    ("registry", "version float", setter("version", 1.5)),
    ("registry", "category without name", setter("categories", [{"code": "A"}])),
    ("registry", "referrer with empty code", setter("referrers", [{"code": "", "name": "x"}])),
    ("registry", "pattern not an object", setter("beneficiary_patterns", [1])),
]


@pytest.mark.parametrize(
    ("kind", "mutate"),
    [(c[0], c[2]) for c in BOTH_REFUSE],
    ids=[f"{c[0]}: {c[1]}" for c in BOTH_REFUSE],
)
def test_invalid_payload_is_refused_by_schema_and_decoder(kind: str, mutate: Mutator) -> None:
    body = valid_bodies()[kind]
    mutate(body)
    assert not validator().is_valid(body)
    with pytest.raises(WireError):
        DECODERS[kind](dump(body))


def test_schema_is_stricter_than_the_decoder_where_documented() -> None:
    # unknown top-level members: ignored by the decoders, not written by a conforming producer
    body = valid_bodies()["status"]
    status_extra(body)
    assert not validator().is_valid(body)
    assert decode_status(dump(body)).station == "st-1"
    # JSON Schema counts 1.0 as an integer; the decoder does not
    body = batch_body()
    body["first_seq"] = 1.0
    assert validator().is_valid(body)
    with pytest.raises(WireError, match="bad first_seq"):
        decode_batch(dump(body))


# -- bugs found in review of sync/wire.py, fixed: these keep them fixed ----------------------
@pytest.mark.parametrize("kind", list(DECODERS))
def test_fixed_deeply_nested_json_raises_recursion_error(kind: str) -> None:
    with pytest.raises(WireError):
        DECODERS[kind](b"[" * 4000)


def test_fixed_non_ascii_signature_raises_type_error() -> None:
    body = batch_body(KEY)
    body["sig"] = "é"
    with pytest.raises(WireError, match="bad signature"):
        decode_batch(dump(body), key=KEY)


def test_fixed_lone_surrogate_in_a_record_raises_unicode_error() -> None:
    body = batch_body()
    body["records"][-1]["reason"] = "\ud800"
    payload = json.dumps(body).encode()  # ASCII JSON: the surrogate travels as \ud800
    with pytest.raises(WireError):
        decode_batch(payload)


def test_fixed_trailing_newline_passes_the_patterns() -> None:
    with pytest.raises(WireError):
        decode_ack(encode(Ack("st-1\n", EPOCH + "\n", 3)))


def test_fixed_version_true_is_accepted() -> None:
    body = valid_bodies()["ledger_status"]
    body["v"] = True
    with pytest.raises(WireError):
        decode_ledger_status(dump(body))


def test_fixed_record_integers_beyond_int64_are_accepted() -> None:
    body = batch_body()
    last_record(lambda r: r.update(mono_ns=2**70))(body)  # the ledger's SQLite cannot store it
    with pytest.raises(WireError):
        decode_batch(dump(body))


def test_fixed_status_optional_fields_are_not_typed() -> None:
    body = valid_bodies()["status"]
    body["backlog"] = "lots"
    with pytest.raises(WireError):
        decode_status(dump(body))


def test_fixed_registry_extra_overrides_reserved_members() -> None:
    for reserved in ({"version": 7}, {"v": 2}, {"categories": []}):
        with pytest.raises(ValueError, match="registry extras may not use"):
            encode(Registry(3, extra=reserved))
    assert decode_registry(encode(Registry(3, extra={"season": "hiver"}))).extra == {
        "season": "hiver"
    }
