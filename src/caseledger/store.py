"""The event store: eventsourcing's recorders, chosen by URL and tuned for the ledger.

``open_store(url)`` gives an :class:`EventStore` over one of:

* ``":memory:"``: an SQLite database in memory (tests, notebooks); gone when closed;
* a file path (default ``./caseledger.db``) or ``sqlite:///path``: an SQLite file in WAL
  mode with ``synchronous=FULL``, so an acknowledged write survives power loss;
* ``postgresql://user@host:port/dbname``: PostgreSQL through eventsourcing's own
  PostgreSQL module (install the ``postgres`` extra). A ``schema=NAME`` query parameter
  puts every table in that schema.

Stored records are eventsourcing ``StoredEvent`` rows (originator id, version, topic,
state bytes); the log position is eventsourcing's notification id. Everything else the
ledger keeps (idempotency keys, leaf hashes, read models) is written by *write hooks*
inside the same transaction as the events, so a command is recorded with all of it or
not at all.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
import uuid
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError as _ESIntegrityError
from eventsourcing.persistence import Notification, PersistenceError, StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteDatastore,
)

from caseledger.errors import ConcurrencyError, ConfigurationError, StoreError

if TYPE_CHECKING:  # pragma: no cover
    from eventsourcing.postgres import PostgresApplicationRecorder

__all__ = [
    "DEFAULT_URL",
    "Dialect",
    "EventStore",
    "Notification",
    "StoredEvent",
    "Tx",
    "WriteHook",
    "open_store",
]

#: Where the ledger lives when no URL is given.
DEFAULT_URL = "caseledger.db"

Dialect = Literal["sqlite", "postgres"]


_NAME = r'(?:"?\w+"?\.)?"?(\w+)"?'
_READ_FROM = re.compile(rf"\b(?:FROM|JOIN)\s+{_NAME}", re.IGNORECASE)
_WRITE = re.compile(rf"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+{_NAME}", re.IGNORECASE)
_NO_WRITE = re.compile(r"^\s*(?:SELECT|LOCK|SET|NOTIFY)\b", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def _tables_read(sql: str) -> frozenset[str]:
    return frozenset(name.lower() for name in _READ_FROM.findall(sql))


@functools.lru_cache(maxsize=1024)
def _tables_written(sql: str) -> frozenset[str] | None:
    """The table ``sql`` writes; None for a statement that writes none; empty if unknown."""
    if _NO_WRITE.match(sql):
        return None
    found = _WRITE.match(sql)
    return frozenset([found.group(1).lower()]) if found else frozenset()


def _read_key(sql: str, params: Sequence[Any]) -> tuple[str, tuple[Any, ...]] | None:
    """What a prefetched read is found by; None if its parameters cannot be (unhashable)."""
    key = (sql, tuple(params))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _in_pipeline(cursor: Any) -> bool:
    connection = getattr(cursor, "connection", None)
    return connection is not None and bool(connection.pgconn.pipeline_status)


class Tx:
    """A cursor inside a ledger transaction, speaking one SQL dialect.

    Statements use ``?`` placeholders on both backends; for PostgreSQL they are
    rewritten to ``%s`` once and cached.
    """

    __slots__ = ("_cursor", "_prefetched", "_ready", "dialect")
    _converted: dict[str, str] = {}  # noqa: RUF012 - a process-wide cache on purpose

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        self.dialect: Dialect = dialect
        #: Reads sent ahead (:meth:`prefetch`), by statement and parameters, with the
        #: tables they read.
        self._prefetched: dict[tuple[str, tuple[Any, ...]], tuple[Any, frozenset[str]]] = {}
        #: The current cursor holds the whole result of its last query already.
        self._ready = False

    def _sql(self, sql: str) -> str:
        if self.dialect == "sqlite":
            return sql
        converted = self._converted.get(sql)
        if converted is None:
            converted = self._converted[sql] = sql.replace("?", "%s")
        return converted

    def prefetch(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Send a read (or a lock it needs) now; a later identical :meth:`execute` takes it.

        Inside the PostgreSQL write transaction, statements travel in a pipeline: a read
        sent here goes to the server with the statements before it and costs no round
        trip of its own. The later ``execute`` of the same statement with the same
        parameters then fetches nothing: it takes these rows, unless a statement run
        meanwhile wrote to a table the read names (then it runs again). Elsewhere
        (SQLite, or outside a pipeline) this does nothing.
        """
        if self.dialect != "postgres" or not _in_pipeline(self._cursor):
            return
        key = _read_key(sql, params)
        if key is None:
            return
        cursor = self._cursor.connection.cursor()
        # Never as a prepared statement: sent behind the insert, this is skipped by the
        # server if the insert fails (another writer came first), and psycopg would
        # still count a statement it was preparing then as prepared, failing every later
        # use of it on this connection ("prepared statement ... does not exist").
        cursor.execute(self._sql(sql), params, prepare=False)
        self._prefetched[key] = (cursor, _tables_read(sql))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement."""
        if self._prefetched:
            key = _read_key(sql, params)
            found = self._prefetched.pop(key, None) if key is not None else None
            if found is not None:
                self._cursor, self._ready = found[0], True
                return
            self._forget(sql)
        self._ready = False
        self._cursor.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows."""
        if rows:
            if self._prefetched:
                self._forget(sql)
            self._ready = False
            self._cursor.executemany(self._sql(sql), rows)
            if self.dialect == "postgres":
                # Inside eventsourcing's pipelined insert, a query run on the same psycopg
                # cursor after a large executemany() can be handed the INSERT's result;
                # a fresh cursor of the same connection (same transaction) is not.
                self._cursor = self._cursor.connection.cursor()

    def _forget(self, sql: str) -> None:
        """Drop the prefetched reads that ``sql`` may change (all, if it is not plain)."""
        written = _tables_written(sql)
        if written is None:
            return
        for key, (_, tables) in list(self._prefetched.items()):
            if not written or written & tables:
                del self._prefetched[key]

    def _settle(self) -> None:
        # Inside eventsourcing's PostgreSQL write transaction the connection is in
        # pipeline mode, where psycopg may hand a fetch the result of an earlier statement
        # if later results have not arrived yet. Leaving a nested pipeline block sends a
        # Sync and collects every result, so the fetch sees the query just executed.
        if self.dialect == "postgres" and not self._ready and _in_pipeline(self._cursor):
            with self._cursor.connection.pipeline():
                pass

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Rows of the last query, as tuples."""
        self._settle()
        rows: list[Any] = self._cursor.fetchall()
        if not rows or type(rows[0]) is tuple:
            return rows  # sqlite3's rows are tuples already (a log read fetches 100,000s)
        return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row of the last query, as a tuple, or None."""
        self._settle()
        r = self._cursor.fetchone()
        if r is None:
            return None
        return tuple(r.values()) if isinstance(r, dict) else tuple(r)

    def stream(
        self, sql: str, params: Sequence[Any] = (), *, size: int = 5000
    ) -> Generator[list[tuple[Any, ...]], None, None]:
        """Run one query in this transaction and yield its rows as tuples, ``size`` at a time.

        The query has a cursor of its own, so other statements may run between pages. On
        SQLite the rows are read as they are consumed (memory holds one page); on
        PostgreSQL the driver holds the whole result, so page large reads by key there.
        """
        if self.dialect == "sqlite":
            cursor = self._cursor.connection.cursor()
            cursor.row_factory = None  # plain tuples: no row objects to convert
            try:
                cursor.execute(sql, params)
                while rows := cursor.fetchmany(size):
                    yield rows
            finally:
                cursor.close()
            return
        self._settle()
        cursor = self._cursor.connection.cursor()
        try:
            cursor.execute(self._sql(sql), params)
            while rows := cursor.fetchmany(size):
                yield [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]
        finally:
            cursor.close()


