"""eventsourcing's own recorder test cases, run against the ledger's recorder subclasses.

``caseledger.store`` replaces eventsourcing's row-by-row SQLite insert with one
``executemany`` under ``BEGIN IMMEDIATE`` (positions chosen in advance), runs write hooks
inside the write transaction on SQLite and PostgreSQL, and opens SQLite connections with
``synchronous=FULL``. The recorder contract those changes must keep (atomic batches,
integrity errors on conflicts, contiguous positions in commit order, notification
selection with start/stop/topics, concurrent writers and readers) is written down as
eventsourcing's shipped test cases in ``eventsourcing.tests.persistence``; here they run
against the recorders exactly as :func:`caseledger.store.open_store` builds them.

Each backend runs twice: plain, and with a write hook that copies every position it is
given into a side table, checked after the test against the log itself, so the hook path
is held to the same contract under the same (concurrent) load.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import AggregateRecorder, ApplicationRecorder, StoredEvent
from eventsourcing.tests import persistence as es_cases

from caseledger.store import Dialect, EventStore, Tx, open_store


class _PositionsHook:
    """Copies each (position, originator id, version) it is given into a side table."""

    def __init__(self, table: str) -> None:
        self.table = table

    def create_statements(self, dialect: Dialect) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {self.table} (position BIGINT PRIMARY KEY, "
            "originator_id TEXT NOT NULL, originator_version BIGINT NOT NULL)"
        ]

    def after_insert(
        self,
        tx: Tx,
        records: Sequence[StoredEvent],
        positions: Sequence[int],
        context: dict[str, Any],
    ) -> None:
        tx.executemany(
            f"INSERT INTO {self.table} (position, originator_id, originator_version) "
            "VALUES (?,?,?)",
            [
                (p, str(r.originator_id), r.originator_version)
                for p, r in zip(positions, records, strict=True)
            ],
        )


class _OurRecorders:
    """Builds recorders through ``open_store`` and closes them after the test.

    With ``WITH_HOOK`` the store also runs a :class:`_PositionsHook`, and after the test
    the side table must hold exactly the log's positions, ids and versions.
    """

    WITH_HOOK = False
    url: str
    hook_table = "conformance_positions"
    _stores: list[tuple[EventStore, _PositionsHook | None]]
    _threads: set[threading.Thread]

    def begin(self, url: str) -> None:
        self.url = url
        self._stores = []
        self._threads = set(threading.enumerate())

    def create_recorder(self) -> Any:
        store = open_store(self.url)
        hook = None
        if self.WITH_HOOK:
            hook = _PositionsHook(self.hook_table)
            store.add_hook(hook)
        self._stores.append((store, hook))
        return store.recorder

    def check_and_close(self) -> None:
        # eventsourcing's concurrency case stops its reader threads without joining them;
        # closing the store under a reader still inside SQLite crashes the process. (Other
        # new threads are the connection pools' own, stopped by closing the store.)
        for thread in set(threading.enumerate()) - self._threads:
            if thread.name.endswith("(read_continuously)"):
                thread.join(timeout=30)
        for store, hook in self._stores:
            try:
                if hook is not None:
                    logged = {
                        (n.id, str(n.originator_id), n.originator_version) for n in store.iter_log()
                    }
                    copied = {
                        (int(p), str(UUID(o)), int(v))
                        for p, o, v in store.query(
                            f"SELECT position, originator_id, originator_version FROM {hook.table}"
                        )
                    }
                    assert copied == logged, "the write hook saw other positions than the log"
            finally:
                store.close()


class _SQLiteFile(_OurRecorders):
    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> Iterator[None]:
        self.begin(str(tmp_path / "ledger.db"))
        yield
        self.check_and_close()


class _SQLiteMemory(_OurRecorders):
    @pytest.fixture(autouse=True)
    def _database(self) -> Iterator[None]:
        self.begin(":memory:")
        yield
        self.check_and_close()


class _Postgres(_OurRecorders):
    @pytest.fixture(autouse=True)
    def _database(self, pg_schema_url: str) -> Iterator[None]:
        self.begin(pg_schema_url)
        # Tables written by write hooks are named by the hook; qualify this one with the
        # test's schema so tests never share it.
        self.hook_table = f'"{pg_schema_url.rsplit("schema=", 1)[1]}".conformance_positions'
        yield
        self.check_and_close()


# -- application recorder -------------------------------------------------------------


class TestSQLiteFileApplicationRecorder(_SQLiteFile, es_cases.ApplicationRecorderTestCase):
    pass


class TestSQLiteFileApplicationRecorderWithHook(_SQLiteFile, es_cases.ApplicationRecorderTestCase):
    WITH_HOOK = True


class TestSQLiteMemoryApplicationRecorder(_SQLiteMemory, es_cases.ApplicationRecorderTestCase):
    pass


class TestSQLiteMemoryApplicationRecorderWithHook(
    _SQLiteMemory, es_cases.ApplicationRecorderTestCase
):
    WITH_HOOK = True


@pytest.mark.postgres
class TestPostgresApplicationRecorder(_Postgres, es_cases.ApplicationRecorderTestCase):
    def test_insert_subscribe(self) -> None:
        # eventsourcing runs its subscription case only for PostgreSQL (SQLite recorders
        # have no subscriptions); ours inherits LISTEN/NOTIFY and must keep it working.
        self.optional_test_insert_subscribe()


@pytest.mark.postgres
class TestPostgresApplicationRecorderWithHook(_Postgres, es_cases.ApplicationRecorderTestCase):
    WITH_HOOK = True


# -- positions of concurrent batches never interleave (the Merkle log relies on it) -------


class TestSQLiteFileNonInterleaving(_SQLiteFile, es_cases.NonInterleavingNotificationIDsBaseCase):
    WITH_HOOK = True


class TestSQLiteMemoryNonInterleaving(
    _SQLiteMemory, es_cases.NonInterleavingNotificationIDsBaseCase
):
    pass


@pytest.mark.postgres
class TestPostgresNonInterleaving(_Postgres, es_cases.NonInterleavingNotificationIDsBaseCase):
    WITH_HOOK = True


# -- aggregate recorder ---------------------------------------------------------------


class _AsAggregateRecorder(AggregateRecorder):
    """Our application recorder seen through the plain aggregate-recorder interface.

    eventsourcing's aggregate case expects ``insert_events`` to return None, since plain
    aggregate recorders have no log positions; an application recorder returns them (and
    its own case checks them). Only that return value is adapted: every call reaches our
    recorder unchanged, so the case still checks batch atomicity (a conflicting or
    self-duplicating batch writes nothing) and ``select_events`` ranges.
    """

    def __init__(self, recorder: ApplicationRecorder) -> None:
        self._recorder = recorder

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        self._recorder.insert_events(stored_events, **kwargs)

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        return self._recorder.select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)


class _AsAggregate:
    def create_recorder(self) -> AggregateRecorder:
        return _AsAggregateRecorder(super().create_recorder())  # type: ignore[misc]


class TestSQLiteFileAggregateRecorder(
    _AsAggregate, _SQLiteFile, es_cases.AggregateRecorderTestCase
):
    WITH_HOOK = True


class TestSQLiteMemoryAggregateRecorder(
    _AsAggregate, _SQLiteMemory, es_cases.AggregateRecorderTestCase
):
    pass


@pytest.mark.postgres
class TestPostgresAggregateRecorder(_AsAggregate, _Postgres, es_cases.AggregateRecorderTestCase):
    WITH_HOOK = True


def test_the_cases_run_against_our_subclasses(tmp_path: Path) -> None:
    """Guards the premise of this module: open_store builds the subclasses under test."""
    store = open_store(tmp_path / "ledger.db")
    try:
        recorder = store.recorder
        assert type(recorder).__name__ == "_LedgerSQLiteRecorder"
        assert isinstance(recorder, ApplicationRecorder)
        # Durable commits are part of what the subclasses promise.
        assert store.query("PRAGMA synchronous") == [(2,)]
    finally:
        store.close()


class _Refusing:
    """A write hook that fails when the write's context asks it to."""

    def create_statements(self, dialect: Dialect) -> list[str]:
        return []

    def after_insert(
        self,
        tx: Tx,
        records: Sequence[StoredEvent],
        positions: Sequence[int],
        context: dict[str, Any],
    ) -> None:
        if context.get("refuse"):
            raise RuntimeError("the hook refused")


def test_a_failing_write_hook_leaves_nothing_written(ledger_url: str) -> None:
    """Hooks run inside the write transaction: when one fails, the events are not written."""
    store = open_store(ledger_url)
    try:
        store.add_hook(_Refusing())
        store.append([StoredEvent(uuid4(), 1, "topic", b"kept")])
        refused = [uuid4(), uuid4()]
        records = [StoredEvent(i, 1, "topic", b"refused") for i in refused]
        with pytest.raises(RuntimeError, match="the hook refused"):
            store.append(records, {"refuse": True})
        assert [n.state for n in store.iter_log()] == [b"kept"]
        assert all(not store.read_aggregate(i) for i in refused)
    finally:
        store.close()
