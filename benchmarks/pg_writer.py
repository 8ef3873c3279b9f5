"""A writer process for the PostgreSQL benchmark: its own connection, its own cases.

:func:`serve` runs in a child process started by :mod:`benchmarks.test_postgres` (spawned,
so it shares nothing with the parent but its arguments). It opens its own ``Ledger`` (or
eventsourcing ``Application``) on the benchmark's PostgreSQL schema, runs a few commands
as a warm-up, says it is ready, then for every number ``n`` it receives runs ``n``
service checks on its own cases, in turn, and answers ``n``; ``None`` ends it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any
from uuid import UUID

__all__ = ["NOTES", "WARMUP", "Work", "follow", "serve"]

NOTES = "방문 점검: 서비스 이용 중, 건강 상태 호전"
#: Commands each writer runs before it says it is ready.
WARMUP = 10


@dataclass(frozen=True)
class Work:
    """What one writer needs: where to write and which service links to check."""

    #: ``caseledger`` (read models kept inline, in each write), ``caseledger-follow``
    #: (writers leave the read models to a follower process), ``eventsourcing`` or ``raw``
    #: (one plain INSERT per durable transaction).
    kind: str
    #: caseledger: the ledger's URL (with ``?schema=``); eventsourcing: unused.
    url: str
    #: eventsourcing: its environment (``PERSISTENCE_MODULE``, ``POSTGRES_*``).
    env: dict[str, str]
    #: (case id, link id, officer) of this writer's cases only.
    links: list[tuple[UUID, UUID, str]]
    #: eventsourcing: our case id -> its aggregate id.
    es_ids: dict[UUID, UUID]
    #: eventsourcing: the fields of one ServiceChecked event, as the ledger recorded it.
    fields: dict[str, Any]
    #: When the checks happen (aware).
    at: datetime
    #: raw: the topic and state bytes every inserted row carries.
    row: tuple[str, bytes] = ("", b"")


def _caseledger(work: Work) -> tuple[Any, Any]:
    from caseledger import Ledger

    mode = "follow" if work.kind == "caseledger-follow" else "inline"
    ledger = Ledger.open(work.url, projections=mode)
    links = itertools.cycle(work.links)

    def command() -> None:
        case, link_id, officer = next(links)
        ledger.check_service(case, link_id=link_id, method="visit", progress=50,
                             notes=NOTES, by=officer, at=work.at)  # fmt: skip

    return command, ledger.close


def _eventsourcing(work: Work) -> tuple[Any, Any]:
    from benchmarks.workload import EsApp

    app = EsApp(env=work.env)
    links = itertools.cycle(work.links)

    def command() -> None:
        case_id, link_id, officer = next(links)
        case: Any = app.repository.get(work.es_ids[case_id])
        if link_id not in case.links:
            raise AssertionError("the mirrored case lacks the link")
        case.check_service(**{**work.fields, "link_id": link_id,
                              "household_id": case.household_id, "actor": officer,
                              "recorded_at": datetime.now(UTC)})  # fmt: skip
        app.save(case)

    return command, app.close


def _raw(work: Work) -> tuple[Any, Any]:
    import uuid as uuid_module
    from urllib.parse import parse_qs, urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(work.url)
    schema = parse_qs(parts.query)["schema"][0]
    conn = psycopg.connect(urlunsplit(parts._replace(query="")), autocommit=True)
    sql = (
        f'INSERT INTO "{schema}".raw_events (originator_id, originator_version, topic, state) '
        "VALUES (%s, %s, %s, %s)"
    )
    me = uuid_module.uuid4()
    versions = itertools.count(1)
    topic, state = work.row

    def command() -> None:
        conn.execute(sql, (me, next(versions), topic, state))

    return command, conn.close


def serve(work: Work, conn: Connection) -> None:
    """Run commands when told to; see the module doc."""
    kinds = {"eventsourcing": _eventsourcing, "raw": _raw}
    command, close = kinds.get(work.kind, _caseledger)(work)
    try:
        for _ in range(WARMUP):
            command()
        conn.send("ready")
        while (n := conn.recv()) is not None:
            for _ in range(n):
                command()
            conn.send(n)
    finally:
        close()
        conn.close()


def follow(url: str, stop: Any) -> None:
    """Keep the ledger's read models up to date until ``stop`` (an Event) is set."""
    from caseledger import Ledger

    with Ledger.open(url, projections="follow") as ledger:
        ledger.projections.follow(poll=0.05, batch_size=1000, stop=stop)