class WriteHook(Protocol):
    """Something that writes its own rows in the same transaction as new events.

    A hook may also have ``prefetch(tx, records, context)``: called on PostgreSQL after
    the records' insert is sent and before its result is awaited, it sends the reads
    ``after_insert`` will make (:meth:`Tx.prefetch`), so that they cost no round trip of
    their own while the log is locked against other writers.
    """

    def create_statements(self, dialect: Dialect) -> list[str]:
        """DDL for this hook's tables (idempotent: ``CREATE ... IF NOT EXISTS``)."""

    def after_insert(
        self,
        tx: Tx,
        records: Sequence[StoredEvent],
        positions: Sequence[int],
        context: dict[str, Any],
    ) -> None:
        """Called inside the write transaction after the records were inserted."""


# ---------------------------------------------------------------------------
# SQLite


class _DurableSQLitePool(SQLiteConnectionPool):
    """Connections with ``synchronous=FULL`` (durable commits) and foreign keys on.

    ``secure_delete`` makes SQLite overwrite deleted content with zeros, on every
    connection: erasing a household deletes its wrapped data key, and no stale copy
    may stay behind in free space of a page another connection rewrote.
    """

    def _create_connection(self) -> SQLiteConnection:
        conn = super()._create_connection()
        raw = conn._sqlite_conn
        raw.execute("PRAGMA synchronous=FULL")
        raw.execute("PRAGMA foreign_keys=ON")
        raw.execute("PRAGMA secure_delete=ON")
        return conn


