"""Access records (접속기록): every processing of personal data, in a tamper-evident log.

Korean law (the PIPC security standard, 안전성 확보조치 기준) asks a system that
processes personal data to record who processed whose data, when, from where and
how, to keep those records safe from forgery, and to inspect them at least monthly.

An :class:`AccessRecord` holds the account, its organisation and role, the date-time,
the terminal it came from, whose data (a household, or a worker), the action
(:class:`AccessAction`: view, input, change, delete, print, download), the stated
reason (required for downloads), and whether the case was in the reader's caseload
and organisation. The ledger appends one:

* for every read of personal data through a reader (:meth:`caseledger.Ledger.reader`);
* for every command that records personal data (``input``, or ``change`` for a
  reassessment or plan revision), in the same transaction as its events;
* for every erasure (``delete``).

Access records live in their own table (``caseledger_access``), apart from the case
events, and form a hash chain: each record's hash covers the previous record's hash
and its own fields, so :meth:`AccessLog.verify` finds any record changed, removed or
inserted afterwards. Publish :meth:`AccessLog.head` from time to time (with the Merkle
checkpoints) so that cutting records off the end is caught too.

:func:`access_report` is the monthly inspection: downloads with their reasons, reads
outside the reader's caseload or organisation, reads outside working hours, and
unusual volumes per account, as the policy's ``access_review`` configures them.
"""

from __future__ import annotations

import hashlib
import socket
import statistics
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, NamedTuple
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from caseledger.codec import pack
from caseledger.errors import IntegrityError, InvalidInput
from caseledger.policy import Policy
from caseledger.store import Dialect, EventStore, StoredEvent, Tx
from caseledger.values import LabelledEnum

__all__ = [
    "READ_ACTIONS",
    "AccessAction",
    "AccessEntry",
    "AccessHead",
    "AccessLog",
    "AccessRecord",
    "AccessReport",
    "Finding",
    "access_report",
    "current_terminal",
    "terminal",
]

_TABLE = "caseledger_access"
_LOCK = f"LOCK TABLE {_TABLE} IN SHARE ROW EXCLUSIVE MODE"
_LAST = f"SELECT seq, hash FROM {_TABLE} ORDER BY seq DESC LIMIT 1"  # noqa: S608
_GENESIS = bytes(32)
_HASH_PREFIX = b"caseledger:access:1\x00"
_COLUMNS = (
    "seq, at, account, organisation, role, terminal, subject_kind, subject, case_id, "
    "action, reason, in_caseload, in_organisation, detail, hash"
)


class AccessAction(LabelledEnum):
    """What was done with personal data (처리 유형)."""

    VIEW = "view", "조회", "view"
    INPUT = "input", "입력", "input"
    CHANGE = "change", "수정", "change"
    DELETE = "delete", "삭제", "delete"
    PRINT = "print", "출력", "print"
    DOWNLOAD = "download", "다운로드", "download"


#: The actions that read personal data out of the ledger.
READ_ACTIONS = frozenset({AccessAction.VIEW, AccessAction.PRINT, AccessAction.DOWNLOAD})

# -- where from --------------------------------------------------------------------------

_TERMINAL: ContextVar[str | None] = ContextVar("caseledger_terminal", default=None)
_DEFAULT_TERMINAL = "host:" + socket.gethostname()


@contextmanager
def terminal(name: str) -> Iterator[None]:
    """Within the block, access records of commands say they came from ``name``.

    The embedding application names the client (an IP address, a terminal id)::

        with caseledger.access.terminal("10.20.30.40"):
            ledger.record_consultation(...)
    """
    if not name.strip():
        raise InvalidInput("terminal: give the client or terminal the request came from")
    token = _TERMINAL.set(name.strip())
    try:
        yield
    finally:
        _TERMINAL.reset(token)


def current_terminal() -> str:
    """The terminal set by :func:`terminal`, or ``host:<this machine's name>``."""
    return _TERMINAL.get() or _DEFAULT_TERMINAL


# -- records -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessEntry:
    """An access to record; the log gives it its place in the chain."""

    at: datetime
    account: str
    organisation: str
    role: str
    terminal: str
    subject: UUID
    action: AccessAction
    subject_kind: Literal["household", "worker"] = "household"
    case_id: UUID | None = None
    reason: str | None = None
    in_caseload: bool | None = None
    in_organisation: bool | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if self.action is AccessAction.DOWNLOAD and not (self.reason or "").strip():
            msg = "reason: a download of personal data needs a stated reason"
            raise InvalidInput(msg, [("reason", "required for downloads")])


