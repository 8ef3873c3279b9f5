"""Batched append: 2,000 commands in one transaction, as an import or bulk load does.

Each round links 2,000 services (서비스연계): five to each of 400 open cases of a recorded
district, the cases taken in turn from round to round:

* ``caseledger``: 2,000 ``ledger.link_service(...)`` calls inside one ``ledger.batch()``
  (validation, rules, encoding, one ``executemany`` insert, one durable commit);
* ``eventsourcing defaults``: ``app.repository.get`` for each of the 400 cases, five
  ``@event`` method calls on each, one ``app.save(*cases)`` (its recorder inserts row by
  row in one transaction);
* ``raw sqlite3``: ``BEGIN``, one ``executemany`` of 2,000 rows with the same columns and
  the same state bytes as the ledger's round, ``COMMIT`` (WAL, ``synchronous=FULL``).
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
    SERVICES,
    District,
    EsApp,
    build_district,
    copy_log,
    es_app,
    mirror_into,
    payload_of,
    raw_connection,
)
from caseledger import Ledger

WORKLOAD = "batched append"
COMMANDS = 2000
PER_CASE = 5
ROUNDS = 8

Plan = list[tuple[UUID, tuple[str, str, str, str]]]


@dataclass
class World:
    ledger: Ledger
    district: District
    app: EsApp
    es_ids: dict[UUID, UUID]
    sample: Any  # one ServiceLinked event as the ledger recorded it
    states: list[tuple[str, bytes]]  # (topic, state) of one batch the ledger recorded
    raw_path: Path
    plans: Iterator[Plan]


def _fresh(path: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _plans(district: District) -> Iterator[Plan]:
    """Each round's commands: (case, service) for 400 cases in turn, five services each."""
    cases = itertools.cycle(district.linkable)
    services = itertools.cycle(SERVICES)
    while True:
        plan: Plan = []
        for _ in range(COMMANDS // PER_CASE):
            case = next(cases)
            plan.extend((case, next(services)) for _ in range(PER_CASE))
        yield plan


def _provider(sector: str) -> str:
    return "hope-team" if sector == "public" else "welfare-centre"


def _link_all(ledger: Ledger, district: District, plan: Plan) -> None:
    with ledger.batch():
        for case, (service, domain, kind, sector) in plan:
            ledger.link_service(case, service=service, provider=_provider(sector), domain=domain,
                                kind=kind, amount=300000 if kind == "cash" else None,
                                by=district.officers[case], at=AT)  # fmt: skip


@pytest.fixture(scope="module")
def world(bench_dir: Path) -> Iterator[World]:
    ledger = Ledger.open(_fresh(bench_dir / "batch.db"))
    district = build_district(ledger, cases=1000, seed=11)
    app = es_app(_fresh(bench_dir / "batch-es.db"))
    es_ids = mirror_into(app, ledger)
    plans = _plans(district)
    # One untimed batch gives the rows the raw reference writes.
    _link_all(ledger, district, next(plans))
    last = len(ledger)
    records = list(ledger.records(since=last - COMMANDS))
    states = [(r.topic, r.state) for r in records]
    sample = next(e.event for e in ledger.events(since=last - 1))
    yield World(ledger, district, app, es_ids, sample, states,
                _fresh(bench_dir / "batch-raw.db"), plans)  # fmt: skip
    ledger.close()
    app.close()


def _next_plan(world: World) -> tuple[tuple[Plan], dict[str, Any]]:
    return (next(world.plans),), {}


def test_caseledger(world: World, measure: Measure) -> None:
    before = len(world.ledger)
    calls = []

    def batch(plan: Plan) -> None:
        _link_all(world.ledger, world.district, plan)
        calls.append(1)

    measure(WORKLOAD, OURS, batch, events=COMMANDS, rounds=ROUNDS,
            setup=lambda: _next_plan(world))  # fmt: skip
    assert len(world.ledger) - before == COMMANDS * len(calls)


def test_eventsourcing_defaults(world: World, measure: Measure) -> None:
    app = world.app
    fields = payload_of(world.sample)
    before = app.recorder.max_notification_id() or 0
    calls = []

    def batch(plan: Plan) -> None:
        cases: dict[UUID, Any] = {}
        for case_id, (service, domain, kind, sector) in plan:
            case = cases.get(case_id)
            if case is None:
                case = cases[case_id] = app.repository.get(world.es_ids[case_id])
            case.link_service(**{**fields, "link_id": uuid4(), "service": service,
                                 "domain": domain, "kind": kind, "sector": sector,
                                 "provider": _provider(sector),
                                 "amount": 300000 if kind == "cash" else None,
                                 "actor": world.district.officers[case_id],
                                 "household_id": case.household_id,
                                 "recorded_at": datetime.now(UTC)})  # fmt: skip
        app.save(*cases.values())
        calls.append(1)

    measure(WORKLOAD, "eventsourcing defaults", batch, events=COMMANDS, rounds=ROUNDS,
            setup=lambda: _next_plan(world))  # fmt: skip
    assert (app.recorder.max_notification_id() or 0) - before == COMMANDS * len(calls)


def test_raw_sqlite3(world: World, measure: Measure) -> None:
    conn = raw_connection(world.raw_path)
    copied = copy_log(world.ledger, conn)
    assert len(world.states) == COMMANDS

    def rows() -> tuple[tuple[list[tuple[str, int, str, bytes]]], dict[str, Any]]:
        # Like the ledger's round: 400 aggregates, five consecutive versions each.
        ids = [uuid4().hex for _ in range(COMMANDS // PER_CASE)]
        made = [(ids[i // PER_CASE], i % PER_CASE + 1, t, s) for i, (t, s) in
                enumerate(world.states)]  # fmt: skip
        return (made,), {}

    calls = []

    def batch(batch_rows: list[tuple[str, int, str, bytes]]) -> None:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO stored_events VALUES (?,?,?,?)", batch_rows)
        conn.execute("COMMIT")
        calls.append(1)

    measure(WORKLOAD, "raw sqlite3", batch, events=COMMANDS, rounds=ROUNDS, setup=rows)
    count = conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
    conn.close()
    assert count == copied + COMMANDS * len(calls)