class _SQLiteDatastore(SQLiteDatastore):
    def __init__(self, db_name: str, lock_timeout: int = 30) -> None:
        super().__init__(db_name, lock_timeout=lock_timeout, pool_size=4, pool_timeout=30.0)
        self.pool = _DurableSQLitePool(
            db_name=db_name, lock_timeout=lock_timeout, pool_size=4, pool_timeout=30.0
        )


class _LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    """eventsourcing's SQLite application recorder with batch inserts and write hooks.

    eventsourcing inserts row by row to learn each ``rowid``. Here the transaction
    begins ``IMMEDIATE`` (taking the write lock before reading), so the next positions
    are known in advance and one ``executemany`` inserts the whole batch; the recorded
    positions stay contiguous and in commit order, which the Merkle log relies on.
    """

    hooks: list[WriteHook]

    def __init__(self, datastore: SQLiteDatastore) -> None:
        super().__init__(datastore)
        self.hooks = []
        # The table name is ours, never input.
        self._insert_with_rowid = (
            f"INSERT INTO {self.events_table_name} "  # noqa: S608
            "(rowid, originator_id, originator_version, topic, state) VALUES (?,?,?,?,?)"
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with self.datastore.get_connection(commit=True) as conn:
            raw: sqlite3.Connection = conn._sqlite_conn
            cursor = raw.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    positions = self._insert_batch(cursor, stored_events, **kwargs)
                except BaseException:
                    raw.rollback()
                    raise
                raw.commit()
            except sqlite3.IntegrityError as e:
                raise _ESIntegrityError(e) from e
            except sqlite3.Error as e:
                raise PersistenceError(e) from e
            finally:
                cursor.close()
        return positions

    def _insert_batch(
        self, cursor: sqlite3.Cursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> list[int]:
        cursor.execute(self.select_max_notification_id_statement)
        last = cursor.fetchone()[0] or 0
        positions = list(range(last + 1, last + 1 + len(stored_events)))
        cursor.executemany(
            self._insert_with_rowid,
            [
                (
                    p,
                    s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
                    s.originator_version,
                    s.topic,
                    s.state,
                )
                for p, s in zip(positions, stored_events, strict=True)
            ],
        )
        if self.hooks:
            tx = Tx(cursor, "sqlite")
            context: dict[str, Any] = kwargs.get("context", {})
            for hook in self.hooks:
                hook.after_insert(tx, stored_events, positions, context)
        return positions


# ---------------------------------------------------------------------------
# PostgreSQL


def _postgres_recorder_class() -> type[PostgresApplicationRecorder]:
    try:
        from eventsourcing.postgres import PostgresApplicationRecorder
    except ImportError as e:  # pragma: no cover - depends on the environment
        msg = "PostgreSQL support needs the 'postgres' extra: pip install 'caseledger[postgres]'"
        raise ConfigurationError(msg) from e

    import psycopg

    class _HookFailed(BaseException):
        """Carries a write hook's error out of eventsourcing's write transaction.

        eventsourcing's ``insert_events`` keeps any ``Exception`` raised after the insert
        and re-raises it only after its transaction block, which therefore commits: the
        events would stay written although the hook failed. Not being an ``Exception``,
        this passes through that block and rolls the transaction back.
        """

        def __init__(self, error: Exception) -> None:
            super().__init__(error)
            self.error = error

    class _LedgerPostgresRecorder(PostgresApplicationRecorder):
        """eventsourcing's PostgreSQL recorder, running write hooks in its transaction."""

        hooks: list[WriteHook]

        def insert_events(
            self, stored_events: Sequence[StoredEvent], **kwargs: Any
        ) -> Sequence[int] | None:
            try:
                ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs, _txs=[])
            except _HookFailed as failed:
                error = failed.error
                if isinstance(error, psycopg.IntegrityError):
                    raise _ESIntegrityError(error) from error
                if isinstance(error, psycopg.Error):
                    raise PersistenceError(error) from error
                raise error from None
            return ids

        def _insert_stored_events(
            self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
        ) -> None:
            super()._insert_stored_events(curs, stored_events, **kwargs)
            # The hooks' reads go with the table lock and the insert, in one round trip
            # (eventsourcing syncs the pipeline next): the lock is held for less time.
            tx = Tx(curs.connection.cursor(), "postgres")
            context: dict[str, Any] = kwargs.get("context", {})
            try:
                for hook in self.hooks:
                    prefetch = getattr(hook, "prefetch", None)
                    if prefetch is not None:
                        prefetch(tx, stored_events, context)
            except Exception as e:
                raise _HookFailed(e) from e
            kwargs["_txs"].append(tx)

        def _fetch_ids_after_insert_events(
            self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
        ) -> Sequence[int] | None:
            ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
            if self.hooks and ids:
                # The transaction's Tx, holding the reads the hooks sent ahead (the last
                # one made: eventsourcing may retry the whole insert).
                tx: Tx = kwargs["_txs"][-1]
                context: dict[str, Any] = kwargs.get("context", {})
                try:
                    for hook in self.hooks:
                        hook.after_insert(tx, stored_events, ids, context)
                except Exception as e:
                    raise _HookFailed(e) from e
            return ids

    return _LedgerPostgresRecorder


def _postgres_datastore_class() -> Any:
    from eventsourcing.postgres import PostgresDatastore

    class _LedgerPostgresDatastore(PostgresDatastore):
        """Connections whose ``search_path`` is the ledger's schema.

        eventsourcing qualifies its own tables with the schema; the ledger's other tables
        (idempotency keys, leaf hashes, read models) are found through ``search_path``.
        """

        def after_connect_func(self) -> Any:
            base = super().after_connect_func()
            schema = self.schema

            def after_connect(conn: Any) -> None:
                base(conn)
                if schema != "public":
                    from psycopg import sql

                    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))

            return after_connect

    return _LedgerPostgresDatastore


