"""Reading the log for exports: one pass, in order, without keys and without validation.

:func:`read_log` streams the stored records as :class:`LogEvent` (the event class and
its stored fields, from :func:`caseledger.codec.decode_fields`: sealed personal fields
are never opened). :class:`Places` follows where each household, case, organisation and
worker is as the log goes; :func:`event_row` turns one event into a row of the events
table; :class:`CaseFold` folds case events into one row per case. Memory grows with
the number of households, cases and organisations, never with the number of events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple
from uuid import UUID

from caseledger.codec import decode_fields
from caseledger.errors import InvalidInput
from caseledger.events import (
    CaseClassified,
    CaseClosed,
    CaseEvent,
    CaseMeetingHeld,
    CaseOpened,
    CaseReopened,
    CaseTransferred,
    ConsentGranted,
    ConsentWithdrawn,
    ConsultationRecorded,
    Event,
    FollowUpConducted,
    HouseholdDiscovered,
    HouseholdErased,
    HouseholdEvent,
    NeedsAssessed,
    NeedsReassessed,
    OrganisationRegistered,
    ReferralAccepted,
    ReferralCompleted,
    ReferralRejected,
    ReferralRevoked,
    ReferralSent,
    ServiceChecked,
    ServiceLinked,
    ServicePlanAgreed,
    SupervisionRecorded,
    WorkerRegistered,
)
from caseledger.projections.periods import Period
from caseledger.store import EventStore
from caseledger.values import Stage, Track

__all__ = [
    "ENVELOPE_FIELDS",
    "EVENT_TYPE_COLUMNS",
    "FIELD_COLUMNS",
    "PERSONAL_FIELDS",
    "CaseFold",
    "CaseState",
    "LogEvent",
    "Places",
    "Window",
    "aggregate_kind",
    "event_row",
    "parse_as_of",
    "read_log",
]

#: Stored fields every event has; they become the identity and envelope columns.
ENVELOPE_FIELDS = frozenset(
    {
        "occurred_at", "recorded_at", "actor", "organisation", "policy_version",
        "taxonomy_version", "household_id",
    }
)  # fmt: skip
#: Fields that hold personal data: never exported (they are sealed in the stored bytes).
PERSONAL_FIELDS = frozenset({"personal"})

#: Scalar fields copied to a column: ``{event class: {field: column}}``.
_SCALARS: dict[type[Event], dict[str, str]] = {
    OrganisationRegistered: {
        "code": "registered_organisation", "name": "organisation_name", "sector": "sector",
        "kind": "organisation_kind", "dong": "dong", "district": "district",
    },
    WorkerRegistered: {
        "code": "registered_worker", "worker_organisation": "worker_organisation",
        "role": "worker_role",
    },
    HouseholdDiscovered: {
        "dong": "dong", "district": "district", "channel": "channel",
        "batch": "blind_spot_batch", "referred_by": "referred_by",
    },
    ConsultationRecorded: {"method": "method", "outcome": "outcome"},
    ConsentGranted: {
        "consent_id": "consent_id", "member_no": "member_no", "purpose": "purpose",
        "expires_at": "consent_expires_at",
    },
    ConsentWithdrawn: {"consent_id": "consent_id"},
    HouseholdErased: {"reason": "reason_text"},
    CaseOpened: {
        "dong": "dong", "district": "district", "case_organisation": "case_organisation",
        "worker": "worker", "discovered_at": "discovered_at",
    },
    NeedsAssessed: {},
    CaseMeetingHeld: {"kind": "meeting_kind", "host": "host", "title": "title"},
    CaseClassified: {
        "meeting_id": "meeting_id", "track": "track", "level": "level",
        "criteria_version": "criteria_version", "rationale": "rationale",
    },
    ServicePlanAgreed: {
        "goal_count": "goal_count", "agreed_on": "agreed_on", "revision": "plan_revision",
    },
    ServiceLinked: {
        "link_id": "link_id", "domain": "need_domain", "service": "service",
        "provider": "provider", "sector": "sector", "kind": "service_kind",
        "referral_id": "referral_id", "meeting_id": "meeting_id",
    },
    ReferralSent: {
        "referral_id": "referral_id", "to_organisation": "to_organisation",
        "domain": "need_domain", "purpose": "purpose",
    },
    ReferralAccepted: {"referral_id": "referral_id"},
    ReferralRejected: {"referral_id": "referral_id", "reason": "reason_text"},
    ReferralCompleted: {"referral_id": "referral_id"},
    ReferralRevoked: {"referral_id": "referral_id", "reason": "reason_text"},
    ServiceChecked: {
        "link_id": "link_id", "method": "method", "progress": "progress",
        "decision": "check_decision",
    },
    NeedsReassessed: {},
    SupervisionRecorded: {},
    CaseClosed: {"meeting_id": "meeting_id", "reason": "closure_reason"},
    FollowUpConducted: {"method": "method", "recommend_reopen": "recommend_reopen"},
    CaseReopened: {"reason": "reason_text", "worker": "worker"},
    CaseTransferred: {
        "to_organisation": "to_organisation", "to_worker": "to_worker", "to_dong": "to_dong",
        "to_district": "to_district",
    },
}  # fmt: skip


def _joined(values: Any) -> str:
    return ";".join(str(v) for v in values or ())


def _members(f: dict[str, Any], row: dict[str, Any]) -> None:
    row["member_count"] = len(f.get("members") or ())


def _needs(f: dict[str, Any], row: dict[str, Any]) -> None:
    needs = f.get("needs") or ()
    row["needs"] = ";".join(f"{n['sub_domain']}:{n['urgency']}" for n in needs)
    row["need_count"] = len(needs)
    row["max_urgency"] = max((int(n["urgency"]) for n in needs), default=None)


def _risk(f: dict[str, Any], row: dict[str, Any]) -> None:
    risk = f.get("risk")
    if risk:
        row["risk_instrument"] = risk["instrument"]
        row["risk_instrument_version"] = risk["instrument_version"]
        row["risk_score"] = float(risk["score"])
        row["risk_level"] = risk["level"]


def _services(f: dict[str, Any], row: dict[str, Any]) -> None:
    services = f.get("services") or ()
    row["service_count"] = len(services)
    row["plan_public_services"] = sum(1 for s in services if s["sector"] == "public")
    row["plan_private_services"] = sum(1 for s in services if s["sector"] == "private")
    row["plan_domains"] = ";".join(sorted({str(s["domain"]) for s in services}))


def _amount(f: dict[str, Any], row: dict[str, Any]) -> None:
    amount = f.get("amount")
    if amount is not None:
        row["amount"] = Decimal(amount).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)


def _attendees(f: dict[str, Any], row: dict[str, Any]) -> None:
    attendees = f.get("attendees") or ()
    row["attendee_count"] = len(attendees)
    row["attendee_organisations"] = ";".join(a["organisation"] for a in attendees)


def _agenda(f: dict[str, Any], row: dict[str, Any]) -> None:
    agenda = f.get("agenda") or ()
    row["agenda_count"] = len(agenda)
    row["agenda_case_ids"] = ";".join(str(item["case_id"]) for item in agenda)
    row["agenda_decisions"] = ";".join(str(item.get("decision") or "-") for item in agenda)


Shaper = Callable[[dict[str, Any], dict[str, Any]], None]


def _setter(column: str) -> Shaper:
    field = _JOINED[column]

    def shape(f: dict[str, Any], row: dict[str, Any]) -> None:
        row[column] = _joined(f.get(field))

    return shape


#: Lists of codes joined with ``;``: ``{column: field}``.
_JOINED = {
    "crisis_codes": "crisis_codes",
    "problems": "problems",
    "consent_scopes": "scopes",
    "consent_recipients": "recipients",
}
_NEEDS = ("needs", "need_count", "max_urgency")
_RISK = ("risk_instrument", "risk_instrument_version", "risk_score", "risk_level")

#: Structured fields made into columns by a function:
#: ``{class: {field: (function, the columns it fills)}}``.
_SHAPED: dict[type[Event], dict[str, tuple[Shaper, tuple[str, ...]]]] = {
    HouseholdDiscovered: {
        "members": (_members, ("member_count",)),
        "crisis_codes": (_setter("crisis_codes"), ("crisis_codes",)),
    },
    ConsultationRecorded: {"problems": (_setter("problems"), ("problems",))},
    ConsentGranted: {
        "scopes": (_setter("consent_scopes"), ("consent_scopes",)),
        "recipients": (_setter("consent_recipients"), ("consent_recipients",)),
    },
    NeedsAssessed: {"needs": (_needs, _NEEDS), "risk": (_risk, _RISK)},
    NeedsReassessed: {"needs": (_needs, _NEEDS), "risk": (_risk, _RISK)},
    ServicePlanAgreed: {
        "services": (
            _services,
            ("service_count", "plan_public_services", "plan_private_services", "plan_domains"),
        )
    },
    ServiceLinked: {"amount": (_amount, ("amount",))},
    CaseMeetingHeld: {
        "attendees": (_attendees, ("attendee_count", "attendee_organisations")),
        "agenda": (_agenda, ("agenda_count", "agenda_case_ids", "agenda_decisions")),
    },
}

#: Every stored field of every event class that becomes a column (a test checks coverage).
FIELD_COLUMNS: dict[type[Event], frozenset[str]] = {
    cls: frozenset(scalars) | frozenset(_SHAPED.get(cls, {})) for cls, scalars in _SCALARS.items()
}
#: The columns each event class fills, besides the envelope columns every event fills.
EVENT_TYPE_COLUMNS: dict[type[Event], tuple[str, ...]] = {
    cls: tuple(
        dict.fromkeys(
            [*scalars.values()]
            + [c for _, cols in _SHAPED.get(cls, {}).values() for c in cols]
            + (["meeting_id"] if cls is CaseMeetingHeld else [])
        )
    )
    for cls, scalars in _SCALARS.items()
}


def aggregate_kind(cls: type[Event]) -> str:
    """``household``, ``case``, ``meeting``, ``organisation`` or ``worker``."""
    if issubclass(cls, CaseEvent):
        return "case"
    if issubclass(cls, HouseholdEvent):
        return "household"
    if cls is CaseMeetingHeld:
        return "meeting"
    if cls is OrganisationRegistered:
        return "organisation"
    return "worker"


class LogEvent(NamedTuple):
    """One stored event as exports read it: no keys, no validation."""

    position: int
    cls: type[Event]
    originator_id: UUID
    version: int
    fields: dict[str, Any]

    @property
    def occurred_at(self) -> datetime:
        """When the event happened."""
        value: datetime = self.fields["occurred_at"]
        return value


#: Aggregate ids kept as UUIDs while reading the log (an aggregate's events recur).
_ID_CACHE = 1 << 15


def read_log(
    store: EventStore,
    *,
    batch_size: int = 5000,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[LogEvent]:
    """The log as it is when called (later writes are not read), in position order.

    ``on_progress``, if given, is called once the events of each page of ``batch_size``
    have been consumed, with the number of events read so far (for a progress bar).
    """
    stop = store.max_position()
    if stop == 0:
        return
    if store.dialect == "sqlite":
        yield from _read_sqlite(store, stop, batch_size, on_progress)
        return
    position = done = 0
    while position < stop:
        batch = store.read_log(position + 1, batch_size, stop)
        if not batch:
            return
        for record in batch:
            cls, fields = decode_fields(record.topic, record.state)
            originator = record.originator_id
            if not isinstance(originator, UUID):
                originator = UUID(str(originator))
            yield LogEvent(record.id, cls, originator, record.originator_version, fields)
        position = batch[-1].id
        done += len(batch)
        if on_progress is not None:
            on_progress(done)
        if len(batch) < batch_size:
            return


def _read_sqlite(
    store: EventStore,
    stop: int,
    batch_size: int,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[LogEvent]:
    """:func:`read_log` on SQLite: the rows as plain tuples, a page per short transaction."""
    table = store.recorder.events_table_name  # ours, never input
    sql = (
        f"SELECT rowid, originator_id, originator_version, topic, state FROM {table} "  # noqa: S608
        "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
    )
    ids: dict[Any, UUID] = {}
    after = done = 0
    while after < stop:
        with store.transaction(commit=False) as tx:
            rows = tx.stream(sql, (after, stop, batch_size), size=batch_size)
            page = [row for chunk in rows for row in chunk]
        if not page:
            return
        if len(ids) > _ID_CACHE:
            ids.clear()
        for position, originator_id, version, topic, state in page:
            originator = ids.get(originator_id)
            if originator is None:
                originator = ids[originator_id] = UUID(str(originator_id))
            cls, fields = decode_fields(topic, state)
            yield LogEvent(position, cls, originator, version, fields)
        after = page[-1][0]
        done += len(page)
        if on_progress is not None:
            on_progress(done)


@dataclass(frozen=True)
class Window:
    """Which events an export covers: those that occurred in ``[start, end)``.

    Built from ``as_of`` (a day, or an aware datetime: up to and including it) and
    ``period`` (``2022``, ``2022Q1``, ``2022-02``) in the reporting timezone ``tz``.
    """

    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def of(
        cls,
        *,
        tz: tzinfo,
        as_of: date | datetime | str | None = None,
        period: str | Period | None = None,
    ) -> Window:
        """The window of ``as_of`` and ``period`` (either, both or neither)."""
        start = end = None
        if period is not None:
            found = period if isinstance(period, Period) else Period.parse(period)
            start = datetime.combine(found.start, time(), tzinfo=tz)
            end = datetime.combine(found.end, time(), tzinfo=tz)
        if as_of is not None:
            cut = _as_of_end(as_of, tz)
            end = cut if end is None else min(end, cut)
        return cls(start, end)

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` is inside the window."""
        if self.start is not None and moment < self.start:
            return False
        return self.end is None or moment < self.end

    def before_end(self, moment: datetime) -> bool:
        """Whether ``moment`` is before the window's end (state is folded up to there)."""
        return self.end is None or moment < self.end


