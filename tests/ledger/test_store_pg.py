"""PostgreSQL connection losses leave one line in the log each, and so does each recovery
(issue 15 item 9), however many batches wait meanwhile."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ledger.config import LedgerConfig
from ledger.service import LedgerService, Message
from ledger.store import PostgresLedgerStore, open_store
from station.store import Store
from sync.wire import Batch, encode
from tests.support.pg import PostgresServer


@pytest.mark.pg
def test_each_loss_and_each_recovery_is_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Store(tmp_path / "s.db", "st-1") as journal:
        for i in range(4):
            journal.append("weighing", net_mg=1000, recorded_at=f"2026-11-21T10:00:0{i}.000Z")
        epoch, rows = journal.epoch, list(journal.records())
    config = LedgerConfig()

    def message(k: int) -> Message:
        batch = Batch("st-1", epoch, tuple(rows[k : k + 1]))
        return Message(config.topics.records("st-1"), encode(batch), False)

    with PostgresServer() as server:
        store = open_store(server.create_database())
        assert isinstance(store, PostgresLedgerStore)
        store.reconnect_tries = 2  # 0.25 + 0.5 s before giving up while the server is down
        service = LedgerService(config, store)
        caplog.set_level(logging.INFO, logger="ledger")
        service.handle_group([message(0)])
        assert store.head("st-1", epoch) == (1, 1)  # the reading connection opens
        server.restart()  # loss 1: back at the first try
        service.handle_group([message(1)])
        assert store.head("st-1", epoch) == (2, 2)  # the reads' loss and recovery
        server.halt()  # loss 2: two batches fail while it is down, then it comes back
        service.handle_group([message(2)])
        service.handle_group([message(2)])
        server.restart()
        service.handle_group([message(2)])
        service.handle_group([message(3)])
        assert store.head("st-1", epoch) == (4, 4)
        store.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "ledger"]
    for side, losses in (("writes", 2), ("reads", 2)):
        lost = [ln for ln in lines if ln.startswith(f"PostgreSQL connection lost ({side})")]
        back = [ln for ln in lines if ln == f"PostgreSQL connection back ({side})"]
        assert (len(lost), len(back)) == (losses, losses), lines
