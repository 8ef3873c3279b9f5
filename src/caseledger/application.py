"""The :class:`Ledger`: the one facade for recording and reading case management.

Every verb validates its command, loads the aggregates it needs, asks the pure
decision functions for the event to record, and appends it in one transaction
together with everything derived from it (idempotency key, and whatever hooks are
installed). A refused command raises a :class:`~caseledger.errors.CaseLedgerError`
and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from pydantic import ValidationError

from caseledger import case as rules
from caseledger import codec
from caseledger import commands as c
from caseledger.access import AccessLog, AccessReport, access_report, current_terminal
from caseledger.aggregate import Aggregate
from caseledger.case import Case
from caseledger.errors import (
    AlreadyExists,
    CaseNotFound,
    ConcurrencyError,
    ConsentNotFound,
    HouseholdNotFound,
    IdempotencyConflict,
    InvalidInput,
    MeetingNotFound,
    OrganisationNotFound,
    RuleViolation,
    StageError,
    TimeError,
    WorkerNotFound,
)
from caseledger.events import (
    AgendaItem,
    CaseEvent,
    CaseMeetingHeld,
    CaseOpened,
    ConsentGranted,
    ConsentWithdrawn,
    ConsultationRecorded,
    Event,
    HouseholdDiscovered,
    HouseholdErased,
    OrganisationRegistered,
    WorkerRegistered,
)
from caseledger.household import Household
from caseledger.keystore import KeyRing, find_master_key
from caseledger.meeting import CaseMeeting
from caseledger.merkle_log import MerkleLog, ProofBundle, VerificationReport
from caseledger.policy import Policy, authorise_command, load_policy
from caseledger.privacy import (
    HouseholdCases,
    ReadContext,
    Reader,
    access_entries,
    check_erasure,
    has_personal_data,
)
from caseledger.projections import (
    AuditPage,
    CaseloadEntry,
    Deadlines,
    DueItem,
    KpiReport,
    MeetingEntry,
    Projections,
    WorkerCaseloads,
)
from caseledger.registry import Organisation, Worker, organisation_id, worker_id
from caseledger.store import Dialect, EventStore, Notification, StoredEvent, Tx, open_store
from caseledger.values import (
    TAXONOMY_VERSION,
    Channel,
    CheckDecision,
    CheckMethod,
    ClosureReason,
    ConsentScope,
    ConsultationMethod,
    ConsultationOutcome,
    Level,
    MeetingAttendee,
    MeetingDecision,
    MeetingKind,
    Member,
    NeedDomain,
    NeedRating,
    PersonalData,
    PlannedService,
    RiskRating,
    Role,
    Sector,
    ServiceKind,
    Track,
)

if TYPE_CHECKING:
    from caseledger.export import ExportSummary

__all__ = ["DEFAULT_POLICY_VERSION", "Ledger", "LogEntry", "retry"]

#: The authority policy version stored on events when no other policy is installed.
DEFAULT_POLICY_VERSION = "default-2026.1"

#: How far in the future ``at`` may lie, for clocks that disagree a little.
CLOCK_TOLERANCE = timedelta(minutes=5)

_SYSTEM = "system"
#: Past this many records appended by other writers, the cache is dropped, not sifted.
_CATCH_UP_LIMIT = 5000
_A = TypeVar("_A", bound=Aggregate)
_T = TypeVar("_T")


@dataclass(frozen=True)
class LogEntry:
    """One event of the whole log with its log position (1, 2, 3, ...)."""

    position: int
    event: Event


class _IdempotencyHook:
    """Writes idempotency keys in the same transaction as the events they produced."""

    def create_statements(self, dialect: Dialect) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS caseledger_idempotency ("
            "key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, result TEXT NOT NULL)"
        ]

    def after_insert(
        self,
        tx: Tx,
        records: Sequence[StoredEvent],
        positions: Sequence[int],
        context: dict[str, Any],
    ) -> None:
        rows = context.get("idempotency")
        if rows:
            tx.executemany(
                "INSERT INTO caseledger_idempotency (key, fingerprint, result) VALUES (?,?,?)",
                rows,
            )


class _UnitOfWork:
    """Aggregates changed and events produced by the commands of one transaction."""

    def __init__(self) -> None:
        self.working: dict[UUID, Aggregate] = {}
        #: Every aggregate this unit of work has read or changed (the working ones too).
        self.loaded: dict[UUID, Aggregate] = {}
        self.events: list[Event] = []
        self.idempotency: list[tuple[str, str, str]] = []
        self.results: dict[str, str] = {}
        #: The cached aggregates were checked against the log in this unit of work.
        self.current = False


class _Directory:
    """The ledger's current state as the policy checks see it (no copies)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def worker(self, code: str) -> Worker:
        return self._ledger._worker(code)

    def organisation(self, code: str) -> Organisation:
        return self._ledger._organisation(code)

    def case(self, case_id: UUID) -> Case:
        return self._ledger._case(case_id)

    def household(self, household_id: UUID) -> Household:
        return self._ledger._household(household_id)

    def cases_of(self, household_id: UUID) -> list[Case]:
        return self._ledger._cases_of(household_id)


def _fingerprint(cmd: Any) -> str:
    # Personal values stay out: a hash of a resident registration number can be guessed
    # back, and the idempotency table keeps it after the household is erased.
    data = cmd.model_dump(mode="json", exclude={"idempotency_key", "notes", "name", "personal"})
    if "members" in data:
        data["members"] = [{k: v for k, v in m.items() if k != "personal"} for m in data["members"]]
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def retry(func: Callable[[], _T], *, attempts: int = 5, backoff: float = 0.01) -> _T:
    """Call ``func`` until it does not raise :class:`ConcurrencyError` (at most ``attempts``).

    ``func`` must decide afresh each time (call ledger verbs inside it, not before)::

        caseledger.retry(lambda: ledger.check_service(case_id, link_id=..., by=..., at=...))
    """
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except ConcurrencyError:
            if attempt == attempts:
                raise
            time.sleep(backoff * attempt)
    msg = "attempts must be at least 1"  # pragma: no cover - loop always returns or raises
    raise ValueError(msg)