class AccessRecord(BaseModel):
    """One recorded access, at position ``seq`` of the access log."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=1)
    at: datetime
    account: str
    organisation: str
    role: str
    terminal: str
    subject_kind: Literal["household", "worker"]
    subject: UUID
    case_id: UUID | None
    action: AccessAction
    reason: str | None
    in_caseload: bool | None
    in_organisation: bool | None
    detail: str
    hash: bytes = Field(repr=False)


class AccessHead(NamedTuple):
    """The size of the access log and the hash of its last record (publish it)."""

    size: int
    hash: bytes


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        msg = f"access time {value.isoformat()} has no timezone"
        raise InvalidInput(msg)
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _from_ts(text: str) -> datetime:
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _row_values(seq: int, e: AccessEntry) -> tuple[Any, ...]:
    return (
        seq,
        _ts(e.at),
        e.account,
        e.organisation,
        e.role,
        e.terminal,
        e.subject_kind,
        str(e.subject),
        str(e.case_id) if e.case_id is not None else None,
        e.action.value,
        e.reason,
        None if e.in_caseload is None else int(e.in_caseload),
        None if e.in_organisation is None else int(e.in_organisation),
        e.detail,
    )


def _chain(previous: bytes, values: tuple[Any, ...]) -> bytes:
    return hashlib.sha256(_HASH_PREFIX + previous + pack(list(values))).digest()


def _record(row: tuple[Any, ...]) -> AccessRecord:
    (seq, at, account, org, role, term, kind, subject, case_id, action, reason, in_c, in_o,
     detail, digest) = row  # fmt: skip
    return AccessRecord(
        seq=seq,
        at=_from_ts(at),
        account=account,
        organisation=org,
        role=role,
        terminal=term,
        subject_kind=kind,
        subject=UUID(subject),
        case_id=UUID(case_id) if case_id else None,
        action=AccessAction(action),
        reason=reason,
        in_caseload=_flag(in_c),
        in_organisation=_flag(in_o),
        detail=detail,
        hash=bytes(digest),
    )


def _normalised(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A stored row's values as they were hashed (drivers differ in int and bytes types)."""
    values = list(row[:14])
    values[0] = int(values[0])
    for i in (11, 12):
        values[i] = None if values[i] is None else int(values[i])
    return tuple(values)


class _AccessHook:
    """Creates the access table; appends the access records a commit brings along."""

    def create_statements(self, dialect: Dialect) -> list[str]:
        blob, seq = ("BYTEA", "BIGINT") if dialect == "postgres" else ("BLOB", "INTEGER")
        return [
            f"CREATE TABLE IF NOT EXISTS {_TABLE} (seq {seq} PRIMARY KEY, at TEXT NOT NULL, "
            "account TEXT NOT NULL, organisation TEXT NOT NULL, role TEXT NOT NULL, "
            "terminal TEXT NOT NULL, subject_kind TEXT NOT NULL, subject TEXT NOT NULL, "
            "case_id TEXT, action TEXT NOT NULL, reason TEXT, in_caseload INTEGER, "
            f"in_organisation INTEGER, detail TEXT NOT NULL, hash {blob} NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {_TABLE}_at ON {_TABLE} (at)",
        ]

    def prefetch(self, tx: Tx, records: Sequence[StoredEvent], context: dict[str, Any]) -> None:
        if context.get("access"):
            # The lock first: the chain's end is read once it is this writer's turn.
            tx.prefetch(_LOCK)
            tx.prefetch(_LAST)

    def after_insert(
        self,
        tx: Tx,
        records: Sequence[StoredEvent],
        positions: Sequence[int],
        context: dict[str, Any],
    ) -> None:
        entries = context.get("access")
        if entries:
            AccessLog._write(tx, entries, keep=False)


