"""The dashboard's persons and funders pages follow new records in the background (issue 18):
asked once, their figures are recomputed by the refresher when records arrive, as the overview's
are, so their next visitor does not wait for them."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from pathlib import Path

from ledger.period import Period
from ledger.store import open_store
from ledger.store.households import Composition, fead_counts
from ledger.store.persons import new_and_returning
from sync.record import Record as WireRecord
from sync.wire import Batch, decode_batch, encode
from tests.support import ledger_dataset
from tests.support.dashboard import cookie_of, get, http_login, ledger_config, serving
from tests.support.helpers import until

YEAR = 2025
NEWCOMER = "B888888"  # a household known to the office, not yet seen at a counter


def test_the_persons_and_funders_pages_follow_new_records_without_a_visitor_waiting(
    tmp_path: Path, ledger_url: str
) -> None:
    """Figures may be an hour old (cache_seconds = 3600): once a record arrives, the pages
    asked lately show it without anyone asking again first (before, they stayed as they were
    until cache_seconds ran out: the refresher kept only the overviews)."""
    data = ledger_dataset.network(persons=30, visits_per_station=40)
    store = open_store(ledger_url)
    try:
        ledger_dataset.ingest(store, data)
        store.import_households([Composition(NEWCOMER, women=2, children_0_15=1)])
        bounds = Period.year(YEAR).bounds()
        persons = new_and_returning(store, bounds)["persons"]
        helped = fead_counts(store, bounds)["persons"]
    finally:
        store.close()
    config = ledger_config(tmp_path, ledger_url, cache_seconds="3600")
    with serving(config, tmp_path / "serve.log") as (base, _port):
        cookie = cookie_of(http_login(base)[1])

        def persons_shown() -> int:
            page = get(f"{base}/persons?year={YEAR}", cookie=cookie)[2]
            found = re.search(r'data-kpi="persons">.*?class="value">([\d\s\u202f]+)<', page, re.S)
            assert found, page[:500]
            return int(re.sub(r"\D", "", found.group(1)))

        def helped_shown() -> int:
            page = get(f"{base}/funders?year={YEAR}", cookie=cookie)[2]
            found = re.search(r'data-key="persons">.*?class="n">([\d\s\u202f]+)<', page, re.S)
            assert found, page[:500]
            return int(re.sub(r"\D", "", found.group(1)))

        assert (persons_shown(), helped_shown()) == (persons, helped)
        late = ledger_dataset.Journal("st-late", random.Random(5))
        at = datetime(YEAR, 6, 1, 10, tzinfo=UTC)
        late.append("weighing", at, net_mg=5_000_000, visit="v", beneficiary=NEWCOMER)
        store = open_store(ledger_url)
        try:
            batch = Batch(late.station, late.epoch, tuple(map(WireRecord.from_row, late.records)))
            store.ingest(decode_batch(encode(batch)))
        finally:
            store.close()
        assert until(lambda: persons_shown() == persons + 1, timeout=60), persons_shown()
        assert until(lambda: helped_shown() == helped + 3, timeout=60), helped_shown()