class Ledger:
    """An event-sourced ledger of integrated case management.

    Open one with :meth:`Ledger.open`::

        from datetime import datetime
        from zoneinfo import ZoneInfo
        from caseledger import Ledger, Sector, Role, Channel

        kst = ZoneInfo("Asia/Seoul")
        with Ledger.open(":memory:") as ledger:
            ledger.register_organisation("jungang-dong", name="중앙동 행정복지센터",
                                         sector=Sector.PUBLIC, dong="중앙동", district="동두천시",
                                         at=datetime(2022, 1, 3, tzinfo=kst))
            ledger.register_worker("officer-1", organisation="jungang-dong",
                                   role=Role.DONG_OFFICER, at=datetime(2022, 1, 3, tzinfo=kst))
            household = ledger.discover_household(dong="중앙동", district="동두천시",
                                                  channel=Channel.OUTREACH_VISIT, by="officer-1",
                                                  at=datetime(2022, 9, 20, tzinfo=kst))

    Every verb takes ``by=`` (the acting worker's code) and ``at=`` (when it happened:
    timezone-aware, not in the future) and an optional ``idempotency_key=``.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        clock: Callable[[], datetime] | None = None,
        policy: Policy | str | Path | None = None,
        master_key: bytes | str | Path | None = None,
        cache_size: int = 20_000,
        projections: str = "inline",
        deadlines: Deadlines | None = None,
        timezone: str | tzinfo | None = None,
    ) -> None:
        self._store = store
        self._clock = clock or (lambda: datetime.now(UTC))
        #: The authority policy in force (:mod:`caseledger.policy`); its version is on every event.
        self.policy: Policy = load_policy(policy)
        self._cache: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._cache_size = cache_size
        #: Every cached aggregate holds all of its records up to this log position.
        self._known = 0
        self._uow: _UnitOfWork | None = None
        self._lock = threading.RLock()
        self._handlers: dict[type[Any], Callable[[Any, _UnitOfWork], Any]] = {
            c.RegisterOrganisation: self._register_organisation,
            c.RegisterWorker: self._register_worker,
            c.DiscoverHousehold: self._discover_household,
            c.RecordConsultation: self._record_consultation,
            c.OpenCase: self._open_case,
            c.AssessNeeds: self._case_command(rules.decide_assess),
            c.Reassess: self._case_command(rules.decide_reassess),
            c.HoldMeeting: self._hold_meeting,
            c.Classify: self._classify,
            c.AgreePlan: self._case_command(rules.decide_agree_plan),
            c.LinkService: self._link_service,
            c.Refer: self._refer,
            c.RespondToReferral: self._with_actor(rules.decide_respond),
            c.CompleteReferral: self._with_actor(rules.decide_complete_referral),
            c.RevokeReferral: self._with_actor(rules.decide_revoke_referral),
            c.CheckService: self._case_command(rules.decide_check),
            c.RecordSupervision: self._case_command(rules.decide_supervision),
            c.CloseCase: self._close_case,
            c.FollowUp: self._case_command(rules.decide_follow_up),
            c.ReopenCase: self._reopen_case,
            c.TransferCase: self._transfer_case,
            c.GrantConsent: self._grant_consent,
            c.WithdrawConsent: self._withdraw_consent,
            c.EraseHousehold: self._erase_household,
        }
        with store.schema_lock():  # tables are created on first open, once per process
            store.add_hook(_IdempotencyHook())
            #: The Merkle log over the stored records (:mod:`caseledger.merkle_log`).
            self.merkle = MerkleLog(store)
            in_memory = store.dialect == "sqlite" and store.display == ":memory:"
            sqlite_file = (
                Path(store.display) if store.dialect == "sqlite" and not in_memory else None
            )
            key, source = find_master_key(master_key, sqlite_file=sqlite_file, in_memory=in_memory)
            #: The data keys of this ledger (:mod:`caseledger.keystore`).
            self.keys = KeyRing(store, key, source=source)
            #: The access records of this ledger (:mod:`caseledger.access`).
            self.access = AccessLog(store)
            self._household_cases = HouseholdCases(store)
            self._directory = _Directory(self)
            self._projections = Projections(
                store, mode=projections, deadlines=deadlines, timezone=timezone
            )
        self._known = store.max_position()

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str | Path | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        policy: Policy | str | Path | None = None,
        master_key: bytes | str | Path | None = None,
        projections: str = "inline",
        deadlines: Deadlines | None = None,
        timezone: str | tzinfo | None = None,
    ) -> Ledger:
        """Open the ledger at ``url``, creating it if needed.

        ``url`` is a file path (SQLite; default ``$CASELEDGER_DB`` or ``./caseledger.db``),
        ``":memory:"`` (SQLite in memory, for tests) or ``postgresql://user@host/db``.
        ``clock`` returns the current time (timezone-aware); it stamps ``recorded_at``.

        ``policy`` is the authority policy: a :class:`~caseledger.policy.Policy`, a JSON
        file, or (default) ``$CASELEDGER_POLICY`` or the shipped default. ``master_key``
        wraps the per-household data keys that seal personal fields: 32 bytes, base64
        text or a key file ``Path``; by default ``$CASELEDGER_MASTER_KEY``,
        ``$CASELEDGER_MASTER_KEY_FILE``, an ephemeral key for ``":memory:"``, or the key
        file beside an SQLite database (see :mod:`caseledger.keystore`).

        ``projections`` says who keeps the read models (caseload, audit trail, KPIs,
        meetings): ``"inline"`` (default) updates them in each write's transaction;
        ``"follow"`` leaves them to a follower (:meth:`project`, :meth:`follow`,
        ``caseledger project --follow``); ``"off"`` keeps none. ``deadlines`` and
        ``timezone`` (default Asia/Seoul) set how due dates, days and periods are counted.
        """
        if url is None:
            url = os.environ.get("CASELEDGER_DB") or None
        return cls(
            open_store(url), clock=clock, policy=policy, master_key=master_key,
            projections=projections, deadlines=deadlines, timezone=timezone,
        )  # fmt: skip

    @property
    def policy_version(self) -> str:
        """The version of the authority policy in force (stored on every event)."""
        return self.policy.version

    @property
    def store(self) -> EventStore:
        """The event store underneath (for extensions; prefer the verbs)."""
        return self._store

    def close(self) -> None:
        """Close the connections to the store."""
        self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Ledger {self._store.display}>"

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Record every command in the block in one transaction.

        Commands inside see each other's effects. If the block raises, nothing from it
        is written; if it completes, everything is. Use it for imports and bulk loads::

            with ledger.batch():
                for row in rows:
                    ledger.link_service(...)
        """
        with self._lock:
            if self._uow is not None:
                yield  # nested: part of the enclosing batch
                return
            uow = self._uow = _UnitOfWork()
            try:
                yield
            except BaseException:
                self._forget(uow)
                raise
            finally:
                self._uow = None
            self._commit(uow)

    def _commit(self, uow: _UnitOfWork) -> None:
        if not uow.events:
            return
        sealing = self.keys.sealing()
        try:
            if len(uow.events) > 1:
                sealing.prefetch(
                    codec.key_owner(e.originator_id, e.__dict__)
                    for e in uow.events
                    if has_personal_data(e)
                )
            records = [codec.encode(e, sealing) for e in uow.events]
            access = access_entries(uow.events, self._role_in(uow), current_terminal())
            context = {
                "idempotency": uow.idempotency,
                "events": uow.events,
                "sealing": sealing,
                "access": access,
            }
            positions = self._store.append(records, context)
        except BaseException:
            self._forget(uow)
            raise
        self.keys.committed(sealing)
        for aggregate_id, aggregate in uow.working.items():
            self._remember(aggregate_id, aggregate)
        if positions and positions[0] == self._known + 1:
            # Nobody else wrote since the cache was last checked against the log.
            self._known = positions[-1]

    def execute(self, command: Any) -> Any:
        """Execute a command model (see :mod:`caseledger.commands`) and return its result.

        This is what every verb calls; the JSON-lines import calls it too. Commands from
        several threads are serialised.
        """
        with self._lock:
            return self._execute(command)

    def _execute(self, command: Any) -> Any:
        handler = self._handlers.get(type(command))
        if handler is None:
            msg = f"not a caseledger command: {type(command).__name__}"
            raise InvalidInput(msg)
        key = command.idempotency_key
        fingerprint = ""
        if key is not None:
            fingerprint = _fingerprint(command)
            found = self._idempotent_result(key, fingerprint)
            if found is not None:
                return self._result_from(found)
        self._check_time(command.at)
        authorise_command(self.policy, command, self._directory)
        if self._uow is not None:
            result = handler(command, self._uow)
            if key is not None:
                self._note_key(self._uow, key, fingerprint, result)
            return result
        uow = _UnitOfWork()
        self._uow = uow
        try:
            result = handler(command, uow)
            if key is not None:
                self._note_key(uow, key, fingerprint, result)
        finally:
            self._uow = None
        try:
            self._commit(uow)
        except ConcurrencyError:
            if key is not None:
                found = self._idempotent_result(key, fingerprint)
                if found is not None:
                    return self._result_from(found)
            raise
        return result

    def _note_key(self, uow: _UnitOfWork, key: str, fingerprint: str, result: Any) -> None:
        if isinstance(result, Event):
            stored = json.dumps({"event": [str(result.originator_id), result.originator_version]})
        else:
            stored = json.dumps({"value": str(result), "type": type(result).__name__})
        uow.idempotency.append((key, fingerprint, stored))
        uow.results[key] = fingerprint + "\n" + stored

    def _idempotent_result(self, key: str, fingerprint: str) -> str | None:
        found: str | None = None
        if self._uow is not None and key in self._uow.results:
            stored_fp, found = self._uow.results[key].split("\n", 1)
        else:
            rows = self._store.query(
                "SELECT fingerprint, result FROM caseledger_idempotency WHERE key = ?", (key,)
            )
            if not rows:
                return None
            stored_fp, found = rows[0]
        if stored_fp != fingerprint:
            msg = (
                f"idempotency key {key!r} was already used for a different command; "
                "use a new key for a new command"
            )
            raise IdempotencyConflict(msg)
        return found

    def _result_from(self, stored: str) -> Any:
        data = json.loads(stored)
        if "event" in data:
            originator_id, version = data["event"]
            records = self._store.read_aggregate(UUID(originator_id), after_version=version - 1)
            return codec.decode(records[0])
        if data["type"] == "UUID":
            return UUID(data["value"])
        return data["value"]

    def _check_time(self, at: datetime) -> None:
        try:
            at.astimezone(UTC)  # stored and projected in UTC
        except OverflowError:
            msg = f"at={at.isoformat()} is out of range: it has no UTC time (year 1 to 9999)"
            raise InvalidInput(msg, [("at", "out of range")]) from None
        now = self._clock()
        if at > now + CLOCK_TOLERANCE:
            msg = f"at={at.isoformat()} is in the future (now {now.isoformat()})"
            raise TimeError(msg)

    # -- loading aggregates ----------------------------------------------------------------

    def _remember(self, aggregate_id: UUID, aggregate: Aggregate) -> None:
        self._cache[aggregate_id] = aggregate
        self._cache.move_to_end(aggregate_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _load(self, cls: type[_A], aggregate_id: UUID) -> _A | None:
        """The current state of an aggregate, or None if it has no events.

        Each aggregate is read from the store at most once per unit of work, and only
        the records after the version already cached. Single-event aggregates
        (organisations, workers, meetings) never change once cached. A cached state
        that another process has moved on from is caught at commit: the insert of the
        same version fails and raises :class:`ConcurrencyError`.
        """
        uow = self._uow
        if uow is not None:
            found = uow.loaded.get(aggregate_id)
            if found is not None:
                return found if isinstance(found, cls) else None
        cached = self._cache.get(aggregate_id)
        if isinstance(cached, cls):
            if cls.immutable:
                return cached
            if cached.version and self._cache_current(uow):
                cached = self._cache.get(aggregate_id)
                if isinstance(cached, cls):
                    self._cache.move_to_end(aggregate_id)
                    if uow is not None:
                        uow.loaded[aggregate_id] = cached
                    return cached
        after = cached.version if isinstance(cached, cls) else 0
        records = self._store.read_aggregate(aggregate_id, after_version=after or None)
        if records:
            state = cached if isinstance(cached, cls) and after else cls(aggregate_id)
            for record in records:
                state.apply(codec.decode(record))
            if not _is_kind(state):
                return None
            self._remember(aggregate_id, state)
        elif isinstance(cached, cls) and cached.version:
            state = cached
        else:
            return None
        if uow is not None:
            uow.loaded[aggregate_id] = state
        return state

    def _cache_current(self, uow: _UnitOfWork | None) -> bool:
        """Bring the cache up to the log's end: drop states other writers moved on from.

        One look at the records appended since the cache was last checked (their ids and
        versions only), at most once per unit of work, instead of a read per aggregate.
        False when the store cannot tell: then each aggregate is re-read.
        """
        if uow is not None and uow.current:
            return True
        limit = _CATCH_UP_LIMIT
        changes = self._store.changes_after(self._known, limit)
        if changes is None:
            return False
        if len(changes) == limit:
            # Far behind: forget every state that can change rather than sift through.
            known = self._store.max_position()
            for aggregate_id in [k for k, a in self._cache.items() if not a.immutable]:
                del self._cache[aggregate_id]
            self._known = known
        elif changes:
            cache = self._cache
            for _, aggregate_id, version in changes:
                cached = cache.get(aggregate_id)
                if cached is not None and cached.version < version:
                    del cache[aggregate_id]
            self._known = changes[-1][0]
        if uow is not None:
            uow.current = True
        return True

    def _working(self, aggregate: _A, uow: _UnitOfWork) -> _A:
        # Changed in place: if the unit of work fails, _forget() drops it from the cache.
        uow.working[aggregate.id] = uow.loaded[aggregate.id] = aggregate
        return aggregate

    def _forget(self, uow: _UnitOfWork) -> None:
        for aggregate_id in uow.working:
            self._cache.pop(aggregate_id, None)

    def _case(self, case_id: UUID) -> Case:
        found = self._load(Case, case_id)
        if found is None:
            msg = f"case {case_id} does not exist in this ledger"
            raise CaseNotFound(msg)
        return found

    def _household(self, household_id: UUID) -> Household:
        found = self._load(Household, household_id)
        if found is None:
            msg = f"household {household_id} was not discovered in this ledger"
            raise HouseholdNotFound(msg)
        return found

    def _meeting(self, meeting_id: UUID) -> CaseMeeting:
        found = self._load(CaseMeeting, meeting_id)
        if found is None:
            msg = f"meeting {meeting_id} was not held in this ledger"
            raise MeetingNotFound(msg)
        return found

    def _organisation(self, code: str) -> Organisation:
        found = self._load(Organisation, organisation_id(code))
        if found is None:
            msg = f"organisation {code!r} is not registered; register_organisation first"
            raise OrganisationNotFound(msg)
        return found

    def _worker(self, code: str) -> Worker:
        found = self._load(Worker, worker_id(code))
        if found is None:
            msg = f"worker {code!r} is not registered; register_worker first"
            raise WorkerNotFound(msg)
        return found

    def _cases_of(self, household_id: UUID) -> list[Case]:
        ids = set(self._household_cases.case_ids(household_id))
        if self._uow is not None:
            ids.update(
                a.id
                for a in self._uow.working.values()
                if isinstance(a, Case) and a.version and a.household_id == household_id
            )
        return [self._case(case_id) for case_id in sorted(ids)]

    def _role_in(self, uow: _UnitOfWork) -> Callable[[str], str]:
        def role(actor: str) -> str:
            if actor == _SYSTEM:
                return _SYSTEM
            found = uow.working.get(worker_id(actor))
            worker = found if isinstance(found, Worker) else self._worker(actor)
            return worker.role.value

        return role

    # -- recording -------------------------------------------------------------------------

    def _record(
        self,
        uow: _UnitOfWork,
        aggregate: Aggregate,
        cls: type[Event],
        fields: dict[str, Any],
        cmd: Any,
        actor: Worker | None = None,
    ) -> Event:
        """Build the next event of ``aggregate``, apply it to the working copy, queue it."""
        if actor is None and cmd.by != _SYSTEM:
            actor = self._worker(cmd.by)
        if actor is None and cmd.by == _SYSTEM and cls not in _SYSTEM_EVENTS:
            raise WorkerNotFound("worker 'system' may only register organisations and workers")
        working = self._working(aggregate, uow)
        envelope: dict[str, Any] = {
            "originator_id": working.id,
            "originator_version": working.version + 1,
            "occurred_at": cmd.at,
            "recorded_at": self._clock(),
            "actor": cmd.by,
            "organisation": actor.organisation if actor is not None else _SYSTEM,
            "policy_version": self.policy_version,
            "taxonomy_version": TAXONOMY_VERSION,
        }
        if isinstance(working, Case) and working.version:
            envelope["household_id"] = working.household_id
        if isinstance(working, Case | Household) and working.version:
            _not_before_discovery(cmd.at, working.discovered_at)
        try:
            event = cls(**envelope, **fields)
        except ValidationError as e:
            raise _invalid(e) from None
        working.apply(event)
        uow.events.append(event)
        return event

    def _new(self, cls: type[_A], aggregate_id: UUID | None, what: str, name: str = "") -> _A:
        if aggregate_id is None:
            # A fresh random id names nothing yet (were it ever to, the insert of its
            # version 1 would fail and write nothing).
            return cls(uuid.uuid4())
        if self._load_any(aggregate_id):
            msg = f"{what} {name or aggregate_id} exists already in this ledger"
            raise AlreadyExists(msg)
        return cls(aggregate_id)

    def _load_any(self, aggregate_id: UUID) -> bool:
        if self._uow is not None and aggregate_id in self._uow.working:
            return True
        cached = self._cache.get(aggregate_id)
        if cached is not None and cached.version:
            return True  # records are never removed
        return self._store.has_records(aggregate_id)

    # -- handlers --------------------------------------------------------------------------

    def _register_organisation(self, cmd: c.RegisterOrganisation, uow: _UnitOfWork) -> str:
        code_id = organisation_id(cmd.code)
        aggregate = self._new(Organisation, code_id, "organisation", repr(cmd.code))
        fields = cmd.model_dump(include={"code", "name", "sector", "kind", "dong", "district"})
        self._record(uow, aggregate, OrganisationRegistered, fields, cmd)
        return cmd.code

    def _register_worker(self, cmd: c.RegisterWorker, uow: _UnitOfWork) -> str:
        self._organisation(cmd.organisation)
        aggregate = self._new(Worker, worker_id(cmd.code), "worker", repr(cmd.code))
        personal = PersonalData(name=cmd.name) if cmd.name else None
        fields = {
            "code": cmd.code,
            "worker_organisation": cmd.organisation,
            "role": cmd.role,
            "personal": personal,
        }
        self._record(uow, aggregate, WorkerRegistered, fields, cmd)
        return cmd.code

    def _discover_household(self, cmd: c.DiscoverHousehold, uow: _UnitOfWork) -> UUID:
        if cmd.referred_by is not None:
            self._organisation(cmd.referred_by)
        numbers = [m.member_no for m in cmd.members]
        if len(set(numbers)) != len(numbers):
            raise InvalidInput("members: member_no must be unique within the household")
        aggregate = self._new(Household, cmd.household_id, "household")
        fields = cmd.model_dump(
            include={"dong", "district", "channel", "crisis_codes", "batch", "referred_by"}
        )
        fields["members"] = cmd.members
        fields["personal"] = cmd.personal
        self._record(uow, aggregate, HouseholdDiscovered, fields, cmd)
        return aggregate.id

    def _record_consultation(self, cmd: c.RecordConsultation, uow: _UnitOfWork) -> Event:
        household = self._household(cmd.household_id)
        fields = {
            "method": cmd.method,
            "outcome": cmd.outcome,
            "problems": cmd.problems,
            "personal": PersonalData(notes=cmd.notes) if cmd.notes else None,
        }
        return self._record(uow, household, ConsultationRecorded, fields, cmd)

    def _open_case(self, cmd: c.OpenCase, uow: _UnitOfWork) -> UUID:
        household = self._household(cmd.household_id)
        if not household.intake_consulted:
            msg = (
                f"household {household.id} has no consultation with outcome 'intake'; "
                "record_consultation(..., outcome='intake') before open_case"
            )
            raise StageError(msg)
        _not_before_discovery(cmd.at, household.discovered_at)
        actor = self._worker(cmd.by)
        assigned = self._worker(cmd.worker) if cmd.worker else actor
        organisation = self._organisation(assigned.organisation)
        aggregate = self._new(Case, cmd.case_id, "case")
        fields = {
            "household_id": household.id,
            "dong": household.dong,
            "district": household.district,
            "case_organisation": organisation.code,
            "worker": assigned.code,
            "discovered_at": household.discovered_at,
        }
        self._record(uow, aggregate, CaseOpened, fields, cmd, actor)
        return aggregate.id

    def _case_command(
        self, decide: Callable[[Case, Any], rules.Decision]
    ) -> Callable[[Any, _UnitOfWork], Event]:
        def handle(cmd: Any, uow: _UnitOfWork) -> Event:
            case = self._case(cmd.case_id)
            event_cls, fields = decide(case, cmd)
            return self._record(uow, case, event_cls, fields, cmd)

        return handle

    def _with_actor(
        self, decide: Callable[[Case, Any, Worker], rules.Decision]
    ) -> Callable[[Any, _UnitOfWork], Event]:
        def handle(cmd: Any, uow: _UnitOfWork) -> Event:
            case = self._case(cmd.case_id)
            actor = self._worker(cmd.by)
            event_cls, fields = decide(case, cmd, actor)
            return self._record(uow, case, event_cls, fields, cmd, actor)

        return handle

    def _hold_meeting(self, cmd: c.HoldMeeting, uow: _UnitOfWork) -> UUID:
        self._organisation(cmd.host)
        for attendee in cmd.attendees:
            self._organisation(attendee.organisation)
        agenda = list(dict.fromkeys(cmd.agenda))
        for case_id in cmd.decisions:
            if case_id not in agenda:
                msg = f"decisions: case {case_id} is not on the meeting's agenda"
                raise InvalidInput(msg)
        for case_id in agenda:
            self._case(case_id)
        aggregate = self._new(CaseMeeting, cmd.meeting_id, "meeting")
        fields = {
            "kind": cmd.kind,
            "host": cmd.host,
            "title": cmd.title,
            "attendees": cmd.attendees,
            "agenda": tuple(AgendaItem(case_id=i, decision=cmd.decisions.get(i)) for i in agenda),
        }
        self._record(uow, aggregate, CaseMeetingHeld, fields, cmd)
        return aggregate.id

    def _classify(self, cmd: c.Classify, uow: _UnitOfWork) -> Event:
        case = self._case(cmd.case_id)
        meeting = self._meeting(cmd.meeting_id)
        event_cls, fields = rules.decide_classify(case, cmd, meeting)
        return self._record(uow, case, event_cls, fields, cmd)

    def _link_service(self, cmd: c.LinkService, uow: _UnitOfWork) -> Event:
        case = self._case(cmd.case_id)
        provider = self._organisation(cmd.provider)
        if cmd.meeting_id is not None:
            self._meeting(cmd.meeting_id).require_authority_for(case.id, cmd.at, "a service link")
        event_cls, fields = rules.decide_link(case, cmd, provider, cmd.link_id or uuid.uuid4())
        return self._record(uow, case, event_cls, fields, cmd)

    def _refer(self, cmd: c.Refer, uow: _UnitOfWork) -> Event:
        case = self._case(cmd.case_id)
        actor = self._worker(cmd.by)
        self._organisation(cmd.to)
        referral_id = cmd.referral_id or uuid.uuid4()
        event_cls, fields = rules.decide_refer(case, cmd, actor, referral_id)
        return self._record(uow, case, event_cls, fields, cmd, actor)

    def _close_case(self, cmd: c.CloseCase, uow: _UnitOfWork) -> Event:
        case = self._case(cmd.case_id)
        meeting = self._meeting(cmd.meeting_id)
        event_cls, fields = rules.decide_close(case, cmd, meeting)
        return self._record(uow, case, event_cls, fields, cmd)

    def _reopen_case(self, cmd: c.ReopenCase, uow: _UnitOfWork) -> Event:
        case = self._case(cmd.case_id)
        worker = self._worker(cmd.worker or cmd.by)
        event_cls, fields = rules.decide_reopen(case, cmd, worker)
        return self._record(uow, case, event_cls, fields, cmd)

    def _transfer_case(self, cmd: c.TransferCase, uow: _UnitOfWork) -> Event:
        case = self._case(cmd.case_id)
        to = self._organisation(cmd.to_organisation)
        worker = self._worker(cmd.to_worker)
        event_cls, fields = rules.decide_transfer(case, cmd, to, worker)
        return self._record(uow, case, event_cls, fields, cmd)

    def _grant_consent(self, cmd: c.GrantConsent, uow: _UnitOfWork) -> UUID:
        household = self._household(cmd.household_id)
        if cmd.member_no not in household.member_nos:
            msg = f"household {household.id} has no member number {cmd.member_no}"
            raise RuleViolation(msg)
        for code in cmd.recipients:
            self._organisation(code)
        if cmd.expires_at is not None and cmd.expires_at <= cmd.at:
            raise InvalidInput("expires_at: a consent must expire after it was granted")
        consent_id = cmd.consent_id or uuid.uuid4()
        if consent_id in household.consents:
            raise AlreadyExists(f"consent {consent_id} exists already")
        fields = {
            "consent_id": consent_id,
            "member_no": cmd.member_no,
            "scopes": cmd.scopes,
            "recipients": cmd.recipients,
            "purpose": cmd.purpose,
            "expires_at": cmd.expires_at,
        }
        self._record(uow, household, ConsentGranted, fields, cmd)
        return consent_id

    def _withdraw_consent(self, cmd: c.WithdrawConsent, uow: _UnitOfWork) -> Event:
        household = self._household(cmd.household_id)
        consent = household.consents.get(cmd.consent_id)
        if consent is None:
            msg = f"household {household.id} has no consent {cmd.consent_id}"
            raise ConsentNotFound(msg)
        if consent.withdrawn_at is not None:
            msg = (
                f"consent {cmd.consent_id} was already withdrawn on {consent.withdrawn_at:%Y-%m-%d}"
            )
            raise RuleViolation(msg)
        return self._record(uow, household, ConsentWithdrawn, {"consent_id": cmd.consent_id}, cmd)

    def _erase_household(self, cmd: c.EraseHousehold, uow: _UnitOfWork) -> Event:
        household = self._household(cmd.household_id)
        check_erasure(self.policy, household, self._cases_of(household.id), cmd.at)
        return self._record(uow, household, HouseholdErased, {"reason": cmd.reason}, cmd)

    # -- the verbs -------------------------------------------------------------------------

    def _run(self, cls: type[Any], **fields: Any) -> Any:
        try:
            cmd = cls(**{k: v for k, v in fields.items() if v is not None})
        except ValidationError as e:
            raise _invalid(e, cls.__name__) from None
        return self.execute(cmd)

    def register_organisation(
        self,
        code: str,
        *,
        name: str,
        sector: Sector | str,
        at: datetime,
        kind: str = "organisation",
        dong: str | None = None,
        district: str | None = None,
        by: str = _SYSTEM,
        idempotency_key: str | None = None,
    ) -> str:
        """Register an organisation under ``code``; returns the code."""
        return self._run(  # type: ignore[no-any-return]
            c.RegisterOrganisation, code=code, name=name, sector=sector, kind=kind, dong=dong,
            district=district, by=by, at=at, idempotency_key=idempotency_key,
        )  # fmt: skip

    def register_worker(
        self,
        code: str,
        *,
        organisation: str,
        role: Role | str,
        at: datetime,
        name: str | None = None,
        by: str = _SYSTEM,
        idempotency_key: str | None = None,
    ) -> str:
        """Register a worker account with a role in an organisation; returns the code."""
        return self._run(  # type: ignore[no-any-return]
            c.RegisterWorker, code=code, organisation=organisation, role=role, name=name,
            by=by, at=at, idempotency_key=idempotency_key,
        )  # fmt: skip

    def discover_household(
        self,
        *,
        dong: str,
        district: str,
        channel: Channel | str,
        by: str,
        at: datetime,
        members: Sequence[Member | dict[str, Any]] = (),
        crisis_codes: Sequence[str] = (),
        batch: str | None = None,
        referred_by: str | None = None,
        personal: PersonalData | dict[str, Any] | None = None,
        household_id: UUID | None = None,
        idempotency_key: str | None = None,
    ) -> UUID:
        """Record a household found in need (발굴); returns the new household id."""
        return self._run(  # type: ignore[no-any-return]
            c.DiscoverHousehold, dong=dong, district=district, channel=channel,
            members=tuple(members), crisis_codes=tuple(crisis_codes), batch=batch,
            referred_by=referred_by, personal=personal, household_id=household_id, by=by,
            at=at, idempotency_key=idempotency_key,
        )  # fmt: skip

    def record_consultation(
        self,
        household_id: UUID,
        *,
        method: ConsultationMethod | str,
        outcome: ConsultationOutcome | str,
        by: str,
        at: datetime,
        problems: Sequence[NeedDomain | str] = (),
        notes: str | None = None,
        idempotency_key: str | None = None,
    ) -> Event:
        """Record an initial consultation (초기상담) with a household."""
        return self._run(  # type: ignore[no-any-return]
            c.RecordConsultation, household_id=household_id, method=method, outcome=outcome,
            problems=tuple(problems), notes=notes, by=by, at=at, idempotency_key=idempotency_key,
        )  # fmt: skip

    def open_case(
        self,
        household_id: UUID,
        *,
        by: str,
        at: datetime,
        worker: str | None = None,
        case_id: UUID | None = None,
        idempotency_key: str | None = None,
    ) -> UUID:
        """Open a case at intake (접수) for a household; returns the new case id.

        The household needs a consultation with outcome ``intake`` first. The case is
        assigned to ``worker`` (default: the acting worker) and that worker's organisation.
        """
        return self._run(  # type: ignore[no-any-return]
            c.OpenCase, household_id=household_id, worker=worker, case_id=case_id, by=by, at=at,
            idempotency_key=idempotency_key,
        )  # fmt: skip

    def assess_needs(
        self,
        case_id: UUID,
        *,
        needs: Sequence[NeedRating | dict[str, Any]],
        by: str,
        at: datetime,
        risk: RiskRating | dict[str, Any] | None = None,
        notes: str | None = None,
        idempotency_key: str | None = None,
    ) -> Event:
        """Record the needs and risk assessment (욕구 및 위기도 조사) of a new case."""
        return self._run(  # type: ignore[no-any-return]
            c.AssessNeeds, case_id=case_id, needs=tuple(needs), risk=risk, notes=notes, by=by,
            at=at, idempotency_key=idempotency_key,
        )  # fmt: skip

    def hold_meeting(
        self,
        *,
        kind: MeetingKind | str,
        host: str,
        by: str,
        at: datetime,
        agenda: Sequence[UUID] = (),
        decisions: dict[UUID, MeetingDecision | str] | None = None,
        attendees: Sequence[MeetingAttendee | dict[str, Any]] = (),
        title: str = "",
        meeting_id: UUID | None = None,
        idempotency_key: str | None = None,
    ) -> UUID:
        """Record a case meeting (사례회의) held by ``host``; returns the meeting id.

        ``agenda`` lists the cases discussed; ``decisions`` maps some of them to the
        meeting's decision. Selection and closure must later name this meeting.
        """
        return self._run(  # type: ignore[no-any-return]
            c.HoldMeeting, kind=kind, host=host, agenda=tuple(agenda), decisions=decisions or {},
            attendees=tuple(attendees), title=title, meeting_id=meeting_id, by=by, at=at,
            idempotency_key=idempotency_key,
        )  # fmt: skip

    def classify(
        self,
        case_id: UUID,
        *,
        meeting: UUID,
        track: Track | str,
        criteria_version: str,
        by: str,
        at: datetime,
        level: Level | str = Level.GENERAL,
        rationale: str = "",
        notes: str | None = None,
        idempotency_key: str | None = None,
    ) -> Event:
        """Record the selection decision (대상자 선정) taken at ``meeting``."""
        return self._run(  # type: ignore[no-any-return]
            c.Classify, case_id=case_id, meeting_id=meeting, track=track, level=level,
            criteria_version=criteria_version, rationale=rationale, notes=notes, by=by, at=at,
            idempotency_key=idempotency_key,
        )  # fmt: skip

    def agree_plan(
        self,
        case_id: UUID,
        *,
        services: Sequence[PlannedService | dict[str, Any]],
        by: str,
        at: datetime,
        goal_count: int = 1,
        agreed_on: date | None = None,
        notes: str | None = None,
        idempotency_key: str | None = None,
    ) -> Event:
        """Record a service plan agreed with the client (or a revision)."""
        return self._run(  # type: ignore[no-any-return]
            c.AgreePlan, case_id=case_id, services=tuple(services), goal_count=goal_count,
            agreed_on=agreed_on, notes=notes, by=by, at=at, idempotency_key=idempotency_key,
        )  # fmt: skip

    def link_service(
        self,
        case_id: UUID,
        *,
        service: str,
        provider: str,
        domain: NeedDomain | str,
        by: str,
        at: datetime,
        kind: ServiceKind | str = ServiceKind.SERVICE,
        sector: Sector | str | None = None,
        amount: Decimal | int | str | None = None,
        referral_id: UUID | None = None,
        meeting: UUID | None = None,
        link_id: UUID | None = None,
        idempotency_key: str | None = None,
    ) -> Event:
        """Link a service from ``provider`` to the case (서비스연계).

        The sector defaults to the provider's. Returns the ``ServiceLinked`` event; its
        ``link_id`` is what service checks name.
        """
        return self._run(  # type: ignore[no-any-return]
            c.LinkService, case_id=case_id, service=service, provider=provider, domain=domain,
            kind=kind, sector=sector, amount=amount, referral_id=referral_id,
            meeting_id=meeting, link_id=link_id, by=by, at=at, idempotency_key=idempotency_key,
        )  # fmt: skip

    def refer(
        self,
        case_id: UUID,
        *,
        to: str,
        domain: NeedDomain | str,
        by: str,
        at: datetime,
        purpose: str = "",
        referral_id: UUID | None = None,
        idempotency_key: str | None = None,
    ) -> Event:
        """Refer the case to organisation ``to``; returns the ``ReferralSent`` event."""
        return self._run(  # type: ignore[no-any-return]
            c.Refer, case_id=case_id, to=to, domain=domain, purpose=purpose,
            referral_id=referral_id, by=by, at=at, idempotency_key=idempotency_key,
        )  # fmt: skip

    def respond_to_referral(
        self,
        case_id: UUID,
        referral_id: UUID,
        *,
        accept: bool,
        by: str,
        at: datetime,
        reason: str = "",
        idempotency_key: str | None = None,
    ) -> Event:
        """Accept or reject (with a reason) a referral, as the receiving organisation."""
        return self._run(  # type: ignore[no-any-return]
            c.RespondToReferral, case_id=case_id, referral_id=referral_id, accept=accept,
            reason=reason, by=by, at=at, idempotency_key=idempotency_key,
        )  # fmt: skip

    def complete_referral(
        self,
        case_id: UUID,
        referral_id: UUID,
        *,
        by: str,
        at: datetime,
        idempotency_key: str | None = None,
    ) -> Event:
        """Mark an accepted referral completed, as the receiving organisation."""
        return self._run(  # type: ignore[no-any-return]
            c.CompleteReferral, case_id=case_id, referral_id=referral_id, by=by, at=at,
            idempotency_key=idempotency_key,
        )  # fmt: skip

    def revoke_referral(
        self,
        case_id: UUID,
        referral_id: UUID,
        *,
        by: str,
        at: datetime,
        reason: str = "",
        idempotency_key: str | None = None,
    ) -> Event:
        """Revoke a referral that is not yet completed, as the sending organisation."""
        return self._run(  # type: ignore[no-any-return]
            c.RevokeReferral, case_id=case_id, referral_id=referral_id, reason=reason, by=by,
            at=at, idempotency_key=idempotency_key,
        )  # fmt: skip

    def check_service(
        self,
        case_id: UUID,
        *,
        link_id: UUID,
        method: CheckMethod | str,
        progress: int,
        by: str,
        at: datetime,
        decision: CheckDecision | str = CheckDecision.CONTINUE,
        notes: str | None = None,
        idempotency_key: str | None = None,
    ) -> Event:
        """Record a service check (서비스점검): progress toward goals and a decision."""
        return self._run(  # type: ignore[no-any-return]
            c.CheckService, case_id=case_id, link_id=link_id, method=method, progress=progress,
            decision=decision, notes=notes, by=by, at=at, idempotency_key=idempotency_key,
        )  # fmt: skip

    def reassess(
        self,
        case_id: UUID,
        *,
        needs: Sequence[NeedRating | dict[str, Any]],
        by: str,
        at: datetime,
        risk: RiskRating | dict[str, Any] | None = None,
        notes: str | None = None,
        idempotency_key: str | None = None,
    ) -> Event:
        """Record a reassessment (재사정) of an assessed case."""
        return self._run(  # type: ignore[no-any-return]
            c.Reassess, case_id=case_id, needs=tuple(needs), risk=risk, notes=notes, by=by,
            at=at, idempotency_key=idempotency_key,
        )  # fmt: skip

    def record_supervision(
        self,
        case_id: UUID,
        *,
        by: str,
        at: datetime,
        notes: str | None = None,
        idempotency_key: str | None = None,
    ) -> Event:
        """Record supervision (슈퍼비전) given on a case."""
        return self._run(  # type: ignore[no-any-return]
            c.RecordSupervision, case_id=case_id, notes=notes, by=by, at=at,
            idempotency_key=idempotency_key,
        )  # fmt: skip

    def close_case(
        self,
        case_id: UUID,
        *,
        meeting: UUID,
        reason: ClosureReason | str,
        by: str,
        at: datetime,
        idempotency_key: str | None = None,
    ) -> Event:
        """Close a case (종결) as decided at ``meeting``, with a reason."""
        return self._run(  # type: ignore[no-any-return]
            c.CloseCase, case_id=case_id, meeting_id=meeting, reason=reason, by=by, at=at,
            idempotency_key=idempotency_key,
        )  # fmt: skip

    def follow_up(
        self,
        case_id: UUID,
        *,
        by: str,
        at: datetime,
        method: CheckMethod | str = CheckMethod.PHONE,
        recommend_reopen: bool = False,
        notes: str | None = None,
        idempotency_key: str | None = None,
    ) -> Event:
        """Record follow-up (사후관리) on a closed case."""
        return self._run(  # type: ignore[no-any-return]
            c.FollowUp, case_id=case_id, method=method, recommend_reopen=recommend_reopen,
            notes=notes, by=by, at=at, idempotency_key=idempotency_key,
        )  # fmt: skip

    def reopen_case(
        self,
        case_id: UUID,
        *,
        by: str,
        at: datetime,
        reason: str = "",
        worker: str | None = None,
        idempotency_key: str | None = None,
    ) -> Event:
        """Reopen a closed case (재개); it goes back to intake."""
        return self._run(  # type: ignore[no-any-return]
            c.ReopenCase, case_id=case_id, reason=reason, worker=worker, by=by, at=at,
            idempotency_key=idempotency_key,
        )  # fmt: skip

    def transfer_case(
        self,
        case_id: UUID,
        *,
        to_organisation: str,
        to_worker: str,
        by: str,
        at: datetime,
        idempotency_key: str | None = None,
    ) -> Event:
        """Transfer an open case (이관) to a worker of another organisation."""
        return self._run(  # type: ignore[no-any-return]
            c.TransferCase, case_id=case_id, to_organisation=to_organisation,
            to_worker=to_worker, by=by, at=at, idempotency_key=idempotency_key,
        )  # fmt: skip

    def grant_consent(
        self,
        household_id: UUID,
        *,
        scopes: Sequence[ConsentScope | str],
        purpose: str,
        by: str,
        at: datetime,
        member_no: int = 1,
        recipients: Sequence[str] = (),
        expires_at: datetime | None = None,
        consent_id: UUID | None = None,
        idempotency_key: str | None = None,
    ) -> UUID:
        """Record a household member's consent (정보제공 동의); returns the consent id.

        An empty ``recipients`` means any organisation; otherwise only those named.
        """
        return self._run(  # type: ignore[no-any-return]
            c.GrantConsent, household_id=household_id, member_no=member_no,
            scopes=tuple(scopes), recipients=tuple(recipients), purpose=purpose,
            expires_at=expires_at, consent_id=consent_id, by=by, at=at,
            idempotency_key=idempotency_key,
        )  # fmt: skip

    def withdraw_consent(
        self,
        household_id: UUID,
        consent_id: UUID,
        *,
        by: str,
        at: datetime,
        idempotency_key: str | None = None,
    ) -> Event:
        """Record that a household member withdrew a consent."""
        return self._run(  # type: ignore[no-any-return]
            c.WithdrawConsent, household_id=household_id, consent_id=consent_id, by=by, at=at,
            idempotency_key=idempotency_key,
        )  # fmt: skip

    # -- privacy (caseledger.privacy) ------------------------------------------------------

    def erase_household(
        self,
        household_id: UUID,
        *,
        reason: str,
        by: str,
        at: datetime,
        idempotency_key: str | None = None,
    ) -> Event:
        """Destroy a household's personal data (파기) by destroying its data key.

        Records ``HouseholdErased`` (no personal data in it) and deletes the wrapped
        data key from every database file. Afterwards the household's personal fields
        read as erased everywhere; its structure (cases, dates, categories) stays, and
        the stored records, and so the Merkle log, do not change. The policy's
        retention rule may refuse it (:class:`~caseledger.errors.RetentionError`).
        """
        return self._run(  # type: ignore[no-any-return]
            c.EraseHousehold, household_id=household_id, reason=reason, by=by, at=at,
            idempotency_key=idempotency_key,
        )  # fmt: skip

    def authorise(self, command: Any) -> str:
        """Whether the policy allows a command now; returns the allowing rule's id.

        Raises :class:`~caseledger.errors.AuthorityError` (or ``ConsentError``) as
        :meth:`execute` would, without recording anything. For user interfaces.
        """
        with self._lock:
            return authorise_command(self.policy, command, self._directory)

    def reader(self, account: str, *, terminal: str | None = None) -> Reader:
        """A view for reading personal data as worker ``account`` from ``terminal``.

        Every read through it is checked against the policy and recorded as an access
        record (see :class:`~caseledger.privacy.Reader`). ``terminal`` names the client
        (IP address, terminal id); default: :func:`caseledger.access.current_terminal`::

            reader = ledger.reader("jungang-officer", terminal="10.20.30.40")
            events = reader.history(case_id)
        """
        context = ReadContext(
            policy=self.policy,
            directory=self._directory,
            store=self._store,
            keys=self.keys,
            access=self.access,
            clock=self._clock,
            lock=self._lock,
        )
        with self._lock:
            return Reader(account, terminal or current_terminal(), context)

    def access_report(self, month: str | date) -> AccessReport:
        """The monthly inspection of the access records (``"2022-02"``)."""
        return access_report(self.access, self.policy, month)

    # -- queries ---------------------------------------------------------------------------

    def case(self, case_id: UUID) -> Case:
        """The current state of a case (a copy: changing it changes nothing)."""
        return self._case(_as_uuid(case_id, "case_id")).clone()

    def household(self, household_id: UUID) -> Household:
        """The current state of a household (a copy)."""
        return self._household(_as_uuid(household_id, "household_id")).clone()

    def meeting(self, meeting_id: UUID) -> CaseMeeting:
        """A case meeting as it was held (a copy)."""
        return self._meeting(_as_uuid(meeting_id, "meeting_id")).clone()

    def organisation(self, code: str) -> Organisation:
        """A registered organisation (a copy)."""
        return self._organisation(code).clone()

    def worker(self, code: str) -> Worker:
        """A registered worker (a copy)."""
        return self._worker(code).clone()

    def history(self, case_id: UUID) -> list[CaseEvent]:
        """Every event of a case, in the order it was recorded."""
        case_id = _as_uuid(case_id, "case_id")
        records = self._store.read_aggregate(case_id)
        events = [codec.decode(r) for r in records]
        if not events or not isinstance(events[0], CaseOpened):
            msg = f"case {case_id} does not exist in this ledger"
            raise CaseNotFound(msg)
        return events  # type: ignore[return-value]

    def events(self, since: int = 0, *, batch_size: int = 2000) -> Iterator[LogEntry]:
        """Stream the whole log in order, from the position after ``since``."""
        for n in self._store.iter_log(since + 1, batch_size=batch_size):
            yield LogEntry(n.id, codec.decode(n))

    def records(self, since: int = 0, *, batch_size: int = 2000) -> Iterator[Notification]:
        """Stream the raw stored records (position, ids, topic, state bytes) in log order."""
        return self._store.iter_log(since + 1, batch_size=batch_size)

    # -- integrity (caseledger.merkle_log) ---------------------------------------------------

    def verify(
        self,
        checkpoints: Sequence[str | bytes] = (),
        public_key: str | None = None,
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> VerificationReport:
        """Recompute every leaf of the Merkle log from the stored records and check them.

        Each signed checkpoint (verified with ``public_key``) must have the root of the
        first ``size`` records, and successive ones must be consistent. The report says
        which log positions were modified, deleted, inserted or reordered.
        ``on_progress``, if given, is called after each page with the number of records
        checked so far (for a progress bar).
        """
        return self.merkle.verify(checkpoints, public_key, on_progress=on_progress)

    def checkpoint(self, signer_key: str, *, origin: str | None = None) -> str:
        """A signed checkpoint (C2SP signed note) of the log now; hand it to an auditor."""
        return self.merkle.checkpoint(signer_key, origin=origin)

    def prove(self, case_id: UUID, signer_key: str, *, origin: str | None = None) -> ProofBundle:
        """A proof bundle: the case's records, each with its inclusion proof, and a checkpoint."""
        return self.merkle.prove(_as_uuid(case_id, "case_id"), signer_key, origin=origin)

    # -- read models (caseledger.projections) ----------------------------------------------

    @property
    def projections(self) -> Projections:
        """The read models of this ledger (see :mod:`caseledger.projections`)."""
        return self._projections

    def caseload(
        self,
        *,
        as_of: date | datetime | None = None,
        as_of_recorded: date | datetime | None = None,
        dong: str | None = None,
        district: str | None = None,
        organisation: str | None = None,
        worker: str | None = None,
        stage: str | None = None,
        include_closed: bool = False,
        today: date | None = None,
    ) -> list[CaseloadEntry]:
        """Every case not closed (``include_closed=True``: closed ones too), filtered.

        Now by default; ``as_of=`` what was true in the world then, ``as_of_recorded=``
        what the ledger knew then (see :mod:`caseledger.projections`). ``today`` is the
        day days-in-stage and due dates are counted to (default: the clock's today).
        """
        return self._projections.caseload(
            now=self._clock(), as_of=as_of, as_of_recorded=as_of_recorded, today=today,
            dong=dong, district=district, organisation=organisation, worker=worker,
            stage=stage, include_closed=include_closed,
        )  # fmt: skip

    def case_state(
        self,
        case_id: UUID,
        *,
        as_of: date | datetime | None = None,
        as_of_recorded: date | datetime | None = None,
        today: date | None = None,
    ) -> CaseloadEntry:
        """One case as the caseload shows it, now or at a point on either time axis."""
        return self._projections.case_state(
            _as_uuid(case_id, "case_id"), now=self._clock(), as_of=as_of,
            as_of_recorded=as_of_recorded, today=today,
        )  # fmt: skip

    def worker_caseloads(
        self,
        *,
        as_of: date | datetime | None = None,
        as_of_recorded: date | datetime | None = None,
        dong: str | None = None,
        district: str | None = None,
        organisation: str | None = None,
    ) -> WorkerCaseloads:
        """Open cases per assigned worker, and workers per bucket (0–9, 10–19, 20–29, 30+)."""
        return self._projections.worker_caseloads(
            as_of=as_of, as_of_recorded=as_of_recorded, dong=dong, district=district,
            organisation=organisation,
        )  # fmt: skip

    def audit_trail(
        self,
        *,
        case_id: UUID | None = None,
        worker: str | None = None,
        limit: int = 100,
        after: int | None = None,
    ) -> AuditPage:
        """A page of the audit trail of a case, of an acting worker, or of everything.

        Entries are in log order; pass the page's ``next_after`` as ``after=`` for the next.
        """
        return self._projections.audit_trail(
            case_id=_as_uuid(case_id, "case_id") if case_id is not None else None,
            worker=worker, limit=limit, after=after,
        )  # fmt: skip

    def kpis(
        self,
        period: str,
        *,
        by: str | None = None,
        compare_previous: bool = True,
        dong: str | None = None,
        district: str | None = None,
        organisation: str | None = None,
        worker: str | None = None,
        as_of: date | datetime | None = None,
        as_of_recorded: date | datetime | None = None,
    ) -> KpiReport:
        """Monitoring figures for ``period`` (``2022``, ``2022-02``, ``2022Q1``).

        ``by`` breaks them down per ``dong``, ``district``, ``organisation`` or ``worker``;
        the previous period of the same length is beside each figure unless
        ``compare_previous=False``. See :mod:`caseledger.projections.kpis` for the metrics.
        """
        return self._projections.kpis(
            period, by=by, compare_previous=compare_previous, dong=dong, district=district,
            organisation=organisation, worker=worker, as_of=as_of,
            as_of_recorded=as_of_recorded,
        )  # fmt: skip

    def meetings(
        self,
        *,
        period: str | None = None,
        kind: str | None = None,
        host: str | None = None,
        dong: str | None = None,
        district: str | None = None,
    ) -> list[MeetingEntry]:
        """The meeting register: meetings (in ``period``), attendees, agenda and decisions."""
        return self._projections.meetings(
            period=period, kind=kind, host=host, dong=dong, district=district
        )

    def due(
        self,
        *,
        overdue_only: bool = False,
        today: date | None = None,
        deadlines: Deadlines | None = None,
        dong: str | None = None,
        district: str | None = None,
        organisation: str | None = None,
        worker: str | None = None,
    ) -> list[DueItem]:
        """What is due on current cases (and overdue on ``today``), earliest first."""
        return self._projections.due(
            now=self._clock(), overdue_only=overdue_only, today=today, deadlines=deadlines,
            dong=dong, district=district, organisation=organisation, worker=worker,
        )  # fmt: skip

    def rebuild(self, *, on_progress: Callable[[int], None] | None = None) -> int:
        """Drop every read model and rebuild it from the log; return the events replayed.

        ``on_progress``, if given, is called after each batch with the number of events
        replayed so far (for a progress bar).
        """
        return self._projections.rebuild(on_progress=on_progress)

    def project(self, *, batch_size: int = 1000, max_batches: int | None = None) -> int:
        """Apply to the read models the events they have not seen yet; return how many."""
        return self._projections.project(batch_size=batch_size, max_batches=max_batches)

    def follow(
        self,
        *,
        poll: float = 1.0,
        batch_size: int = 1000,
        stop: threading.Event | None = None,
    ) -> int:
        """Keep the read models current until ``stop`` is set (a follower process)."""
        return self._projections.follow(poll=poll, batch_size=batch_size, stop=stop)

    # -- exports (caseledger.export) -------------------------------------------------------

    def export(self, out: str | Path, **options: Any) -> ExportSummary:
        """Write a table (events, cases, kpis) or the OCEL 2.0 log to the file ``out``.

        Options as for :func:`caseledger.export.export` (``format``, ``table``,
        ``deidentify``, ``period``, ``as_of``, ``account``, ``reason`` …); access records
        of an identified export are stamped with this ledger's clock.
        """
        from caseledger.export import export  # keeps the exporters off the import path

        return export(self, out, now=self._clock(), **options)

    def to_arrow(self, table: str = "events", **options: Any) -> Any:
        """``table`` (``events``, ``cases`` or ``kpis``) as a ``pyarrow.Table``.

        Needs ``pip install 'caseledger[arrow]'``; options as for
        :func:`caseledger.export.to_arrow` (``deidentify``, ``period``, ``as_of`` …).
        """
        from caseledger.export import to_arrow

        return to_arrow(self, table, **options)

    def to_pandas(self, table: str = "events", **options: Any) -> Any:
        """``table`` as a pandas ``DataFrame`` (needs pandas); see :meth:`to_arrow`."""
        from caseledger.export import to_pandas

        return to_pandas(self, table, **options)

    def to_polars(self, table: str = "events", **options: Any) -> Any:
        """``table`` as a polars ``DataFrame`` (needs polars); see :meth:`to_arrow`."""
        from caseledger.export import to_polars

        return to_polars(self, table, **options)

    def __len__(self) -> int:
        """The number of events in the log."""
        return self._store.max_position()


_SYSTEM_EVENTS = (OrganisationRegistered, WorkerRegistered)


def _is_kind(state: Aggregate) -> bool:
    # A state of the wrong aggregate class misses the attributes its first event sets.
    first = {
        Case: "household_id",
        Household: "channel",
        CaseMeeting: "kind",
        Organisation: "sector",
        Worker: "role",
    }.get(type(state))
    return first is None or hasattr(state, first)


def _not_before_discovery(at: datetime, discovered_at: datetime) -> None:
    if at < discovered_at:
        msg = (
            f"at={at.isoformat()} is before the household was discovered "
            f"({discovered_at.isoformat()})"
        )
        raise TimeError(msg)


def _as_uuid(value: Any, name: str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        msg = f"{name}: {value!r} is not a valid id (expected a UUID)"
        raise InvalidInput(msg, [(name, "not a UUID")]) from None


def _invalid(error: ValidationError, what: str = "") -> InvalidInput:
    problems = []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "(command)"
        problems.append((path, item["msg"]))
    first = "; ".join(f"{p}: {m}" for p, m in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    prefix = f"{what}: " if what else ""
    return InvalidInput(f"{prefix}{first}{more}", problems)