# ---------------------------------------------------------------------------
# The store


@dataclass(frozen=True)
class _Location:
    dialect: Dialect
    sqlite_name: str = ""
    pg_kwargs: tuple[tuple[str, str], ...] = ()
    schema: str = ""
    display: str = ""


def _parse_url(url: str | Path | None) -> _Location:
    text = str(url) if url is not None else DEFAULT_URL
    text = text.strip()
    if not text:
        msg = "the database location is empty: give a file path, ':memory:' or a postgresql:// URL"
        raise ConfigurationError(msg)
    if text.startswith(("postgresql://", "postgres://")):
        try:
            from psycopg.conninfo import conninfo_to_dict
        except ImportError as e:
            msg = (
                "PostgreSQL support needs the 'postgres' extra: pip install 'caseledger[postgres]'"
            )
            raise ConfigurationError(msg) from e
        schema = ""
        match = re.search(r"[?&]schema=([A-Za-z_][A-Za-z0-9_]*)", text)
        if match:
            schema = match.group(1)
            text = re.sub(r"([?&])schema=[A-Za-z_][A-Za-z0-9_]*&?", r"\1", text).rstrip("?&")
        try:
            params = conninfo_to_dict(text)
        except Exception as e:
            msg = f"not a valid PostgreSQL URL: {e}"
            raise ConfigurationError(msg) from e
        if not params.get("dbname"):
            msg = (
                "the PostgreSQL URL names no database, e.g. postgresql://user@localhost/caseledger"
            )
            raise ConfigurationError(msg)
        kwargs = tuple(sorted((k, str(v)) for k, v in params.items()))
        return _Location("postgres", pg_kwargs=kwargs, schema=schema, display=_redact(text))
    if text == ":memory:":
        name = f"file:caseledger-{uuid.uuid4().hex}?mode=memory&cache=shared"
        return _Location("sqlite", sqlite_name=name, display=":memory:")
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        msg = f"unknown database scheme {scheme!r}: use a file path, ':memory:' or postgresql://"
        raise ConfigurationError(msg)
    path = Path(text)
    if path.is_dir():
        msg = f"{text} is a directory, not a database file"
        raise ConfigurationError(msg)
    if not path.parent.exists():
        msg = f"the folder {path.parent} does not exist: create it first"
        raise ConfigurationError(msg)
    return _Location("sqlite", sqlite_name=str(path), display=str(path))


