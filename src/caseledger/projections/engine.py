"""Keeping the read models: inline in each write, by a follower, or by a rebuild.

``caseledger_projection`` tracks, per projection, its version and the last log
position applied to it. Every way of applying events updates that row in the same
transaction as the rows it derived, so each event is applied exactly once:

*inline*
    a write hook runs in the transaction that appends the events; a reader sees its
    own write as soon as the command returns. If the log holds events the read models
    have not seen (written by a ledger opened with ``projections="follow"``, or before
    a projection was registered) the hook applies those first, in the same transaction.
*follow*
    writers leave the read models alone and a follower (:meth:`Projections.follow`,
    ``caseledger project --follow``) applies the log from its tracked position in
    batches. On PostgreSQL eventsourcing's recorder takes an ``EXCLUSIVE`` lock on the
    events table for each write, so positions become visible in commit order; the
    follower reads no further than the largest committed position it has seen, so it
    never steps over a position that a slower transaction could still fill. Positions
    never filled (a rolled-back write used them) are gaps the follower passes.
*rebuild*
    drops the projections' tables and replays the whole log in batches, streaming,
    in one transaction: readers see the old read models or the new ones, never half.

The tracking row is locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writes
are serialised anyway) before anything is applied, so an inline writer, a follower
and a rebuild never apply the same events twice, whichever runs first.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, tzinfo
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from caseledger._gc import gc_paused
from caseledger.errors import CaseNotFound, ConfigurationError, InvalidInput
from caseledger.events import Event
from caseledger.projections.audit import Audit, AuditPage, audit_query
from caseledger.projections.base import (
    Item,
    Projection,
    Schema,
    cutoff,
    decode_rows,
    fetch,
    fetch_one,
    local_date,
)
from caseledger.projections.caseload import (
    Caseload,
    CaseloadEntry,
    WorkerCaseloads,
    case_state_query,
    caseload_query,
    due_query,
    worker_caseloads_query,
)
from caseledger.projections.directory import Directory
from caseledger.projections.due import Deadlines, DueItem
from caseledger.projections.kpis import KpiReport, Kpis, kpi_query
from caseledger.projections.meetings import MeetingEntry, Meetings, meetings_query
from caseledger.projections.periods import Period
from caseledger.store import Dialect, EventStore, StoredEvent, Tx
from caseledger.values import MeetingKind, Stage

__all__ = ["MODES", "PROJECTIONS", "ProjectionMode", "Projections"]

#: Every registered projection, in the order they are applied. To add one, write its
#: module (a :class:`~caseledger.projections.base.Projection` subclass), add it here,
#: and rebuild (``caseledger rebuild``; an inline ledger also rebuilds it on opening).
PROJECTIONS: tuple[type[Projection], ...] = (Directory, Caseload, Audit, Kpis, Meetings)

ProjectionMode = Literal["inline", "follow", "off"]
MODES: tuple[str, ...] = ("inline", "follow", "off")

#: The reporting timezone when none is given: periods and days are counted in it.
DEFAULT_TIMEZONE = "Asia/Seoul"

_TRACKING = "caseledger_projection"
_REBUILD_BATCH = 2000
#: Where the inline hook keeps the records it decoded before the insert, for after it.
_ITEMS = "projections.items"
#: The name in a ``CREATE [UNIQUE] INDEX IF NOT EXISTS name ON …`` statement.
_INDEX_NAME = re.compile(r"\s*CREATE (?:UNIQUE )?INDEX IF NOT EXISTS (\w+) ON ", re.IGNORECASE)
#: The SQLite page cache of a rebuild's connection, in KiB (the default is 2 MiB).
_REBUILD_CACHE_KIB = 64 * 1024


class _Hook:
    """The write hook that applies new events inline."""

    def __init__(self, owner: Projections) -> None:
        self._owner = owner

    def create_statements(self, dialect: Dialect) -> list[str]:
        return []  # created by Projections already

    def prefetch(self, tx: Tx, records: Sequence[StoredEvent], context: dict[str, Any]) -> None:
        owner = self._owner
        tx.prefetch(owner._tracked_sql(lock=True))
        # Positions are not known yet; after_insert gives these items theirs.
        items = [
            Item.of(0, r.originator_id, r.originator_version, r.topic, r.state) for r in records
        ]
        context[_ITEMS] = items
        for p in owner._all:
            p.prefetch(tx, items)

    def after_insert(
        self,
        tx: Tx,
        records: Sequence[StoredEvent],
        positions: Sequence[int],
        context: dict[str, Any],
    ) -> None:
        items = context.pop(_ITEMS, None)
        self._owner._apply_written(tx, records, positions, items)


class Projections:
    """The read models of one ledger: kept from its log, and queried.

    Usually reached through :class:`~caseledger.Ledger` (``ledger.caseload()``,
    ``ledger.kpis("2022")`` …). ``mode`` is ``"inline"`` (default: every write updates
    the read models in its own transaction), ``"follow"`` (writes leave them to a
    follower, :meth:`follow`) or ``"off"`` (no read models at all).
    """

    def __init__(
        self,
        store: EventStore,
        *,
        mode: str = "inline",
        deadlines: Deadlines | None = None,
        timezone: str | tzinfo | None = None,
        classes: Sequence[type[Projection]] = PROJECTIONS,
    ) -> None:
        if mode not in MODES:
            msg = f"projections={mode!r} is not one of {', '.join(MODES)}"
            raise ConfigurationError(msg)
        self.store = store
        self.mode = mode
        self.schema = Schema.of(store)
        self.deadlines = deadlines or Deadlines()
        zone = timezone or DEFAULT_TIMEZONE
        self.tz: tzinfo = ZoneInfo(zone) if isinstance(zone, str) else zone
        for cls in classes:
            cls.check_coverage()
        self._all = [cls(self.schema) for cls in classes]
        if mode == "off":
            return
        if self._missing_tables() or self._missing_indexes():
            self._create()
        if mode == "inline":
            self.project()
            store.add_hook(_Hook(self))

    # -- tracking --------------------------------------------------------------------------

    def _ddl(self) -> list[str]:
        s = self.schema
        statements = [
            f"CREATE TABLE IF NOT EXISTS {s.t(_TRACKING)} (name {s.text} PRIMARY KEY, "
            "version INTEGER NOT NULL, position BIGINT NOT NULL)"
        ]
        for p in self._all:
            statements += p.create_statements()
        return statements

    def _missing_tables(self) -> set[str]:
        # Checked first because CREATE INDEX IF NOT EXISTS still locks its table on
        # PostgreSQL, which would make every ledger opening wait for (or deadlock with)
        # a follower applying a batch.
        wanted = {_TRACKING, *(t for p in self._all for t in p.tables)}
        return wanted - self._existing("table")

    def _missing_indexes(self) -> set[str]:
        # An index a newer release added to an existing table: made on opening, without
        # a rebuild (the rows stay as they are; the version goes up only when they change).
        wanted = {
            match.group(1)
            for statement in self._ddl()
            if (match := _INDEX_NAME.match(statement)) is not None
        }
        return wanted - self._existing("index")

    def _existing(self, kind: Literal["table", "index"]) -> set[str]:
        """The names of the tables or indexes in the ledger's database (or schema)."""
        params: tuple[str, ...] = ()
        if self.schema.dialect == "sqlite":
            sql = f"SELECT name FROM sqlite_master WHERE type = '{kind}'"
        else:
            params = (self.store.recorder.datastore.schema,)
            sql = (
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?"
                if kind == "table"
                else "SELECT indexname FROM pg_indexes WHERE schemaname = ?"
            )
        return {row[0] for row in self.store.query(sql, params)}

    def _create(self) -> None:
        with self.store.transaction() as tx:
            for statement in self._ddl():
                tx.execute(statement)
            found = self._tracked(tx, lock=True)
            for p in self._all:
                # A projection whose tables were only now created has seen nothing yet.
                if p.name not in found and not self._has_rows(tx, p):
                    self._set_position(tx, p, 0)

    def _has_rows(self, tx: Tx, projection: Projection) -> bool:
        for table in projection.tables:
            tx.execute(f"SELECT 1 FROM {self.schema.t(table)} LIMIT 1")
            if fetch_one(tx) is not None:
                return True
        return False

    def _tracked_sql(self, *, lock: bool) -> str:
        sql = f"SELECT name, version, position FROM {self.schema.t(_TRACKING)}"
        if lock and self.schema.dialect == "postgres":
            sql += " FOR UPDATE"
        return sql

    def _tracked(self, tx: Tx, *, lock: bool) -> dict[str, tuple[int, int]]:
        tx.execute(self._tracked_sql(lock=lock))
        return {name: (version, position) for name, version, position in fetch(tx)}

    def _set_position(self, tx: Tx, projection: Projection, position: int) -> None:
        self._set_positions(tx, [(projection, position)])

    def _set_positions(self, tx: Tx, done: Sequence[tuple[Projection, int]]) -> None:
        # One statement for all projections: an inline write runs this in every command.
        tx.executemany(
            f"INSERT INTO {self.schema.t(_TRACKING)} (name, version, position) VALUES (?,?,?) "
            "ON CONFLICT (name) DO UPDATE SET version = excluded.version, "
            "position = excluded.position",
            [(p.name, p.version, position) for p, position in done],
        )

    def positions(self) -> dict[str, int]:
        """The last log position applied to each projection."""
        self._require_on()
        with self.store.transaction(commit=False) as tx:
            found = self._tracked(tx, lock=False)
        return {p.name: found.get(p.name, (0, 0))[1] for p in self._all}

    def _up_to_date(self) -> bool:
        with self.store.transaction(commit=False) as tx:
            found = self._tracked(tx, lock=False)
            high = self._max_position(tx)
        return all(
            found.get(p.name, (0, -1))[0] == p.version and found[p.name][1] >= high
            for p in self._all
        )

    def _stale(self) -> bool:
        with self.store.transaction(commit=False) as tx:
            found = self._tracked(tx, lock=False)
        return any(found.get(p.name, (0,))[0] != p.version for p in self._all)

    # -- applying --------------------------------------------------------------------------

    def _read(self, tx: Tx, after: int, upto: int, limit: int) -> list[Item]:
        tx.execute(self.schema.read_log_sql(), (after, upto, limit))
        return decode_rows(fetch(tx))

    def _max_position(self, tx: Tx) -> int:
        tx.execute(self.schema.max_position_sql())
        row = fetch_one(tx)
        return int(row[0]) if row and row[0] is not None else 0

    def _apply(self, tx: Tx, items: Sequence[Item], after: dict[str, int]) -> None:
        for p in self._all:
            start = after[p.name]
            todo = (
                items
                if not items or items[0].position > start
                else [i for i in items if i.position > start]
            )
            if todo:
                p.apply(tx, todo)

    def _apply_written(
        self,
        tx: Tx,
        records: Sequence[StoredEvent],
        positions: Sequence[int],
        decoded: Sequence[Item] | None = None,
    ) -> None:
        if not records:
            return
        tracked = self._tracked(tx, lock=True)
        after = {p.name: tracked.get(p.name, (0, 0))[1] for p in self._all}
        first = positions[0]
        low = min(after.values())
        # Events written without the read models (a follow-mode writer) come first.
        while low < first - 1:
            missed = self._read(tx, low, first - 1, _REBUILD_BATCH)
            if not missed:
                break
            self._apply(tx, missed, after)
            low = missed[-1].position
            after = {name: max(pos, low) for name, pos in after.items()}
        if decoded is not None:
            items = [i._replace(position=p) for i, p in zip(decoded, positions, strict=True)]
        else:
            items = [
                Item.of(position, r.originator_id, r.originator_version, r.topic, r.state)
                for position, r in zip(positions, records, strict=True)
            ]
        self._apply(tx, items, after)
        self._set_positions(tx, [(p, positions[-1]) for p in self._all])

    def project(self, *, batch_size: int = 1000, max_batches: int | None = None) -> int:
        """Apply the events the read models have not seen yet; return how many.

        Projections never built, or built by another version, start again from the
        beginning of the log. Each batch is one transaction with its tracking update, so
        a follower stopped at any point resumes where it stopped.
        """
        self._require_on()
        if batch_size < 1:
            raise InvalidInput("batch_size must be at least 1", [("batch_size", "too small")])
        total = 0
        if self._up_to_date():
            return 0  # without taking the write lock
        if self._stale():
            # New or changed projections start over from the beginning of the log, in
            # batches like any other catching up (so a follower can stop and resume).
            with self.store.transaction() as tx:
                found = self._tracked(tx, lock=True)
                self._reset(tx, [p for p in self._all if found.get(p.name, (0,))[0] != p.version])
        batches = 0
        while max_batches is None or batches < max_batches:
            with self.store.transaction() as tx:
                tracked = self._tracked(tx, lock=True)
                after = {p.name: tracked.get(p.name, (0, 0))[1] for p in self._all}
                low = min(after.values())
                high = self._max_position(tx)
                if low >= high:
                    break
                items = self._read(tx, low, high, batch_size)
                self._apply(tx, items, after)
                # Fewer than asked means everything up to high was read: the
                # positions in between that hold nothing are rolled-back gaps.
                reached = high if len(items) < batch_size else items[-1].position
                self._set_positions(tx, [(p, max(after[p.name], reached)) for p in self._all])
            total += len(items)
            batches += 1
        return total

    def follow(
        self,
        *,
        poll: float = 1.0,
        batch_size: int = 1000,
        stop: threading.Event | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Keep applying new events until ``stop`` is set; return how many were applied.

        Applies one batch of ``batch_size`` events at a time, one transaction each;
        once caught up, checks for new events every ``poll`` seconds. ``stop`` is
        looked at between batches, so a follower catching up on a long log stops
        within a batch of being asked to. ``on_progress(applied, position)`` is called
        after each batch that applied something, with that batch's count.
        """
        stop = stop or threading.Event()
        total = 0
        while not stop.is_set():
            applied = self.project(batch_size=batch_size, max_batches=1)
            total += applied
            if applied and on_progress is not None:
                on_progress(applied, min(self.positions().values()))
            if applied < batch_size:
                # A short batch read everything up to the end of the log: caught up.
                stop.wait(poll)
        return total

    def rebuild(
        self,
        names: Sequence[str] | None = None,
        *,
        batch_size: int = _REBUILD_BATCH,
        on_progress: Callable[[int], None] | None = None,
    ) -> int:
        """Drop and rebuild projections (default: all) from the whole log; return the events read.

        One transaction: readers see the old read models or the new ones. ``on_progress``,
        if given, is called after each batch of ``batch_size`` events with the number of
        events applied so far (for a progress bar; the last call has the total).
        """
        self._require_on()
        known = {p.name: p for p in self._all}
        if names is None:
            targets = list(self._all)
        else:
            unknown = sorted(set(names) - set(known))
            if unknown:
                msg = f"no projection called {', '.join(unknown)}; there are {', '.join(known)}"
                raise InvalidInput(msg, [("names", "unknown projection")])
            targets = [p for p in self._all if p.name in set(names)]
        # Not durable: a rebuild lost to a power cut is redone from the log.
        with self.store.transaction(durable=False) as tx:
            restore = self._rebuild_settings(tx)
            try:
                count = self._rebuild(tx, targets, batch_size, on_progress)
            finally:
                for statement in restore:
                    tx.execute(statement)
        return count

    def _rebuild(
        self,
        tx: Tx,
        targets: Sequence[Projection],
        batch_size: int,
        on_progress: Callable[[int], None] | None = None,
    ) -> int:
        self._tracked(tx, lock=True)
        # Secondary indexes are built once from the finished tables, which is
        # cheaper than keeping them up to date row by row; applying only looks
        # rows up by primary key.
        indexes = self._reset(tx, targets, defer_indexes=True)
        high = self._max_position(tx)
        after = 0
        count = 0
        for p in targets:
            p.begin_rebuild(tx)
        try:
            while after < high:
                items = self._read(tx, after, high, batch_size)
                if not items:
                    break
                for p in targets:
                    p.apply(tx, items)
                after = items[-1].position
                count += len(items)
                del items  # the next batch is read before this one would be freed
                if on_progress is not None:
                    on_progress(count)
            for p in targets:
                p.end_rebuild(tx)
        except BaseException:
            # Rolled back: the projections apply incrementally again, as before.
            for p in targets:
                p.cancel_rebuild()
            raise
        for p in targets:
            self._set_position(tx, p, high)
        for statement in indexes:
            tx.execute(statement)
        return count

    def _rebuild_settings(self, tx: Tx) -> list[str]:
        """Set this connection up for a rebuild; return the statements that undo it.

        On SQLite: a page cache large enough for the projection tables and their
        index builds (pages are allocated as used, up to :data:`_REBUILD_CACHE_KIB`),
        and no zeroing of the pages the dropped projection tables free. Projection
        tables never hold personal data (sealed values are never opened for them), so
        there is nothing in those pages to overwrite; every other deletion on the
        connection is zeroed as before once the rebuild ends. On PostgreSQL the commit
        does not wait for its WAL flush (like ``durable=False`` on SQLite: a rebuild
        lost to a crash is redone from the log); ``SET LOCAL`` ends with the transaction.
        """
        if self.schema.dialect != "sqlite":
            tx.execute("SET LOCAL synchronous_commit TO OFF")
            return []
        tx.execute("PRAGMA cache_size")
        row = fetch_one(tx)
        cache = int(row[0]) if row else -2000
        tx.execute("PRAGMA secure_delete")
        row = fetch_one(tx)
        secure = int(row[0]) if row else 1
        tx.execute(f"PRAGMA cache_size = {-_REBUILD_CACHE_KIB}")
        tx.execute("PRAGMA secure_delete = 0")
        return [f"PRAGMA cache_size = {cache}", f"PRAGMA secure_delete = {secure}"]

    def _reset(
        self, tx: Tx, targets: Sequence[Projection], *, defer_indexes: bool = False
    ) -> list[str]:
        """Empty ``targets``' tables; with ``defer_indexes``, return the index DDL unrun."""
        deferred: list[str] = []
        for p in targets:
            for table in p.tables:
                tx.execute(f"DROP TABLE IF EXISTS {self.schema.t(table)}")
        for p in targets:
            for statement in p.create_statements():
                if defer_indexes and statement.lstrip().upper().startswith("CREATE INDEX"):
                    deferred.append(statement)
                else:
                    tx.execute(statement)
            self._set_position(tx, p, 0)
        return deferred

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every projection table, sorted: for comparing read models."""
        self._require_on()
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self.store.transaction(commit=False) as tx:
            for p in self._all:
                for table in p.tables:
                    tx.execute(f"SELECT * FROM {self.schema.t(table)}")
                    rows = fetch(tx)
                    rows.sort(key=lambda r: tuple((v is None, str(v)) for v in r))
                    out[table] = rows
        return out

    def _require_on(self) -> None:
        if self.mode == "off":
            msg = (
                "this ledger was opened with projections='off'; open it with "
                "projections='inline' (or 'follow', with a follower running) to read them"
            )
            raise ConfigurationError(msg)

    # -- queries ---------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[Tx]:
        # A read-only transaction; the rows a query turns into objects make no cycles.
        with self.store.transaction(commit=False) as tx, gc_paused():
            yield tx

    def _moments(
        self,
        as_of: date | datetime | None,
        as_of_recorded: date | datetime | None,
        today: date | None,
        now: datetime,
    ) -> tuple[str | None, str | None, date]:
        occurred = cutoff(as_of, self.tz) if as_of is not None else None
        recorded = cutoff(as_of_recorded, self.tz) if as_of_recorded is not None else None
        if occurred is not None:
            reference = local_date(occurred, self.tz)
        elif recorded is not None:
            reference = local_date(recorded, self.tz)
        else:
            reference = today or now.astimezone(self.tz).date()
        return occurred, recorded, reference

    def caseload(
        self,
        *,
        now: datetime,
        as_of: date | datetime | None = None,
        as_of_recorded: date | datetime | None = None,
        today: date | None = None,
        dong: str | None = None,
        district: str | None = None,
        organisation: str | None = None,
        worker: str | None = None,
        stage: Stage | str | None = None,
        include_closed: bool = False,
    ) -> list[CaseloadEntry]:
        """The caseload; see :meth:`caseledger.Ledger.caseload`."""
        self._require_on()
        occurred, recorded, reference = self._moments(as_of, as_of_recorded, today, now)
        with self._reading() as tx:
            return caseload_query(
                tx,
                self.schema,
                as_of=occurred,
                as_of_recorded=recorded,
                reference=reference,
                tz=self.tz,
                deadlines=self.deadlines,
                dong=dong,
                district=district,
                organisation=organisation,
                worker=worker,
                stage=stage,
                include_closed=include_closed,
            )

    def case_state(
        self,
        case_id: UUID,
        *,
        now: datetime,
        as_of: date | datetime | None = None,
        as_of_recorded: date | datetime | None = None,
        today: date | None = None,
    ) -> CaseloadEntry:
        """One case's state; see :meth:`caseledger.Ledger.case_state`."""
        self._require_on()
        occurred, recorded, reference = self._moments(as_of, as_of_recorded, today, now)
        with self._reading() as tx:
            return case_state_query(
                tx,
                self.schema,
                case_id,
                as_of=occurred,
                as_of_recorded=recorded,
                reference=reference,
                tz=self.tz,
                deadlines=self.deadlines,
            )

    def worker_caseloads(
        self,
        *,
        as_of: date | datetime | None = None,
        as_of_recorded: date | datetime | None = None,
        dong: str | None = None,
        district: str | None = None,
        organisation: str | None = None,
    ) -> WorkerCaseloads:
        """Open cases per worker; see :meth:`caseledger.Ledger.worker_caseloads`."""
        self._require_on()
        occurred = cutoff(as_of, self.tz) if as_of is not None else None
        recorded = cutoff(as_of_recorded, self.tz) if as_of_recorded is not None else None
        with self._reading() as tx:
            return worker_caseloads_query(
                tx,
                self.schema,
                as_of=occurred,
                as_of_recorded=recorded,
                dong=dong,
                district=district,
                organisation=organisation,
            )

    def due(
        self,
        *,
        now: datetime,
        overdue_only: bool = False,
        today: date | None = None,
        deadlines: Deadlines | None = None,
        dong: str | None = None,
        district: str | None = None,
        organisation: str | None = None,
        worker: str | None = None,
    ) -> list[DueItem]:
        """Due and overdue items; see :meth:`caseledger.Ledger.due`."""
        self._require_on()
        reference = today or now.astimezone(self.tz).date()
        with self._reading() as tx:
            return due_query(
                tx,
                self.schema,
                reference=reference,
                tz=self.tz,
                deadlines=deadlines or self.deadlines,
                overdue_only=overdue_only,
                dong=dong,
                district=district,
                organisation=organisation,
                worker=worker,
            )

    def audit_trail(
        self,
        *,
        case_id: UUID | None = None,
        worker: str | None = None,
        limit: int = 100,
        after: int | None = None,
    ) -> AuditPage:
        """A page of an audit trail; see :meth:`caseledger.Ledger.audit_trail`."""
        self._require_on()
        with self._reading() as tx:
            return audit_query(
                tx, self.schema.prefix, case_id=case_id, worker=worker, limit=limit, after=after
            )

    def history(self, case_id: UUID) -> list[Event]:
        """A case's own events from the audit trail, in order: structural fields only.

        :class:`~caseledger.errors.CaseNotFound` if the trail has no such case.
        """
        self._require_on()
        events: list[Event] = []
        after = None
        while True:
            page = self.audit_trail(case_id=case_id, limit=1000, after=after)
            events += [e.to_event(self.tz) for e in page.entries if e.subject_id == case_id]
            if page.next_after is None:
                break
            after = page.next_after
        if not events:
            msg = f"case {case_id} does not exist in this ledger"
            raise CaseNotFound(msg)
        return events

    def kpis(
        self,
        period: str | Period,
        *,
        by: str | None = None,
        compare_previous: bool = True,
        dong: str | None = None,
        district: str | None = None,
        organisation: str | None = None,
        worker: str | None = None,
        as_of: date | datetime | None = None,
        as_of_recorded: date | datetime | None = None,
        deadlines: Deadlines | None = None,
    ) -> KpiReport:
        """The monitoring report; see :meth:`caseledger.Ledger.kpis`."""
        self._require_on()
        with self._reading() as tx:
            return kpi_query(
                tx,
                self.schema,
                period,
                by=by,
                compare_previous=compare_previous,
                dong=dong,
                district=district,
                organisation=organisation,
                worker=worker,
                as_of=cutoff(as_of, self.tz) if as_of is not None else None,
                as_of_recorded=(
                    cutoff(as_of_recorded, self.tz) if as_of_recorded is not None else None
                ),
                tz=self.tz,
                deadlines=deadlines or self.deadlines,
            )

    def meetings(
        self,
        *,
        period: str | Period | None = None,
        kind: MeetingKind | str | None = None,
        host: str | None = None,
        dong: str | None = None,
        district: str | None = None,
    ) -> list[MeetingEntry]:
        """The meeting register; see :meth:`caseledger.Ledger.meetings`."""
        self._require_on()
        start = end = None
        if period is not None:
            found = period if isinstance(period, Period) else Period.parse(period)
            start, end = found.bounds(self.tz)
        with self._reading() as tx:
            return meetings_query(
                tx,
                self.schema.prefix,
                start=start,
                end=end,
                kind=kind,
                host=host,
                dong=dong,
                district=district,
            )
