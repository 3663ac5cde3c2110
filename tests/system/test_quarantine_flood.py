"""A station that floods the quarantine through a real broker and the ledger (issue 15 item 5):
its oldest messages are kept up to the cap, the rest counted; other stations' batches land;
the fleet shows the flood; ``ledger quarantine purge`` clears it. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from ledger.cli import cli
from ledger.config import LedgerConfig
from ledger.service import LedgerService
from ledger.store import SqlLedgerStore, open_store
from station.store import Store
from sync.record import Record
from sync.topics import Topics
from sync.wire import Batch, encode
from tests.support.broker import Broker
from tests.support.helpers import until

TOPICS = Topics()
CAP_MESSAGES = 20
CAP_BYTES = 65536
FLOOD = 150  # small garbage messages from st-flood: 20 kept, 130 counted
BIG = 30_000  # bytes of each of st-big's messages: two fit under CAP_BYTES, the third does not


@pytest.fixture
def publisher(broker: Broker) -> Iterator[mqtt.Client]:
    """A plain MQTT v5 client for the hostile station; its publishes are waited for (PUBACK)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="flooder", protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def _send(client: mqtt.Client, topic: str, payloads: list[bytes]) -> None:
    infos = [client.publish(topic, p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(10)
        assert info.is_published()


def _good_batches(path: Path) -> tuple[str, list[bytes]]:
    with Store(path, "st-good") as journal:
        for n in range(4):
            journal.append("weighing", net_mg=1000 + n, recorded_at="2026-11-21T10:00:00Z")
        epoch, rows = journal.epoch, [Record.from_row(r) for r in journal.records()]
    return epoch, [
        encode(Batch("st-good", epoch, tuple(rows[:2]))),
        encode(Batch("st-good", epoch, tuple(rows[2:]))),
    ]


def _cli(config: Path, *args: str, lang: str = "en", stdin: str | None = None) -> str:
    result = CliRunner().invoke(cli, ["--lang", lang, "--config", str(config), *args], input=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_station_flooding_the_quarantine_is_capped_counted_shown_and_purged(
    tmp_path: Path, broker: Broker, publisher: mqtt.Client, ledger_url: str
) -> None:
    settings = {
        "ledger": {
            "database": ledger_url,
            "quarantine_max_messages": CAP_MESSAGES,
            "quarantine_max_bytes": CAP_BYTES,
            "language": "en",
        },
        "mqtt": {"host": broker.host, "port": broker.port, "username": None},
    }
    config = LedgerConfig.model_validate(settings)
    store: SqlLedgerStore = open_store(ledger_url)
    service = LedgerService(config, store, client_id="ledger-flood")
    service.start()
    try:
        assert service.link.subscribed.wait(10)  # what is sent from now on reaches it
        epoch, (good1, good2) = _good_batches(tmp_path / "good.db")
        _send(publisher, TOPICS.records("st-good"), [good1])
        assert until(lambda: store.head("st-good", epoch) == (2, 2))  # the ledger listens

        flood = [b"flood %04d " % n + b"x" * 500 for n in range(FLOOD)]
        _send(publisher, TOPICS.records("st-flood"), flood)
        _send(publisher, TOPICS.records("st-big"), [b"%d" % n + b"y" * BIG for n in range(3)])
        _send(publisher, TOPICS.records("st-good"), [good2])
        # one worker, in order: once the good batch sent last is stored, the flood is handled
        assert until(lambda: store.head("st-good", epoch) == (4, 4))
    finally:
        service.stop()

    kept = store.quarantined("st-flood")
    assert len(kept) == CAP_MESSAGES
    payloads = [
        bytes(r["payload"])
        for r in store.fetch(
            "SELECT payload FROM quarantine WHERE station = 'st-flood' ORDER BY id"
        )
    ]
    assert payloads == flood[:CAP_MESSAGES]  # the oldest are kept: how the flood began
    assert len(store.quarantined("st-big")) == 2  # 60 000 bytes fit, 90 000 would not
    dropped = {d.station: (d.messages, d.bytes) for d in store.quarantine_dropped()}
    assert dropped == {
        "st-flood": (FLOOD - CAP_MESSAGES, sum(len(p) for p in flood[CAP_MESSAGES:])),
        "st-big": (1, BIG + 1),
    }
    fleet = {r.station: r for r in store.fleet()}
    assert (
        fleet["st-flood"].flooding and fleet["st-flood"].quarantine_dropped == FLOOD - CAP_MESSAGES
    )
    assert fleet["st-flood"].quarantined == CAP_MESSAGES
    assert not fleet["st-good"].flooding and fleet["st-good"].records == 4
    store.close()

    path = tmp_path / "ledger.toml"
    path.write_text(f'[ledger]\ndatabase = "{ledger_url}"\nlanguage = "en"\n', encoding="utf-8")
    table = _cli(path, "stations")
    flood_line = next(line for line in table.splitlines() if line.startswith("st-flood"))
    assert f"{CAP_MESSAGES} +{FLOOD - CAP_MESSAGES} dropped" in flood_line

    # refused at the prompt: nothing goes (in French, the staff's language)
    answer = _cli(path, "quarantine", "purge", "--station", "st-flood", lang="fr", stdin="n\n")
    assert f"Supprimer {CAP_MESSAGES} message(s) en quarantaine" in answer
    assert "Rien n'a été supprimé." in answer
    assert f"Removed: {CAP_MESSAGES} quarantined message(s)" in _cli(
        path, "quarantine", "purge", "--station", "st-flood", "--yes"
    )

    store = open_store(ledger_url)
    assert store.quarantined("st-flood") == []
    assert len(store.quarantined("st-big")) == 2  # another station's stays
    assert [d.station for d in store.quarantine_dropped()] == ["st-big"]
    assert "st-flood" not in {r.station for r in store.fleet()}
    store.close()