class AccessLog:
    """The access records of one ledger (``ledger.access``)."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        store.add_hook(_AccessHook())

    @staticmethod
    def write(tx: Tx, entries: Sequence[AccessEntry]) -> list[AccessRecord]:
        """Append ``entries`` inside the transaction ``tx`` (chained to the last record)."""
        return AccessLog._write(tx, entries, keep=True)

    @staticmethod
    def _write(tx: Tx, entries: Sequence[AccessEntry], *, keep: bool) -> list[AccessRecord]:
        if not entries:
            return []
        seq, previous = AccessLog._end_of_chain(tx)
        rows, out = [], []
        for entry in entries:
            seq += 1
            values = _row_values(seq, entry)
            previous = _chain(previous, values)
            rows.append((*values, previous))
            if keep:
                out.append(_record((*values, previous)))
        marks = ",".join("?" * 15)
        tx.executemany(f"INSERT INTO {_TABLE} ({_COLUMNS}) VALUES ({marks})", rows)  # noqa: S608
        return out

    @staticmethod
    def _end_of_chain(tx: Tx) -> tuple[int, bytes]:
        """The last record's sequence number and hash, with the chain locked until commit."""
        if tx.dialect == "postgres":
            # Writers take turns at the end of the chain; SQLite's write lock does the same.
            tx.execute(_LOCK)
        tx.execute(_LAST)
        last = tx.fetchone()
        return (int(last[0]), bytes(last[1])) if last else (0, _GENESIS)

    def append(self, entries: Sequence[AccessEntry]) -> list[AccessRecord]:
        """Append ``entries`` in a transaction of their own; return the records."""
        with self._store.transaction() as tx:
            return self.write(tx, entries)

    def records(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        account: str | None = None,
        batch_size: int = 5000,
    ) -> Iterator[AccessRecord]:
        """Access records in log order, from ``start`` (inclusive) to ``end`` (exclusive)."""
        where, params = ["seq > ?"], []
        if start is not None:
            where.append("at >= ?")
            params.append(_ts(start))
        if end is not None:
            where.append("at < ?")
            params.append(_ts(end))
        if account is not None:
            where.append("account = ?")
            params.append(account)
        sql = (
            f"SELECT {_COLUMNS} FROM {_TABLE} WHERE {' AND '.join(where)} "  # noqa: S608
            f"ORDER BY seq LIMIT {int(batch_size)}"
        )
        after = 0
        while True:
            rows = self._store.query(sql, (after, *params))
            for row in rows:
                yield _record(row)
            if len(rows) < batch_size:
                return
            after = int(rows[-1][0])

    def head(self) -> AccessHead:
        """The number of records and the hash of the last one (as stored; not verified)."""
        rows = self._store.query(f"SELECT seq, hash FROM {_TABLE} ORDER BY seq DESC LIMIT 1")  # noqa: S608
        return AccessHead(int(rows[0][0]), bytes(rows[0][1])) if rows else AccessHead(0, _GENESIS)

    def __len__(self) -> int:
        return self.head().size

    def verify(self, *, batch_size: int = 5000) -> AccessHead:
        """Recompute the hash chain; return the verified head.

        Raises :class:`~caseledger.errors.IntegrityError` naming the first record that
        was changed, or where records were removed or inserted.
        """
        sql = (
            f"SELECT {_COLUMNS} FROM {_TABLE} WHERE seq > ? "  # noqa: S608
            f"ORDER BY seq LIMIT {int(batch_size)}"
        )
        expected, previous = 0, _GENESIS
        while True:
            rows = self._store.query(sql, (expected,))
            for row in rows:
                values = _normalised(row)
                expected += 1
                if values[0] != expected:
                    msg = (
                        f"access record {expected} is missing (the next one is {values[0]}): "
                        "records were removed from the access log"
                    )
                    raise IntegrityError(msg)
                previous = _chain(previous, values)
                if previous != bytes(row[14]):
                    msg = (
                        f"access record {expected} does not match the hash chain: it, or a "
                        "record before it, was changed after it was written"
                    )
                    raise IntegrityError(msg)
            if len(rows) < batch_size:
                return AccessHead(expected, previous)


# -- the monthly report ------------------------------------------------------------------

Check = Literal["download", "outside_organisation", "outside_caseload", "outside_hours", "volume"]


@dataclass(frozen=True)
class Finding:
    """One thing the monthly inspection should look at."""

    check: Check
    account: str
    note: str
    record: AccessRecord | None = None


