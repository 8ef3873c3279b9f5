"""PostgreSQL: the single-command workload from one writer process and from four at once.

The server comes from ``CASELEDGER_BENCH_POSTGRES``, else ``CASELEDGER_TEST_POSTGRES``,
else ``postgresql://postgres@127.0.0.1:5432/test`` if a server answers there; without
one the benchmarks skip, saying so. Each run works in fresh schemas (one for the ledger,
one for eventsourcing), dropped at the end.

A district of 240 cases is recorded through the ledger (and copied event for event into
eventsourcing's own tables). Its open cases are dealt out to four writers, each with
cases of its own. Every writer is a separate OS process (spawned) with its own
connection: a ``Ledger`` on the same schema, or an eventsourcing ``Application`` on its
PostgreSQL module with its defaults. A round tells each writer to run
``CASELEDGER_BENCH_PG_COMMANDS`` service checks (default 300) and waits until all have
finished; events/s reads commands per second over all writers:

* ``caseledger``: ``ledger.check_service(...)``, one durable transaction each;
* ``caseledger, follower``: the same, with the writers opened with
  ``projections="follow"`` and one more process keeping the read models
  (``ledger.projections.follow()``, polling every 50 ms) while they write: the
  configuration the PostgreSQL guide recommends for many writers. After the rounds the
  follower must catch up with every event before it is stopped;
* ``eventsourcing defaults``: ``app.repository.get(case)``, one ``@event`` method call,
  ``app.save(case)``;
* ``raw psycopg`` (the floor): one ``INSERT`` of a row with the same columns and the
  same state bytes as the ledger's event, in its own durable transaction, into a plain
  table with the same unique key.

With one writer only the first writer's cases are used. The growth table of the summary
gives the four writers' rate ÷ the one writer's.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

import pytest

from benchmarks.conftest import Measure
from benchmarks.pg_writer import Work, follow, serve
from benchmarks.report import OURS
from benchmarks.workload import AT, EsApp, build_district, mirror_into, payload_of
from caseledger import Ledger

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
CASES = 240
WRITERS = (1, 4)
ROUNDS = 3
COMMANDS = int(os.environ.get("CASELEDGER_BENCH_PG_COMMANDS", "300"))


def _server() -> str:
    """The server's URL, or skip with the reason."""
    psycopg = pytest.importorskip("psycopg", reason="PostgreSQL benchmarks need psycopg")
    chosen = os.environ.get("CASELEDGER_BENCH_POSTGRES") or os.environ.get(
        "CASELEDGER_TEST_POSTGRES"
    )
    url = chosen or DEFAULT_URL
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        how = "" if chosen else " (set CASELEDGER_BENCH_POSTGRES=postgresql://...)"
        pytest.skip(f"no PostgreSQL server at {url}{how}: {error}".strip())
    return url


def _with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def _es_env(url: str, schema: str) -> dict[str, str]:
    """eventsourcing's PostgreSQL settings for the server at ``url`` and ``schema``."""
    parts = urlsplit(url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parts.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or os.environ.get("PGPASSWORD", "")),
        "POSTGRES_SCHEMA": schema,
    }


