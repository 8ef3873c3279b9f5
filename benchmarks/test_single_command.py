"""Single command latency: one event, one durable transaction, on an SQLite file.

The command is a service check (서비스점검) on an existing case of a recorded district,
taking the cases in turn so no case's history grows much during the run:

* ``caseledger``: ``ledger.check_service(...)``: validates the command, loads the case
  (cached) and the acting worker, applies the lifecycle rules, encodes the event and
  commits it (``synchronous=FULL``);
* ``eventsourcing defaults``: ``app.repository.get(case)`` (replaying the case's events
  through the JSON transcoder), one ``@event`` method call, ``app.save(case)``;
* ``raw sqlite3``: ``BEGIN``, one ``INSERT`` of a row with the same columns and the same
  state bytes as our stored event, ``COMMIT`` (WAL, ``synchronous=FULL``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from benchmarks.conftest import Measure
from benchmarks.report import OURS
from benchmarks.workload import (
    AT,
    District,
    EsApp,
    build_district,
    copy_log,
    es_app,
    es_synchronous,
    mirror_into,
    payload_of,
    raw_connection,
)
from caseledger import Ledger

WORKLOAD = "single command"
ROUNDS = 500
WARMUP = 20
NOTES = "방문 점검: 서비스 이용 중, 건강 상태 호전"


@dataclass
class World:
    ledger: Ledger
    district: District
    app: EsApp
    es_ids: dict[UUID, UUID]
    sample: Any  # one ServiceChecked event as the ledger recorded it
    raw_path: Path


def _fresh(path: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _check(ledger: Ledger, district: District, link: tuple[UUID, UUID, str]) -> Any:
    case, link_id, _ = link
    return ledger.check_service(case, link_id=link_id, method="visit", progress=50,
                                notes=NOTES, by=district.officers[case], at=AT)  # fmt: skip


@pytest.fixture(scope="module")
def world(bench_dir: Path) -> Iterator[World]:
    ledger = Ledger.open(_fresh(bench_dir / "single.db"))
    district = build_district(ledger, cases=300)
    app = es_app(_fresh(bench_dir / "single-es.db"))
    es_ids = mirror_into(app, ledger)
    sample = _check(ledger, district, district.links[0])
    yield World(ledger, district, app, es_ids, sample, _fresh(bench_dir / "single-raw.db"))
    ledger.close()
    app.close()


def test_caseledger(world: World, measure: Measure) -> None:
    links = itertools.cycle(world.district.links)
    before = len(world.ledger)

    calls = []

    def command() -> None:
        _check(world.ledger, world.district, next(links))
        calls.append(1)

    measure(WORKLOAD, OURS, command, events=1, rounds=ROUNDS, warmup_rounds=WARMUP)
    assert len(world.ledger) - before == len(calls)


def test_eventsourcing_defaults(world: World, measure: Measure) -> None:
    links = itertools.cycle(world.district.links)
    fields = payload_of(world.sample)
    app = world.app
    # eventsourcing leaves SQLite's default, FULL: its commits are as durable as ours.
    assert es_synchronous(app) == 2
    before = app.recorder.max_notification_id() or 0
    calls = []

    def command() -> None:
        case_id, link_id, _ = next(links)
        case: Any = app.repository.get(world.es_ids[case_id])
        if link_id not in case.links:
            raise AssertionError("the mirrored case lacks the link")
        case.check_service(**{**fields, "link_id": link_id, "household_id": case.household_id,
                              "actor": world.district.officers[case_id],
                              "recorded_at": datetime.now(UTC)})  # fmt: skip
        app.save(case)
        calls.append(1)

    measure(WORKLOAD, "eventsourcing defaults", command, events=1, rounds=ROUNDS,
            warmup_rounds=WARMUP)  # fmt: skip
    assert (app.recorder.max_notification_id() or 0) - before == len(calls)


def test_raw_sqlite3(world: World, measure: Measure) -> None:
    conn = raw_connection(world.raw_path)
    # Start from the same rows as the ledger, so the table, its index and the WAL are in
    # the same state as the ledger's when timing starts.
    copied = copy_log(world.ledger, conn)
    record = world.ledger.store.read_aggregate(world.sample.originator_id)[-1]
    topic, state = record.topic, record.state
    assert len(state) > 100, "the sample row should be a real ServiceChecked record"

    def fresh_id() -> tuple[tuple[str], dict[str, Any]]:
        return (uuid4().hex,), {}

    calls = []

    def insert(originator_id: str) -> None:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO stored_events VALUES (?,?,?,?)",
                     (originator_id, 1, topic, state))  # fmt: skip
        conn.execute("COMMIT")
        calls.append(1)

    measure(WORKLOAD, "raw sqlite3", insert, events=1, rounds=ROUNDS, warmup_rounds=WARMUP,
            setup=fresh_id)  # fmt: skip
    count = conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
    conn.close()
    assert count == copied + len(calls)
