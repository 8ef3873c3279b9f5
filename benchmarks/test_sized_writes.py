"""Writing into the demo ledgers: does a command cost more as the ledger grows?

The same demo ledgers as :mod:`benchmarks.test_demo_ledgers` (``CASELEDGER_BENCH_DEMO``,
10 thousand, 100 thousand and 1 million events by default), each copied afresh for this
module, since writing changes it. The commands are service checks (서비스점검) on the
active service links of the cases open at the end of the log, taken in turn, by each
case's own worker:

* ``single command, N events``: one ``ledger.check_service(...)`` per round, one
  durable transaction, 200 rounds; floor: ``BEGIN``, one ``INSERT`` of a row with the
  same columns and the same state bytes into the same ``stored_events`` table (so the
  same B-tree depth), ``COMMIT``, with plain ``sqlite3`` (WAL, ``synchronous=FULL``);
* ``batched append, N events``: 2,000 service checks inside one ``ledger.batch()`` per
  round, 5 rounds; floor: one ``executemany`` of 2,000 such rows between ``BEGIN`` and
  ``COMMIT``.

The floors run after both of the ledger's workloads, on the same copy (the rows they
insert are not the ledger's own, so the ledger must not read them). eventsourcing's
reference for these two workloads is measured on the recorded district of
:mod:`benchmarks.test_single_command` and :mod:`benchmarks.test_batched_append`: its copy
of a demo ledger
(``test_demo_ledgers``) keeps no map from our case ids to its aggregate ids.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from benchmarks.conftest import Measure
from benchmarks.report import OURS
from benchmarks.test_demo_ledgers import _sizes, copy_ledger, demo_ledger, remove_ledger
from caseledger import Ledger

NOTES = "방문 점검: 서비스 이용 중, 건강 상태 호전"
SINGLE_ROUNDS = 200
BATCH = 2000
BATCH_ROUNDS = 5
FLOOR = "raw sqlite3"


@dataclass
class Sized:
    path: Path
    ledger: Ledger
    events: int
    #: (case id, link id, worker) of every active service link of an open case.
    links: list[tuple[UUID, UUID, str]]
    at: datetime

    @property
    def label(self) -> str:
        return f"{self.events:,} events"


def _links(ledger: Ledger) -> list[tuple[UUID, UUID, str]]:
    found = []
    for entry in ledger.caseload():
        case = ledger.case(entry.case_id)
        found += [(case.id, link.link_id, case.worker) for link in case.active_links]
    return found


@pytest.fixture(scope="module", params=_sizes(), ids=str)
def sized(bench_dir: Path, request: pytest.FixtureRequest) -> Iterator[Sized]:
    source = demo_ledger(request.param, request)
    path = copy_ledger(source, bench_dir / f"writes-{source.name}")
    ledger = Ledger.open(path)
    events = len(ledger)
    links = _links(ledger)
    assert len(links) >= 100, "the demo ledger has too few active service links"
    yield Sized(path, ledger, events, links, datetime.now(UTC))
    ledger.close()
    remove_ledger(path)


def _check(s: Sized, link: tuple[UUID, UUID, str]) -> None:
    case, link_id, worker = link
    s.ledger.check_service(case, link_id=link_id, method="visit", progress=50, notes=NOTES,
                           by=worker, at=s.at)  # fmt: skip


class _Floor:
    """A plain sqlite3 connection writing rows like the ledger's last one, under a new id."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        found = self.conn.execute(
            "SELECT topic, state FROM stored_events ORDER BY rowid DESC LIMIT 1"
        ).fetchone()
        assert found is not None
        self.topic, self.state = str(found[0]), bytes(found[1])
        self.id = uuid4().hex
        self.versions = itertools.count(1)

    def row(self) -> tuple[str, int, str, bytes]:
        """The next row: the same topic and state bytes, the next version of the id."""
        return self.id, next(self.versions), self.topic, self.state

    def written(self) -> int:
        """How many rows this floor has inserted."""
        found = self.conn.execute(
            "SELECT COUNT(*) FROM stored_events WHERE originator_id = ?", (self.id,)
        ).fetchone()
        return int(found[0])


_INSERT = (
    "INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES (?,?,?,?)"
)


def test_single_command(sized: Sized, measure: Measure) -> None:
    links = itertools.cycle(sized.links)
    before = len(sized.ledger)
    measure(f"single command, {sized.label}", OURS, lambda: _check(sized, next(links)),
            events=1, rounds=SINGLE_ROUNDS, warmup_rounds=10)  # fmt: skip
    assert len(sized.ledger) == before + SINGLE_ROUNDS + 10


def test_batched_append(sized: Sized, measure: Measure) -> None:
    links = itertools.cycle(sized.links)
    before = len(sized.ledger)

    def batch() -> None:
        with sized.ledger.batch():
            for _ in range(BATCH):
                _check(sized, next(links))

    measure(f"batched append, {sized.label}", OURS, batch,
            events=BATCH, rounds=BATCH_ROUNDS, warmup_rounds=1)  # fmt: skip
    assert len(sized.ledger) == before + BATCH * (BATCH_ROUNDS + 1)


def test_batched_append_floor(sized: Sized, measure: Measure) -> None:
    floor = _Floor(sized.path)
    conn = floor.conn

    def insert() -> None:
        rows = [floor.row() for _ in range(BATCH)]
        conn.execute("BEGIN")
        conn.executemany(_INSERT, rows)
        conn.execute("COMMIT")

    measure(f"batched append, {sized.label}", FLOOR, insert,
            events=BATCH, rounds=BATCH_ROUNDS, warmup_rounds=1)  # fmt: skip
    assert floor.written() == BATCH * (BATCH_ROUNDS + 1)
    conn.close()


def test_single_command_floor(sized: Sized, measure: Measure) -> None:
    floor = _Floor(sized.path)
    conn = floor.conn

    def insert() -> None:
        conn.execute("BEGIN")
        conn.execute(_INSERT, floor.row())
        conn.execute("COMMIT")

    measure(f"single command, {sized.label}", FLOOR, insert,
            events=1, rounds=SINGLE_ROUNDS, warmup_rounds=10)  # fmt: skip
    assert floor.written() == SINGLE_ROUNDS + 10
    conn.close()