def parse_as_of(value: date | datetime | str) -> date | datetime:
    """``as_of`` as a day or an aware datetime (text: ``2022-12-31`` or ISO 8601)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            msg = f"as_of: {value!r} is not a date (2022-12-31) or an ISO 8601 date-time"
            raise InvalidInput(msg, [("as_of", "not a date")]) from None
    if isinstance(value, datetime) and value.tzinfo is None:
        msg = f"as_of: {value.isoformat()} has no timezone; give a date or an aware time"
        raise InvalidInput(msg, [("as_of", "naive datetime")])
    return value


def _as_of_end(value: date | datetime | str, tz: tzinfo) -> datetime:
    moment = parse_as_of(value)
    if isinstance(moment, datetime):
        return moment + timedelta(microseconds=1)
    return datetime.combine(moment + timedelta(days=1), time(), tzinfo=tz)


class Places:
    """Where households, cases, organisations and workers are, as the log has said so far."""

    def __init__(self) -> None:
        self.households: dict[UUID, tuple[str, str]] = {}
        self.cases: dict[UUID, tuple[str, str]] = {}
        #: organisation code → (dong, district, sector)
        self.organisations: dict[str, tuple[str | None, str | None, str]] = {}
        #: worker code → (role, organisation)
        self.workers: dict[str, tuple[str, str]] = {}
        self._strings: dict[str, str] = {}
        self._ids: dict[int, str] = {}

    def text(self, value: UUID) -> str:
        """``str(value)``, kept for the ids that recur (a bounded cache)."""
        if type(value) is not UUID:
            return str(value)
        ids = self._ids
        text = ids.get(value.int)
        if text is None:
            if len(ids) >= _ID_CACHE:
                ids.clear()
            text = ids[value.int] = str(value)
        return text

    def _intern(self, text: str) -> str:
        # Dong and district names repeat for every household: keep one copy of each.
        return self._strings.setdefault(text, text)

    def update(self, event: LogEvent) -> None:
        """Follow ``event`` (call it for every event, in log order)."""
        cls, f = event.cls, event.fields
        if cls is HouseholdDiscovered:
            self.households[event.originator_id] = (
                self._intern(f["dong"]),
                self._intern(f["district"]),
            )
        elif cls is CaseOpened:
            self.cases[event.originator_id] = (self._intern(f["dong"]), self._intern(f["district"]))
        elif cls is CaseTransferred:
            self.cases[event.originator_id] = (
                self._intern(f["to_dong"]),
                self._intern(f["to_district"]),
            )
        elif cls is OrganisationRegistered:
            self.organisations[f["code"]] = (f.get("dong"), f.get("district"), str(f["sector"]))
        elif cls is WorkerRegistered:
            self.workers[f["code"]] = (str(f["role"]), f["worker_organisation"])

    def where(self, event: LogEvent) -> tuple[str | None, str | None]:
        """The dong and district an event happened in."""
        cls, f = event.cls, event.fields
        if issubclass(cls, CaseEvent):
            return self.cases.get(event.originator_id, (None, None))
        if issubclass(cls, HouseholdEvent):
            return self.households.get(event.originator_id, (None, None))
        if cls is CaseMeetingHeld:
            return self.organisations.get(f["host"], (None, None, ""))[:2]
        if cls is OrganisationRegistered:
            return f.get("dong"), f.get("district")
        worker = self.workers.get(f["code"])
        organisation = self.organisations.get(worker[1]) if worker else None
        return organisation[:2] if organisation else (None, None)


#: Per class: its kind, scalar (field, column) pairs, and shaping functions (the hot path).
_PLANS: dict[type[Event], tuple[str, tuple[tuple[str, str], ...], tuple[Shaper, ...]]] = {
    cls: (
        aggregate_kind(cls),
        tuple(scalars.items()),
        tuple(shaper for shaper, _ in _SHAPED.get(cls, {}).values()),
    )
    for cls, scalars in _SCALARS.items()
}


_NOWHERE: tuple[None, None] = (None, None)


def event_row(event: LogEvent, places: Places) -> dict[str, Any]:
    """The events-table row of ``event`` (call after ``places.update(event)``)."""
    cls, f = event.cls, event.fields
    kind, scalars, shapers = _PLANS[cls]
    text = places.text
    oid = text(event.originator_id)
    # Places.where, with the class tests already made by the plan's kind.
    if kind == "case":
        dong, district = places.cases.get(event.originator_id, _NOWHERE)
    elif kind == "household":
        dong, district = places.households.get(event.originator_id, _NOWHERE)
    else:
        dong, district = places.where(event)
    acting = f["organisation"]
    organisation = places.organisations.get(acting)
    worker = places.workers.get(f["actor"])
    if kind == "case":
        household: str | None = text(f["household_id"])
    else:
        household = oid if kind == "household" else None
    row: dict[str, Any] = {
        "position": event.position,
        "event_id": f"{oid}:{event.version}",
        "event_type": cls.__name__,
        "aggregate_kind": kind,
        "aggregate_id": oid,
        "aggregate_version": event.version,
        "household_id": household,
        "case_id": oid if kind == "case" else None,
        "occurred_at": f["occurred_at"],
        "recorded_at": f["recorded_at"],
        "dong": dong,
        "district": district,
        "organisation": acting,
        "organisation_sector": organisation[2] if organisation else None,
        "actor": f["actor"],
        "actor_role": worker[0] if worker else None,
        "policy_version": f["policy_version"],
        "taxonomy_version": f["taxonomy_version"],
    }
    for field, column in scalars:
        value = f.get(field)
        if value is not None:
            row[column] = text(value) if type(value) is UUID else value
    for shaper in shapers:
        shaper(f, row)
    if cls is CaseMeetingHeld:
        row["meeting_id"] = oid
    return row


# ---------------------------------------------------------------------------
# The cases table


class CaseState:
    """The running state of one case, from its raw stored fields.

    Mirrors :class:`caseledger.case.Case` (stage, track, level) and adds the counts and
    first times the cases table reports.
    """

    __slots__ = (
        "active", "assessed_at", "case_id", "classified_at", "closed_at", "closure_reason",
        "discovered_at", "district", "dong", "events", "first_linked_at", "follow_ups",
        "household_id", "intake_at", "last_event_at", "level", "meetings", "opened_at",
        "organisation", "plan_agreed_at", "private_links", "public_links", "reassessments",
        "referrals", "reopened", "service_checks", "service_links", "stage", "supervisions",
        "track", "transfers", "worker",
    )  # fmt: skip

    def __init__(self, case_id: UUID, f: dict[str, Any]) -> None:
        self.case_id = case_id
        self.household_id: UUID = f["household_id"]
        self.dong: str = f["dong"]
        self.district: str = f["district"]
        self.organisation: str = f["case_organisation"]
        self.worker: str = f["worker"]
        self.stage = Stage.OPENED.value
        self.track: str | None = None
        self.level: str | None = None
        self.discovered_at: datetime = f["discovered_at"]
        self.opened_at: datetime = f["occurred_at"]
        self.intake_at: datetime = f["occurred_at"]
        self.assessed_at: datetime | None = None
        self.classified_at: datetime | None = None
        self.plan_agreed_at: datetime | None = None
        self.first_linked_at: datetime | None = None
        self.closed_at: datetime | None = None
        self.closure_reason: str | None = None
        self.active: set[UUID] = set()
        self.reopened = self.transfers = self.service_links = self.public_links = 0
        self.private_links = self.service_checks = self.referrals = self.reassessments = 0
        self.supervisions = self.follow_ups = self.meetings = 0
        self.events = 1
        self.last_event_at: datetime = f["occurred_at"]

    def stage_for_track(self) -> str:
        """The stage the case's track and links put it in."""
        if self.track == Track.CASE_MANAGED.value:
            if self.active:
                return Stage.IN_SERVICE.value
            return Stage.PLANNED.value if self.plan_agreed_at else Stage.SELECTED.value
        if self.track == Track.LINKAGE_ONLY.value:
            return Stage.LINKED.value if self.active else Stage.LINKAGE_SELECTED.value
        return Stage.NOT_SELECTED.value

    def apply(self, cls: type[Event], f: dict[str, Any]) -> None:
        """Apply one event of this case (not its opening)."""
        at: datetime = f["occurred_at"]
        self.events += 1
        self.last_event_at = max(self.last_event_at, at)
        if cls is NeedsAssessed:
            self.assessed_at = self.assessed_at or at
            self.stage = Stage.ASSESSED.value
        elif cls is NeedsReassessed:
            self.reassessments += 1
        elif cls is CaseClassified:
            self.track, self.level = str(f["track"]), str(f["level"])
            self.classified_at = at
            self.stage = self.stage_for_track()
        elif cls is ServicePlanAgreed:
            self.plan_agreed_at = self.plan_agreed_at or at
            self.stage = self.stage_for_track()
        elif cls is ServiceLinked:
            self.service_links += 1
            if f["sector"] == "public":
                self.public_links += 1
            else:
                self.private_links += 1
            self.first_linked_at = self.first_linked_at or at
            self.active.add(f["link_id"])
            self.stage = self.stage_for_track()
        elif cls is ServiceChecked:
            self.service_checks += 1
            if f["decision"] == "stop" and f["link_id"] in self.active:
                self.active.discard(f["link_id"])
                self.stage = self.stage_for_track()
        elif cls is ReferralSent:
            self.referrals += 1
        elif cls is SupervisionRecorded:
            self.supervisions += 1
        elif cls is CaseClosed:
            self.closed_at, self.closure_reason = at, str(f["reason"])
            self.active.clear()
            self.stage = Stage.CLOSED.value
        elif cls is FollowUpConducted:
            self.follow_ups += 1
        elif cls is CaseReopened:
            self.reopened += 1
            self.worker = f["worker"]
            self.track = self.level = None
            self.assessed_at = self.classified_at = self.plan_agreed_at = None
            self.first_linked_at = self.closed_at = None
            self.closure_reason = None
            self.intake_at = at
            self.stage = Stage.OPENED.value
        elif cls is CaseTransferred:
            self.transfers += 1
            self.organisation, self.worker = f["to_organisation"], f["to_worker"]
            self.dong, self.district = f["to_dong"], f["to_district"]

    def row(self, tz: tzinfo) -> dict[str, Any]:
        """The cases-table row (days counted in calendar days of ``tz``)."""
        intake = self.intake_at.astimezone(tz).date()

        def days(moment: datetime | None) -> int | None:
            return None if moment is None else (moment.astimezone(tz).date() - intake).days

        return {
            "case_id": str(self.case_id),
            "household_id": str(self.household_id),
            "dong": self.dong,
            "district": self.district,
            "organisation": self.organisation,
            "worker": self.worker,
            "stage": self.stage,
            "track": self.track,
            "level": self.level,
            "discovered_at": self.discovered_at,
            "opened_at": self.opened_at,
            "intake_at": self.intake_at,
            "assessed_at": self.assessed_at,
            "classified_at": self.classified_at,
            "plan_agreed_at": self.plan_agreed_at,
            "first_linked_at": self.first_linked_at,
            "closed_at": self.closed_at,
            "closure_reason": self.closure_reason,
            "days_intake_to_plan": days(self.plan_agreed_at),
            "days_intake_to_closure": days(self.closed_at),
            "reopened": self.reopened,
            "transfers": self.transfers,
            "service_links": self.service_links,
            "public_links": self.public_links,
            "private_links": self.private_links,
            "active_links": len(self.active),
            "service_checks": self.service_checks,
            "referrals": self.referrals,
            "reassessments": self.reassessments,
            "supervisions": self.supervisions,
            "follow_ups": self.follow_ups,
            "meetings": self.meetings,
            "events": self.events,
            "last_event_at": self.last_event_at,
        }


