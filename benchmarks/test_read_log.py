"""Reading the whole log: every event in order, streamed, from an SQLite file.

The log is a recorded district, at two sizes so the growth of cost with size shows
(1,500 and 6,000 cases, about 22,000 and 90,000 events; ``CASELEDGER_BENCH_LOG_CASES``
takes other comma-separated case counts, about 15 events each), mirrored event for event
into the references:

* ``caseledger``: ``ledger.events()`` on a freshly opened ledger: pages of 2,000
  records, each decoded into its validated pydantic event;
* ``caseledger records + decode_fields``: ``ledger.records()`` with
  ``codec.decode_fields``, the unvalidated fast path projections and exports use;
* ``eventsourcing defaults``: its recorder's ``select_notifications`` in pages of 2,000
  and ``app.mapper.to_domain_event`` for each (JSON transcoder). Its notification log
  serves sections of 10 by default; paging through the recorder is the kinder reading;
* ``raw sqlite3``: one ``SELECT`` of the same rows in log order, every row fetched.
"""

from __future__ import annotations

import gc
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.conftest import Measure
from benchmarks.report import OURS
from benchmarks.workload import EsApp, build_district, es_app, mirror_into
from caseledger import Ledger, codec

ROUNDS = 5
PAGE = 2000
SIZES = [int(n) for n in os.environ.get("CASELEDGER_BENCH_LOG_CASES", "1500,6000").split(",")]


@dataclass
class World:
    ledger: Ledger
    path: Path
    app: EsApp
    events: int

    @property
    def workload(self) -> str:
        return f"read whole log, {self.events:,} events"


def _fresh(path: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


@pytest.fixture(scope="module", params=SIZES, ids=lambda n: f"{n}-cases")
def world(bench_dir: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    cases: int = request.param
    path = _fresh(bench_dir / f"log-{cases}.db")
    with Ledger.open(path) as building:
        district = build_district(building, cases=cases, seed=3)
        app = es_app(_fresh(bench_dir / f"log-{cases}-es.db"))
        mirror_into(app, building)
    assert app.recorder.max_notification_id() == district.events
    # Read with a freshly opened ledger, as `caseledger events` would: the aggregates the
    # build left cached would otherwise slow every variant through garbage collection.
    del building
    gc.collect()
    ledger = Ledger.open(path)
    yield World(ledger, path, app, district.events)
    ledger.close()
    app.close()


def test_caseledger(world: World, measure: Measure) -> None:
    def read() -> int:
        return sum(1 for _ in world.ledger.events(batch_size=PAGE))

    measure(world.workload, OURS, read, events=world.events, rounds=ROUNDS)
    assert read() == world.events


def test_caseledger_records_decode_fields(world: World, measure: Measure) -> None:
    def read() -> int:
        count = 0
        for record in world.ledger.records(batch_size=PAGE):
            codec.decode_fields(record.topic, record.state)
            count += 1
        return count

    measure(world.workload, "caseledger records + decode_fields", read, events=world.events,
            rounds=ROUNDS)  # fmt: skip
    assert read() == world.events


def test_eventsourcing_defaults(world: World, measure: Measure) -> None:
    recorder = world.app.recorder
    mapper = world.app.mapper

    def read() -> int:
        count = 0
        start = 1
        while True:
            page = recorder.select_notifications(start=start, limit=PAGE)
            for notification in page:
                mapper.to_domain_event(notification)
            count += len(page)
            if len(page) < PAGE:
                return count
            start = page[-1].id + 1

    measure(world.workload, "eventsourcing defaults", read, events=world.events, rounds=ROUNDS)
    assert read() == world.events


def test_raw_sqlite3(world: World, measure: Measure) -> None:
    conn = sqlite3.connect(world.path)

    def read() -> int:
        count = 0
        for _ in conn.execute(
            "SELECT rowid, originator_id, originator_version, topic, state "
            "FROM stored_events ORDER BY rowid"
        ):
            count += 1
        return count

    measure(world.workload, "raw sqlite3", read, events=world.events, rounds=ROUNDS)
    assert read() == world.events
    conn.close()