def _redact(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class EventStore:
    """The ordered, append-only log of stored event records, on SQLite or PostgreSQL.

    Use :func:`open_store` to make one. Not usually used directly: :class:`~caseledger.Ledger`
    wraps it. Safe to share between threads.
    """

    def __init__(self, location: _Location) -> None:
        self.dialect: Dialect = location.dialect
        self.display = location.display
        self._hooks: list[WriteHook] = []
        self._lock = threading.Lock()
        if location.dialect == "sqlite":
            self._sqlite_ds = _SQLiteDatastore(location.sqlite_name)
            self._recorder: Any = _LedgerSQLiteRecorder(self._sqlite_ds)
        else:
            kw = dict(location.pg_kwargs)
            try:
                ds = _postgres_datastore_class()(
                    dbname=kw.pop("dbname"),
                    host=kw.pop("host", "localhost"),
                    port=kw.pop("port", "5432"),
                    user=kw.pop("user", "postgres"),
                    password=kw.pop("password", ""),
                    schema=location.schema,
                    pool_size=4,
                    max_overflow=4,
                    connect_timeout=10,
                )
            except Exception as e:  # pragma: no cover - driver specific
                msg = f"cannot connect to {location.display}: {e}"
                raise StoreError(msg) from e
            self._pg_ds = ds
            self._recorder = _postgres_recorder_class()(ds)
            if location.schema:
                with ds.transaction(commit=True) as curs:
                    curs.execute(f'CREATE SCHEMA IF NOT EXISTS "{location.schema}"')
        self._recorder.hooks = self._hooks
        table = self._recorder.events_table_name  # ours, never input
        self._changes_sql = (
            f"SELECT rowid, originator_id, originator_version FROM {table} "  # noqa: S608
            "WHERE rowid > ? ORDER BY rowid LIMIT ?"
        )
        self._exists_sql = f"SELECT 1 FROM {table} WHERE originator_id = ? LIMIT 1"  # noqa: S608
        self._pg_changes_sql: Any = None
        if location.dialect == "postgres":
            from psycopg.sql import SQL, Identifier

            self._pg_changes_sql = SQL(
                "SELECT notification_id, originator_id, originator_version FROM {}.{} "
                "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
            ).format(Identifier(self._pg_ds.schema), Identifier(table))
        try:
            with self.schema_lock():
                self._recorder.create_table()
        except PersistenceError as e:
            msg = f"cannot open the event store at {location.display}: {e}"
            raise StoreError(msg) from e
        except sqlite3.DatabaseError as e:
            msg = f"cannot open the event store at {location.display}: {e}"
            raise StoreError(msg) from e
        except Exception as e:
            if self.dialect == "postgres":
                msg = f"cannot open the event store at {location.display}: {e}"
                raise StoreError(msg) from e
            raise

    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        """Serialise schema creation between processes opening the same PostgreSQL database.

        Concurrent ``CREATE ... IF NOT EXISTS`` and eventsourcing's ``CREATE OR REPLACE
        FUNCTION`` fail ("duplicate key", "tuple concurrently updated") when two processes
        open a new database at once; a session advisory lock makes the second wait. Not
        re-entrant: hold it once, around all of an opening's schema work.
        """
        if self.dialect != "postgres":
            yield
            return
        with self._pg_ds.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(7061626)")
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(7061626)")

    @property
    def recorder(self) -> Any:
        """The underlying eventsourcing application recorder."""
        return self._recorder

    # -- extension tables ------------------------------------------------------------------

    def add_hook(self, hook: WriteHook) -> None:
        """Create the hook's tables and run it in every later write transaction."""
        self.run_ddl(hook.create_statements(self.dialect))
        self._hooks.append(hook)

    def run_ddl(self, statements: Sequence[str]) -> None:
        """Run schema statements in one transaction."""
        if statements:
            with self.transaction() as tx:
                for statement in statements:
                    tx.execute(statement)

    @contextmanager
    def transaction(self, *, commit: bool = True, durable: bool = True) -> Iterator[Tx]:
        """A transaction on the store's database (for extension tables, not the events).

        ``durable=False`` is for work that can be redone from the log (a projection
        rebuild): on SQLite its commit skips the ``fsync`` of ``synchronous=FULL``
        (``NORMAL`` in WAL mode never corrupts the database; a power cut may only lose
        this transaction, which is then redone). PostgreSQL ignores it.
        """
        try:
            if self.dialect == "sqlite":
                with self._sqlite_ds.get_connection(commit=commit) as conn:
                    raw: sqlite3.Connection = conn._sqlite_conn
                    cursor = raw.cursor()
                    relaxed = commit and not durable
                    if relaxed:
                        # SQLite refuses to change the safety level inside a transaction.
                        cursor.execute("PRAGMA synchronous=NORMAL")
                    try:
                        cursor.execute("BEGIN IMMEDIATE" if commit else "BEGIN")
                        try:
                            yield Tx(cursor, "sqlite")
                        except BaseException:
                            raw.rollback()
                            raise
                        if commit:
                            raw.commit()
                        else:
                            raw.rollback()
                    finally:
                        if relaxed:
                            cursor.execute("PRAGMA synchronous=FULL")
                    cursor.close()
            else:
                with self._pg_ds.transaction(commit=commit) as curs:
                    yield Tx(curs, "postgres")
        except (sqlite3.Error, PersistenceError) as e:
            raise StoreError(f"database error on {self.display}: {e}") from e
        except Exception as e:
            if type(e).__module__.startswith("psycopg"):
                raise StoreError(f"database error on {self.display}: {e}") from e
            raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read-only query and return all its rows."""
        if self.dialect == "sqlite":
            # One statement reads one consistent snapshot by itself: no BEGIN/ROLLBACK.
            try:
                with self._sqlite_ds.get_connection(commit=False) as conn:
                    cursor = conn._sqlite_conn.execute(sql, params)
                    try:
                        return [tuple(r) for r in cursor.fetchall()]
                    finally:
                        cursor.close()
            except (sqlite3.Error, PersistenceError) as e:
                raise StoreError(f"database error on {self.display}: {e}") from e
        with self.transaction(commit=False) as tx:
            tx.execute(sql, params)
            return tx.fetchall()

    def maintain(self, statement: str) -> list[tuple[Any, ...]]:
        """Run one maintenance statement outside any transaction and return its rows.

        For statements a transaction refuses: ``PRAGMA wal_checkpoint(TRUNCATE)`` on
        SQLite, ``VACUUM`` on PostgreSQL.
        """
        try:
            if self.dialect == "sqlite":
                with self._sqlite_ds.get_connection(commit=False) as conn:
                    raw: sqlite3.Connection = conn._sqlite_conn
                    return [tuple(r) for r in raw.execute(statement).fetchall()]
            with self._pg_ds.get_connection() as pg:
                autocommit = pg.autocommit
                pg.autocommit = True
                try:
                    cursor = pg.execute(statement)
                    rows = cursor.fetchall() if cursor.description else []
                finally:
                    pg.autocommit = autocommit
                return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]
        except (sqlite3.Error, PersistenceError) as e:
            raise StoreError(f"database error on {self.display}: {e}") from e
        except Exception as e:
            if type(e).__module__.startswith("psycopg"):
                raise StoreError(f"database error on {self.display}: {e}") from e
            raise

    # -- the log ---------------------------------------------------------------------------

    def append(
        self, records: Sequence[StoredEvent], context: dict[str, Any] | None = None
    ) -> list[int]:
        """Insert records atomically; return their log positions.

        Raises :class:`ConcurrencyError` when another writer recorded the same
        aggregate version first (nothing is written).
        """
        if not records:
            return []
        try:
            positions = self._recorder.insert_events(records, context=context or {})
        except _ESIntegrityError as e:
            msg = (
                "another writer changed the same record first; nothing was written. "
                "Reload and try again (caseledger.retry does this)"
            )
            raise ConcurrencyError(msg) from e
        except PersistenceError as e:
            raise StoreError(f"cannot write to {self.display}: {e}") from e
        return list(positions or [])

    def read_aggregate(
        self, originator_id: UUID, after_version: int | None = None
    ) -> Sequence[StoredEvent]:
        """The records of one aggregate, in version order."""
        try:
            return self._recorder.select_events(originator_id, gt=after_version)  # type: ignore[no-any-return]
        except PersistenceError as e:
            raise StoreError(f"cannot read {self.display}: {e}") from e

    def read_log(self, start: int, limit: int, stop: int | None = None) -> Sequence[Notification]:
        """Up to ``limit`` records from log position ``start`` (inclusive) on."""
        try:
            return self._recorder.select_notifications(start, limit, stop)  # type: ignore[no-any-return]
        except PersistenceError as e:
            raise StoreError(f"cannot read {self.display}: {e}") from e

    def iter_log(
        self, start: int = 1, stop: int | None = None, batch_size: int = 2000
    ) -> Iterator[Notification]:
        """Stream the log in position order without loading it all."""
        position = start
        while True:
            batch = self.read_log(position, batch_size, stop)
            if not batch:
                return
            yield from batch
            position = batch[-1].id + 1
            if len(batch) < batch_size:
                return

    def changes_after(self, position: int, limit: int) -> list[tuple[int, UUID, int]] | None:
        """Up to ``limit`` (log position, originator id, version) of the records after ``position``.

        A cheap look at what other writers appended (no state bytes are read), for caches
        of aggregate state. Positions become visible in order on both backends (SQLite has
        one writer at a time; eventsourcing's PostgreSQL recorder locks the table until
        its commit), so nothing can still appear below the last position returned.
        """
        if self.dialect == "postgres":
            try:
                with self._pg_ds.transaction(commit=False) as curs:
                    curs.execute(self._pg_changes_sql, (position, limit))
                    rows = curs.fetchall()
            except PersistenceError as e:
                raise StoreError(f"cannot read {self.display}: {e}") from e
            except Exception as e:
                if type(e).__module__.startswith("psycopg"):
                    raise StoreError(f"cannot read {self.display}: {e}") from e
                raise
            return [
                (int(r["notification_id"]), _as_uuid(r["originator_id"]), r["originator_version"])
                for r in rows
            ]
        try:
            with self._sqlite_ds.get_connection(commit=False) as conn:
                rows = conn._sqlite_conn.execute(self._changes_sql, (position, limit)).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"cannot read {self.display}: {e}") from e
        return [(p, UUID(hex=o) if isinstance(o, str) else o, v) for p, o, v in rows]

    def has_records(self, originator_id: UUID) -> bool:
        """Whether any record of the aggregate ``originator_id`` is stored."""
        if self.dialect != "sqlite":
            return bool(self.read_aggregate(originator_id))
        try:
            with self._sqlite_ds.get_connection(commit=False) as conn:
                row = conn._sqlite_conn.execute(self._exists_sql, (originator_id.hex,)).fetchone()
        except sqlite3.Error as e:
            raise StoreError(f"cannot read {self.display}: {e}") from e
        return row is not None

    def max_position(self) -> int:
        """The last log position, or 0 for an empty log."""
        try:
            return self._recorder.max_notification_id() or 0
        except PersistenceError as e:
            raise StoreError(f"cannot read {self.display}: {e}") from e

    def close(self) -> None:
        """Close every connection."""
        with suppress(Exception):
            if self.dialect == "sqlite":
                self._sqlite_ds.close()
            else:
                self._pg_ds.close()


def _as_uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def open_store(url: str | Path | None = None) -> EventStore:
    """Open (creating if needed) the event store at ``url``; see the module docstring."""
    return EventStore(_parse_url(url))