class CaseFold:
    """Folds case events (in log order) into one state per case, for the cases table.

    Only events that occurred before the window's end count: the rows are the cases'
    states at that end. :meth:`rows` gives the cases whose life overlaps the window.
    """

    def __init__(self, window: Window) -> None:
        self.window = window
        self.cases: dict[UUID, CaseState] = {}

    def apply(self, event: LogEvent) -> None:
        """Fold one event (any class; only case events and meetings count)."""
        cls, f = event.cls, event.fields
        if not self.window.before_end(f["occurred_at"]):
            return
        if cls is CaseOpened:
            self.cases[event.originator_id] = CaseState(event.originator_id, f)
            return
        if cls is CaseMeetingHeld:
            for item in f.get("agenda") or ():
                case = self.cases.get(item["case_id"])
                if case is not None:
                    case.meetings += 1
            return
        if issubclass(cls, CaseEvent):
            case = self.cases.get(event.originator_id)
            if case is not None:
                case.apply(cls, f)

    def rows(self, tz: tzinfo) -> Iterator[dict[str, Any]]:
        """One row per case whose life overlaps the window, in order of first intake."""
        start = self.window.start
        for case in self.cases.values():
            if start is not None and case.closed_at is not None and case.closed_at < start:
                continue
            yield case.row(tz)