@dataclass(frozen=True)
class AccessReport:
    """The monthly inspection of the access log (접속기록 점검)."""

    month: str
    timezone: str
    policy_version: str
    chain: AccessHead
    records: int
    reads_per_account: dict[str, int]
    median_reads: float
    findings: tuple[Finding, ...] = field(default=())

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per finding (for tables and CSV)."""
        out = []
        for f in self.findings:
            r = f.record
            local = r.at.astimezone(_zone(self.timezone)) if r is not None else None
            out.append(
                {
                    "check": f.check,
                    "at": local,
                    "account": f.account,
                    "organisation": r.organisation if r else None,
                    "role": r.role if r else None,
                    "terminal": r.terminal if r else None,
                    "action": r.action if r else None,
                    "household": r.subject if r else None,
                    "case": r.case_id if r else None,
                    "reason": r.reason if r else None,
                    "note": f.note,
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """The whole report as plain data (for JSON)."""
        return {
            "month": self.month,
            "timezone": self.timezone,
            "policy_version": self.policy_version,
            "access_log": {"size": self.chain.size, "head": self.chain.hash.hex()},
            "records": self.records,
            "reads_per_account": dict(sorted(self.reads_per_account.items())),
            "median_reads": self.median_reads,
            "findings": self.rows(),
        }


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _month_bounds(month: str, zone: Any) -> tuple[datetime, datetime]:
    try:
        first = datetime.strptime(month, "%Y-%m").replace(tzinfo=zone)
        following = (first.date().replace(day=28) + timedelta(days=4)).replace(day=1)
        end = datetime.combine(following, first.timetz())
        first.astimezone(UTC)  # access records are kept in UTC
    except (ValueError, OverflowError):
        msg = f"month: {month!r} is not a month like 2022-02"
        raise InvalidInput(msg, [("month", "expected YYYY-MM")]) from None
    return first, end


def access_report(log: AccessLog, policy: Policy, month: str | date) -> AccessReport:
    """Inspect the access records of ``month`` (``"2022-02"``, in the policy's timezone).

    The chain is verified first (an :class:`~caseledger.errors.IntegrityError` means
    the log was tampered with). Findings, in this order:

    ``download``
        every download of personal data, with its stated reason;
    ``outside_organisation``
        a read of a case neither in the reader's organisation nor related to it (roles
        in ``organisation_exempt_roles``, auditors by default, are not flagged);
    ``outside_caseload``
        a read, inside the organisation, of a case not assigned to the reader (roles in
        ``caseload_exempt_roles``, supervisors and auditors by default, are not flagged);
    ``outside_hours``
        a read outside ``working_hours`` on ``working_days``;
    ``volume``
        an account that read more than ``volume_factor`` x the median of the accounts
        that read anything this month, or more than ``volume_threshold``.
    """
    review = policy.access_review
    zone = review.zone
    text = month.strftime("%Y-%m") if isinstance(month, date) else month
    start, end = _month_bounds(text, zone)
    head = log.verify()
    records = list(log.records(start=start, end=end))
    reads = [r for r in records if r.action in READ_ACTIONS]
    findings: list[Finding] = []
    for r in records:
        if r.action is AccessAction.DOWNLOAD:
            findings.append(Finding("download", r.account, f"reason: {r.reason}", r))
    for r in reads:
        if r.in_organisation is False:
            if r.role not in review.organisation_exempt_roles:
                note = f"{r.organisation} neither holds nor is related to the case"
                findings.append(Finding("outside_organisation", r.account, note, r))
        elif r.in_caseload is False and r.role not in review.caseload_exempt_roles:
            findings.append(Finding("outside_caseload", r.account, "not assigned to the reader", r))
    begin, finish = review.working_hours
    for r in reads:
        local = r.at.astimezone(zone)
        if local.isoweekday() not in review.working_days or not begin <= local.time() < finish:
            note = f"{local:%a %H:%M} is outside {begin:%H:%M}-{finish:%H:%M}"
            findings.append(Finding("outside_hours", r.account, note, r))
    counts = Counter(r.account for r in reads)
    median = float(statistics.median(counts.values())) if counts else 0.0
    for account, count in sorted(counts.items()):
        reasons = []
        if median and count > review.volume_factor * median:
            reasons.append(f"{count} reads > {review.volume_factor:g} x median {median:g}")
        if review.volume_threshold is not None and count > review.volume_threshold:
            reasons.append(f"{count} reads > threshold {review.volume_threshold}")
        if reasons:
            findings.append(Finding("volume", account, "; ".join(reasons)))
    return AccessReport(
        month=text,
        timezone=review.timezone,
        policy_version=policy.version,
        chain=head,
        records=len(records),
        reads_per_account=dict(counts),
        median_reads=median,
        findings=tuple(findings),
    )
