"""Private by design: reading personal data, erasing it, and recording both.

The pieces (see ``docs/privacy.md`` for the whole picture):

* :mod:`caseledger.policy`: who may record and read what (versioned data);
* :mod:`caseledger.keystore`: per-household data keys under a master key; sealing;
* :mod:`caseledger.access`: access records (접속기록) and the monthly report;
* this module: the :class:`Reader` through which personal data is read (every read
  recorded), the erasure rules (:func:`check_erasure`), and what the ledger records
  as ``input``/``change``/``delete`` accesses when commands carry personal data.

Plain ledger queries (``ledger.history``, ``ledger.events``) never open personal
fields: they come back None with a ``redaction``. Personal data is read through a
reader, which checks the policy, opens the fields and records the access::

    reader = ledger.reader("jungang-officer", terminal="10.20.30.40")
    events = reader.history(case_id)                       # view, one access record
    reader.history(case_id, action="download", reason="사례회의 자료")  # download
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from caseledger import codec
from caseledger.access import READ_ACTIONS, AccessAction, AccessEntry, AccessLog, AccessRecord
from caseledger.case import Case
from caseledger.errors import (
    AuthorityError,
    CaseNotFound,
    InvalidInput,
    RetentionError,
    RuleViolation,
)
from caseledger.events import (
    CaseEvent,
    CaseOpened,
    Event,
    HouseholdErased,
    HouseholdEvent,
    NeedsReassessed,
    ServicePlanAgreed,
    WorkerRegistered,
)
from caseledger.household import Household
from caseledger.keystore import KeyRing
from caseledger.policy import Directory, Policy, ReadGrant, authorise_read
from caseledger.store import Dialect, EventStore, StoredEvent, Tx

__all__ = [
    "HouseholdCases",
    "ReadContext",
    "Reader",
    "access_entries",
    "check_erasure",
    "has_personal_data",
]

_CASES = "caseledger_household_cases"


# ---------------------------------------------------------------------------
# Which cases a household has


class HouseholdCases:
    """An index of each household's cases, written with every ``CaseOpened``.

    Erasure needs it (are the household's cases closed?), and so do reads of a
    household (is it in the reader's caseload?).
    """

    def __init__(self, store: EventStore) -> None:
        self._store = store
        store.add_hook(self)

    def create_statements(self, dialect: Dialect) -> list[str]:
        """The index table."""
        return [
            f"CREATE TABLE IF NOT EXISTS {_CASES} "
            "(case_id TEXT PRIMARY KEY, household_id TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {_CASES}_household ON {_CASES} (household_id)",
        ]

    def after_insert(
        self,
        tx: Tx,
        records: Sequence[StoredEvent],
        positions: Sequence[int],
        context: dict[str, Any],
    ) -> None:
        """Index the cases opened in this transaction."""
        rows = [
            (e.originator_id.hex, e.household_id.hex)
            for e in context.get("events", ())
            if isinstance(e, CaseOpened)
        ]
        tx.executemany(f"INSERT INTO {_CASES} (case_id, household_id) VALUES (?,?)", rows)  # noqa: S608

    def case_ids(self, household_id: UUID) -> list[UUID]:
        """The ids of the cases opened for a household, in no particular order."""
        rows = self._store.query(
            f"SELECT case_id FROM {_CASES} WHERE household_id = ?",  # noqa: S608
            (household_id.hex,),
        )
        return [UUID(hex=r[0]) for r in rows]


# ---------------------------------------------------------------------------
# Erasure


def check_erasure(
    policy: Policy, household: Household, cases: Iterable[Case], at: datetime
) -> None:
    """Raise unless the household may be erased at ``at`` under the retention rule.

    :class:`~caseledger.errors.RetentionError` says which rule refused and from when
    erasure will be allowed; :class:`~caseledger.errors.RuleViolation` when it was
    erased already.
    """
    if household.erased_at is not None:
        msg = f"household {household.id} was already erased on {household.erased_at:%Y-%m-%d}"
        raise RuleViolation(msg)
    rule = policy.retention
    cases = list(cases)
    still_open = [c for c in cases if not c.is_closed]
    prefix = f"policy {policy.version}, rule {rule.id}"
    if rule.refuse_while_open and still_open:
        case = still_open[0]
        msg = (
            f"{prefix}: household {household.id} has an open case {case.id} "
            f"({case.stage.value}); its data is still needed. Close the case at a case "
            "meeting first"
        )
        raise RetentionError(msg)
    closures = [c.closed_at for c in cases if c.closed_at is not None]
    since, what = (
        (max(closures), "its last case closed")
        if closures
        else (
            household.discovered_at,
            "it was discovered",
        )
    )
    until = since + timedelta(days=rule.min_days_after_closure)
    if at < until:
        msg = (
            f"{prefix}: household {household.id} must be kept {rule.min_days_after_closure} "
            f"days after {what} ({since:%Y-%m-%d}); it may be erased from {until:%Y-%m-%d}"
        )
        raise RetentionError(msg)


# ---------------------------------------------------------------------------
# What commands record in the access log


def has_personal_data(event: Event) -> bool:
    """Whether an event carries personal values (in ``personal`` or its members)."""
    values = event.__dict__  # a model's fields (getattr of a missing one is slow)
    if values.get("personal") is not None:
        return True
    return any(m.personal is not None for m in values.get("members", ()))


def _subject(event: Event) -> UUID:
    if isinstance(event, CaseEvent):
        return event.household_id
    return event.originator_id


def access_entries(
    events: Iterable[Event], role_of: Callable[[str], str], terminal: str
) -> list[AccessEntry]:
    """The access records a commit of ``events`` brings: input, change and delete.

    A reassessment and a revised service plan change what was recorded before
    (``change``); other personal data is new (``input``); an erasure is ``delete``.
    """
    out = []
    for event in events:
        if isinstance(event, HouseholdErased):
            action = AccessAction.DELETE
        elif not has_personal_data(event):
            continue
        elif isinstance(event, NeedsReassessed) or (
            isinstance(event, ServicePlanAgreed) and event.revision > 1
        ):
            action = AccessAction.CHANGE
        else:
            action = AccessAction.INPUT
        out.append(
            AccessEntry(
                at=event.recorded_at,
                account=event.actor,
                organisation=event.organisation,
                role=role_of(event.actor),
                terminal=terminal,
                subject=_subject(event),
                subject_kind="worker" if isinstance(event, WorkerRegistered) else "household",
                case_id=event.originator_id if isinstance(event, CaseEvent) else None,
                action=action,
                detail=type(event).__name__,
            )
        )
    return out


# ---------------------------------------------------------------------------
# Reading personal data


@dataclass(frozen=True)
class ReadContext:
    """What a reader needs from its ledger."""

    policy: Policy
    directory: Directory
    store: EventStore
    keys: KeyRing
    access: AccessLog
    clock: Callable[[], datetime]
    #: Held while a read looks up state and writes its record (the ledger's own lock).
    lock: AbstractContextManager[Any]


class Reader:
    """Reads personal data as one account from one terminal; every read is recorded.

    Get one with :meth:`caseledger.Ledger.reader`. Each call checks the policy's read
    rules at the ledger clock's *now* (a private partner needs an active referral or
    service link and a covering consent), opens the personal fields the account is
    entitled to, and appends exactly one access record before returning. Accounts
    whose role may not see personal data (researchers) get the events with personal
    fields withheld, and no access record is made, since no personal data was read.
    """

    def __init__(self, account: str, terminal: str, context: ReadContext) -> None:
        if not terminal.strip():
            raise InvalidInput("terminal: give the client or terminal the read comes from")
        self.account = account
        self.terminal = terminal.strip()
        self._ctx = context
        self._worker = context.directory.worker(account)
        self._organisation = context.directory.organisation(self._worker.organisation)

    def __repr__(self) -> str:
        return f"<Reader {self.account} at {self.terminal}>"

    def _entry(
        self,
        household: Household,
        case_id: UUID | None,
        grant: ReadGrant | None,
        action: AccessAction | str,
        reason: str | None,
        detail: str,
        at: datetime,
    ) -> AccessEntry:
        try:
            action = AccessAction(action)
        except ValueError:
            msg = f"action: {action!r} is not an access action"
            raise InvalidInput(msg, [("action", "unknown")]) from None
        return AccessEntry(
            at=at,
            account=self.account,
            organisation=self._worker.organisation,
            role=self._worker.role.value,
            terminal=self.terminal,
            subject=household.id,
            case_id=case_id,
            action=action,
            reason=reason,
            in_caseload=grant.in_caseload if grant else None,
            in_organisation=grant.in_organisation if grant else None,
            detail=detail,
        )

    def _read(
        self,
        aggregate_id: UUID,
        household: Household,
        cases: list[Case],
        case_id: UUID | None,
        action: AccessAction | str,
        reason: str | None,
        detail: str,
    ) -> list[Event]:
        ctx = self._ctx
        now = ctx.clock()
        grant = authorise_read(ctx.policy, self._worker, self._organisation, household, cases, now)
        entry = self._entry(household, case_id, grant, action, reason, detail, now)
        if entry.action not in READ_ACTIONS:
            msg = f"action: a read is one of {', '.join(a.value for a in READ_ACTIONS)}"
            raise InvalidInput(msg, [("action", "not a read")])
        opener = ctx.keys.opener() if grant.personal else None
        events = [codec.decode(r, opener) for r in ctx.store.read_aggregate(aggregate_id)]
        if grant.personal:
            ctx.access.append([entry])
        return events

    def history(
        self,
        case_id: UUID,
        *,
        action: AccessAction | str = AccessAction.VIEW,
        reason: str | None = None,
    ) -> list[CaseEvent]:
        """Every event of a case, with the personal fields this account may see.

        ``action`` is ``view`` (default), ``print`` or ``download``; a download needs a
        ``reason``. Raises :class:`~caseledger.errors.AuthorityError` /
        :class:`~caseledger.errors.ConsentError` when the policy refuses the read.
        """
        directory = self._ctx.directory
        with self._ctx.lock:
            case = directory.case(case_id)
            household = directory.household(case.household_id)
            events = self._read(case.id, household, [case], case.id, action, reason, "case history")
        return [e for e in events if isinstance(e, CaseEvent)]

    def household_history(
        self,
        household_id: UUID,
        *,
        action: AccessAction | str = AccessAction.VIEW,
        reason: str | None = None,
    ) -> list[HouseholdEvent]:
        """Every event of a household (discovery with its members, consultations, consents)."""
        directory = self._ctx.directory
        with self._ctx.lock:
            household = directory.household(household_id)
            cases = directory.cases_of(household.id)
            events = self._read(
                household.id, household, cases, None, action, reason, "household history"
            )
        return [e for e in events if isinstance(e, HouseholdEvent)]

    def record(
        self,
        household_id: UUID,
        action: AccessAction | str,
        *,
        case_id: UUID | None = None,
        reason: str | None = None,
        detail: str = "",
    ) -> AccessRecord:
        """Record processing of a household's personal data done outside the ledger.

        For the embedding application's own screens, print-outs and identified exports:
        the policy is checked as for a read, and one access record is appended.
        """
        with self._ctx.lock:
            return self._record(household_id, action, case_id, reason, detail)

    def _record(
        self,
        household_id: UUID,
        action: AccessAction | str,
        case_id: UUID | None,
        reason: str | None,
        detail: str,
    ) -> AccessRecord:
        directory = self._ctx.directory
        household = directory.household(household_id)
        if case_id is not None:
            case = directory.case(case_id)
            if case.household_id != household.id:
                msg = f"case {case_id} is not a case of household {household_id}"
                raise CaseNotFound(msg)
            cases = [case]
        else:
            cases = directory.cases_of(household.id)
        now = self._ctx.clock()
        grant = authorise_read(
            self._ctx.policy, self._worker, self._organisation, household, cases, now
        )
        if not grant.personal:
            msg = (
                f"policy {self._ctx.policy.version}, rule {grant.rule}: a "
                f"{self._worker.role.value} may not process personal data"
            )
            raise AuthorityError(msg, rule=grant.rule, policy_version=self._ctx.policy.version)
        entry = self._entry(household, case_id, grant, action, reason, detail, now)
        return self._ctx.access.append([entry])[0]