@dataclass
class World:
    url: str
    es_env: dict[str, str]
    #: Each writer's service links: (case id, link id, officer), no case in two writers.
    shares: list[list[tuple[UUID, UUID, str]]]
    es_ids: dict[UUID, UUID]
    fields: dict[str, Any]
    #: The stored topic and state bytes of one service check, for the raw floor.
    row: tuple[str, bytes]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    import psycopg

    server = _server()
    name = "bench_" + uuid.uuid4().hex[:12]
    schemas = (name, name + "_es")
    with psycopg.connect(server, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = _with_schema(server, schemas[0])
        with Ledger.open(url) as ledger:
            district = build_district(ledger, cases=CASES)
            case, link_id, _ = district.links[0]
            sample = ledger.check_service(case, link_id=link_id, method="visit", progress=50,
                                          by=district.officers[case], at=AT)  # fmt: skip
            env = _es_env(server, schemas[1])
            app = EsApp(env=env)  # creates eventsourcing's tables before the writers start
            es_ids = mirror_into(app, ledger)
            app.close()
        with psycopg.connect(server, autocommit=True) as conn:
            found = conn.execute(
                f'SELECT topic, state FROM "{schemas[0]}".stored_events '
                "ORDER BY notification_id DESC LIMIT 1"
            ).fetchone()
            assert found is not None
            conn.execute(
                f'CREATE TABLE "{schemas[0]}".raw_events (id BIGSERIAL PRIMARY KEY, '
                "originator_id UUID NOT NULL, originator_version BIGINT NOT NULL, "
                "topic TEXT NOT NULL, state BYTEA NOT NULL, "
                "UNIQUE (originator_id, originator_version))"
            )
        open_cases = sorted({link[0] for link in district.links})
        shares: list[list[tuple[UUID, UUID, str]]] = [[] for _ in range(max(WRITERS))]
        owner = {case: i % len(shares) for i, case in enumerate(open_cases)}
        for case, link_id, _ in district.links:
            shares[owner[case]].append((case, link_id, district.officers[case]))
        yield World(url, env, shares, es_ids, payload_of(sample), (found[0], bytes(found[1])))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


FOLLOWED = "caseledger, follower"
KINDS = {
    OURS: "caseledger",
    FOLLOWED: "caseledger-follow",
    "eventsourcing defaults": "eventsourcing",
    "raw psycopg": "raw",
}


def _start(world: World, kind: str, writers: int) -> tuple[list[Any], list[Connection]]:
    context = multiprocessing.get_context("spawn")
    processes, conns = [], []
    for share in world.shares[:writers]:
        work = Work(kind, world.url, world.es_env, share, world.es_ids, world.fields, AT, world.row)
        parent, child = context.Pipe()
        process = context.Process(target=serve, args=(work, child), daemon=True)
        process.start()
        child.close()
        processes.append(process)
        conns.append(parent)
    for conn in conns:
        if conn.recv() != "ready":
            raise AssertionError("a writer did not start")
    return processes, conns


def _stop(processes: list[Any], conns: list[Connection]) -> None:
    for conn in conns:
        with contextlib.suppress(OSError):  # a writer that failed has gone already
            conn.send(None)
        conn.close()
    for process in processes:
        process.join(timeout=60)
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    assert not failed, f"writer processes ended with {failed}"


@pytest.mark.parametrize("writers", WRITERS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_single_command(world: World, measure: Measure, kind: str, writers: int) -> None:
    follower = stop = None
    if kind == FOLLOWED:
        context = multiprocessing.get_context("spawn")
        stop = context.Event()
        follower = context.Process(target=follow, args=(world.url, stop), daemon=True)
        follower.start()
    processes, conns = _start(world, KINDS[kind], writers)
    done = []

    def round_() -> None:
        for conn in conns:
            conn.send(COMMANDS)
        done.append(sum(conn.recv() for conn in conns))

    try:
        label = f"{writers} writer" + ("s" if writers > 1 else "")
        measure(f"PostgreSQL single command, {label}", kind, round_,
                events=COMMANDS * writers, rounds=ROUNDS)  # fmt: skip
    finally:
        _stop(processes, conns)
        if follower is not None and stop is not None:
            _caught_up(world.url)
            stop.set()
            follower.join(timeout=60)
    assert done
    assert all(n == COMMANDS * writers for n in done)


def _caught_up(url: str, timeout: float = 120.0) -> None:
    """Wait until the follower has applied every event; fail if it does not."""
    with Ledger.open(url, projections="follow") as ledger:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if min(ledger.projections.positions().values()) >= len(ledger):
                return
            time.sleep(0.1)
    raise AssertionError("the follower did not catch up with the writers")
