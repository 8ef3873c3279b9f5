"""OCEL 2.0 export: the log as an object-centric event log (JSON flavour).

The OCEL 2.0 JSON format (https://www.ocel-standard.org/specification/formats/json/)
has four arrays: ``eventTypes`` and ``objectTypes`` (each with typed attributes),
``objects`` (with attribute values over time and object-to-object relationships) and
``events`` (with a time, attribute values and qualified event-to-object relationships).

Object types: ``household``, ``case``, ``meeting``, ``organisation``, ``worker``,
``service_link`` and ``referral``. Event types: one per event class (``CaseOpened``
…), with the structural columns of the events table as attributes. Relationship
qualifiers say what an object is to the event (``case``, ``household``, ``actor``,
``acting organisation``, ``decided at``, ``provider``, ``on agenda`` …) or to another
object (``household`` of a case, ``provider`` of a service link …).

Written in one pass without holding the log: events and immutable objects go to
temporary files as they are read; only cases and referrals, whose attributes change
over time (stage, track, status), are kept until the end. A de-identified export has
pseudonymous ids, no worker objects, no free text (see
:mod:`caseledger.export.deidentify`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from caseledger.events import (
    CaseClassified,
    CaseClosed,
    CaseEvent,
    CaseMeetingHeld,
    CaseOpened,
    CaseReopened,
    CaseTransferred,
    ConsentGranted,
    Event,
    HouseholdDiscovered,
    OrganisationRegistered,
    ReferralAccepted,
    ReferralCompleted,
    ReferralRejected,
    ReferralRevoked,
    ReferralSent,
    ServiceLinked,
    WorkerRegistered,
)
from caseledger.export.columns import EVENT_COLUMNS, Column
from caseledger.export.deidentify import Deidentifier
from caseledger.export.log import (
    EVENT_TYPE_COLUMNS,
    CaseState,
    LogEvent,
    Places,
    Window,
    event_row,
)
from caseledger.export.sinks import iso
from caseledger.values import ReferralStatus

__all__ = ["OBJECT_TYPES", "OcelCounts", "write_ocel"]

#: Object types and their attributes (name, OCEL type).
OBJECT_TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    "household": (
        ("dong", "string"), ("district", "string"), ("channel", "string"),
        ("member_count", "integer"),
    ),
    "case": (
        ("dong", "string"), ("district", "string"), ("organisation", "string"),
        ("stage", "string"), ("track", "string"), ("level", "string"),
        ("closure_reason", "string"),
    ),
    "meeting": (("kind", "string"), ("host", "string")),
    "organisation": (
        ("code", "string"), ("name", "string"), ("sector", "string"), ("kind", "string"),
        ("dong", "string"), ("district", "string"),
    ),
    "worker": (("code", "string"), ("role", "string"), ("organisation", "string")),
    "service_link": (
        ("need_domain", "string"), ("sector", "string"), ("service_kind", "string"),
        ("provider", "string"), ("amount", "float"), ("service", "string"),
    ),
    "referral": (("to_organisation", "string"), ("need_domain", "string"), ("status", "string")),
}  # fmt: skip

_OCEL_TYPES = {
    "string": "string",
    "int": "integer",
    "float": "float",
    "bool": "boolean",
    "time": "time",
    "date": "time",
    "decimal": "float",
}
#: Envelope columns every event type has as attributes.
_COMMON = (
    "position", "recorded_at", "dong", "district", "organisation", "organisation_sector",
    "actor_role", "policy_version", "taxonomy_version",
)  # fmt: skip
#: Columns that become relationships, not attributes.
_RELATIONAL = frozenset(
    {"meeting_id", "link_id", "referral_id", "agenda_case_ids", "worker", "to_worker",
     "registered_worker"}
)  # fmt: skip
_COLUMNS: dict[str, Column] = {c.name: c for c in EVENT_COLUMNS}
_REFERRAL_STATUS: dict[type[Event], str] = {
    ReferralAccepted: ReferralStatus.ACCEPTED.value,
    ReferralRejected: ReferralStatus.REJECTED.value,
    ReferralCompleted: ReferralStatus.COMPLETED.value,
    ReferralRevoked: ReferralStatus.REVOKED.value,
}


class OcelCounts:
    """How many events and objects (per type) an OCEL export wrote."""

    def __init__(self) -> None:
        self.events = 0
        self.objects: dict[str, int] = dict.fromkeys(OBJECT_TYPES, 0)

    @property
    def total_objects(self) -> int:
        """Objects of every type."""
        return sum(self.objects.values())


class _Writer:
    def __init__(
        self,
        objects: IO[str],
        events: IO[str],
        *,
        tz: tzinfo,
        deidentifier: Deidentifier | None,
        households: set[str] | None,
    ) -> None:
        self.households = households
        self._objects = objects
        self._events = events
        self.tz = tz
        self.deid = deidentifier
        self.coarse = deidentifier is not None and deidentifier.coarsen_dates
        self.counts = OcelCounts()
        self.organisations: set[str] = set()
        self.workers: set[str] = set()
        self.known: set[UUID] = set()
        self.cases: dict[UUID, tuple[CaseState, list[dict[str, Any]]]] = {}
        self.attribute_names = {
            cls: _attribute_names(cls, deidentifier is not None) for cls in EVENT_TYPE_COLUMNS
        }
        self.referrals: dict[UUID, tuple[list[dict[str, Any]], list[dict[str, str]]]] = {}

    # -- values ----------------------------------------------------------------------------

    def time(self, value: datetime | date) -> str:
        if self.coarse:
            first = (
                value.astimezone(self.tz).date() if isinstance(value, datetime) else value
            ).replace(day=1)
            return datetime.combine(first, time(), tzinfo=self.tz).isoformat()
        if isinstance(value, datetime):
            return iso(value)
        return datetime.combine(value, time(), tzinfo=self.tz).isoformat()

    def value(self, value: Any) -> Any:
        if isinstance(value, datetime | date):
            return self.time(value)
        if isinstance(value, Decimal):
            return float(value)
        return value

    def oid(self, value: UUID | str) -> str:
        return self.deid.pseudonym(value) if self.deid else str(value)

    # -- objects ---------------------------------------------------------------------------

    def _write_object(self, item: dict[str, Any]) -> None:
        prefix = "," if self.counts.total_objects else ""
        self._objects.write(prefix + _dump(item) + "\n")
        self.counts.objects[item["type"]] += 1

    def _attrs(self, values: Iterable[tuple[str, Any]], at: datetime) -> list[dict[str, Any]]:
        stamp = self.time(at)
        return [
            {"name": name, "value": self.value(v), "time": stamp}
            for name, v in values
            if v is not None
        ]

    def organisation(
        self, code: str, fields: dict[str, Any] | None = None, at: datetime | None = None
    ) -> str:
        """The object id of an organisation, writing its object the first time."""
        object_id = "organisation:" + code
        if code not in self.organisations:
            self.organisations.add(code)
            attributes: list[dict[str, Any]] = []
            if fields is not None and at is not None:
                attributes = self._attrs(
                    [
                        ("code", code),
                        ("name", fields.get("name")),
                        ("sector", fields.get("sector")),
                        ("kind", fields.get("kind")),
                        ("dong", fields.get("dong")),
                        ("district", fields.get("district")),
                    ],
                    at,
                )
            item = {"id": object_id, "type": "organisation", "attributes": attributes}
            self._write_object(item)
        return object_id

    def worker(self, code: str, places: Places, at: datetime | None = None) -> str | None:
        """The object id of a worker (None when de-identified or for ``system``)."""
        if self.deid is not None or code not in places.workers:
            return None
        object_id = "worker:" + code
        if code not in self.workers:
            self.workers.add(code)
            role, organisation = places.workers[code]
            employer = self.organisation(organisation)
            item = {
                "id": object_id,
                "type": "worker",
                "attributes": self._attrs(
                    [("code", code), ("role", role), ("organisation", organisation)],
                    at or datetime(1970, 1, 1, tzinfo=self.tz),
                ),
                "relationships": [{"objectId": employer, "qualifier": "employer"}],
            }
            self._write_object(item)
        return object_id

    def create(self, event: LogEvent, places: Places) -> None:
        """Write (or start) the object an event creates, and follow changing objects."""
        cls, f, at = event.cls, event.fields, event.occurred_at
        oid = event.originator_id
        if cls is OrganisationRegistered:
            self.organisation(f["code"], f, at)
        elif cls is WorkerRegistered:
            self.worker(f["code"], places, at)
        elif cls is HouseholdDiscovered:
            self.known.add(oid)
            if self.households is not None:
                self.households.add(str(oid))
            relationships = []
            if f.get("referred_by"):
                referrer = self.organisation(f["referred_by"])
                relationships.append({"objectId": referrer, "qualifier": "referred by"})
            values = [
                ("dong", f["dong"]),
                ("district", f["district"]),
                ("channel", f["channel"]),
                ("member_count", len(f.get("members") or ())),
            ]
            item = {
                "id": self.oid(oid),
                "type": "household",
                "attributes": self._attrs(values, at),
                "relationships": relationships,
            }
            self._write_object(item)
        elif cls is CaseOpened:
            self.known.add(oid)
            state = CaseState(oid, f)
            self.cases[oid] = (state, self._case_attributes(state, None, at))
        elif cls is CaseMeetingHeld:
            self.known.add(oid)
            host = self.organisation(f["host"])
            relationships = [{"objectId": host, "qualifier": "host"}]
            for attendee in f.get("attendees") or ():
                code = self.organisation(attendee["organisation"])
                relationships.append({"objectId": code, "qualifier": "attendee"})
            item = {
                "id": self.oid(oid),
                "type": "meeting",
                "attributes": self._attrs([("kind", f["kind"]), ("host", f["host"])], at),
                "relationships": _unique(relationships),
            }
            self._write_object(item)
        elif cls is ServiceLinked:
            self.known.add(f["link_id"])
            provider = self.organisation(f["provider"])
            values = [
                ("need_domain", f["domain"]),
                ("sector", f["sector"]),
                ("service_kind", f["kind"]),
                ("provider", f["provider"]),
                ("amount", f.get("amount")),
                ("service", None if self.deid else f.get("service")),
            ]
            item = {
                "id": self.oid(f["link_id"]),
                "type": "service_link",
                "attributes": self._attrs(values, at),
                "relationships": [
                    {"objectId": self.oid(oid), "qualifier": "case"},
                    {"objectId": provider, "qualifier": "provider"},
                ],
            }
            self._write_object(item)
        elif cls is ReferralSent:
            self.known.add(f["referral_id"])
            receiver = self.organisation(f["to_organisation"])
            attributes = self._attrs(
                [
                    ("to_organisation", f["to_organisation"]),
                    ("need_domain", f["domain"]),
                    ("status", ReferralStatus.SENT.value),
                ],
                at,
            )
            relationships = [
                {"objectId": self.oid(oid), "qualifier": "case"},
                {"objectId": receiver, "qualifier": "receiving organisation"},
            ]
            self.referrals[f["referral_id"]] = (attributes, relationships)
        elif cls in _REFERRAL_STATUS:
            found = self.referrals.get(f["referral_id"])
            if found is not None:
                found[0].extend(self._attrs([("status", _REFERRAL_STATUS[cls])], at))
        if issubclass(cls, CaseEvent) and cls is not CaseOpened:
            entry = self.cases.get(oid)
            if entry is not None:
                state, attributes = entry
                before = _case_values(state)
                state.apply(cls, f)
                attributes.extend(self._case_attributes(state, before, at))

    def _case_attributes(
        self, state: CaseState, before: dict[str, Any] | None, at: datetime
    ) -> list[dict[str, Any]]:
        now = _case_values(state)
        changed = [(k, v) for k, v in now.items() if before is None or before.get(k) != v]
        return self._attrs(changed, at)

    def finish_objects(self) -> None:
        """Write the objects kept until the end (cases and referrals)."""
        for oid, (state, attributes) in self.cases.items():
            item = {
                "id": self.oid(oid),
                "type": "case",
                "attributes": attributes,
                "relationships": [
                    {"objectId": self.oid(state.household_id), "qualifier": "household"}
                ],
            }
            self._write_object(item)
        for rid, (attributes, relationships) in self.referrals.items():
            self._write_object(
                {
                    "id": self.oid(rid),
                    "type": "referral",
                    "attributes": attributes,
                    "relationships": relationships,
                }
            )

    # -- events ----------------------------------------------------------------------------

    def event(self, event: LogEvent, places: Places, transform: Any) -> None:
        """Write one event."""
        cls, f = event.cls, event.fields
        row = event_row(event, places)
        if self.households is not None and row["household_id"]:
            self.households.add(row["household_id"])
        relationships = self._relationships(event, row, places)
        if transform is not None:
            transform(row)
        attributes = []
        for name in self.attribute_names[cls]:
            value = row.get(name)
            if value is not None:
                attributes.append({"name": name, "value": self.value(value)})
        item = {
            "id": row["event_id"],
            "type": cls.__name__,
            "time": self.time(f["occurred_at"]),
            "attributes": attributes,
            "relationships": _unique(relationships),
        }
        prefix = "," if self.counts.events else ""
        self._events.write(prefix + _dump(item) + "\n")
        self.counts.events += 1

    def _relationships(
        self, event: LogEvent, row: dict[str, Any], places: Places
    ) -> list[dict[str, str]]:
        cls, f = event.cls, event.fields
        out: list[dict[str, str]] = []

        def add(target: UUID | None, qualifier: str) -> None:
            if target is not None and target in self.known:
                out.append({"objectId": self.oid(target), "qualifier": qualifier})

        def add_org(code: str | None, qualifier: str) -> None:
            if code and code != "system":
                out.append({"objectId": self.organisation(code), "qualifier": qualifier})

        def add_worker(code: str | None, qualifier: str) -> None:
            object_id = self.worker(code, places) if code else None
            if object_id is not None:
                out.append({"objectId": object_id, "qualifier": qualifier})

        add_worker(f["actor"], "actor")
        add_org(f["organisation"], "acting organisation")
        if row["case_id"] is not None:
            add(event.originator_id, "case")
        if row["household_id"] is not None:
            add(f.get("household_id") or event.originator_id, "household")
        if cls is OrganisationRegistered:
            add_org(f["code"], "organisation")
        elif cls is WorkerRegistered:
            add_worker(f["code"], "worker")
            add_org(f["worker_organisation"], "employer")
        elif cls is HouseholdDiscovered:
            add_org(f.get("referred_by"), "referred by")
        elif cls is ConsentGranted:
            for code in f.get("recipients") or ():
                add_org(code, "consent recipient")
        elif cls is CaseOpened:
            add_worker(f["worker"], "assigned worker")
            add_org(f["case_organisation"], "case organisation")
        elif cls in (CaseClassified, CaseClosed):
            add(f["meeting_id"], "decided at")
        elif cls is ServiceLinked:
            add(f["link_id"], "service link")
            add_org(f["provider"], "provider")
            add(f.get("meeting_id"), "decided at")
            add(f.get("referral_id"), "referral")
        elif cls is ReferralSent:
            add(f["referral_id"], "referral")
            add_org(f["to_organisation"], "receiving organisation")
        elif cls in _REFERRAL_STATUS:
            add(f["referral_id"], "referral")
        elif cls is CaseReopened:
            add_worker(f["worker"], "assigned worker")
        elif cls is CaseTransferred:
            add_org(f["to_organisation"], "receiving organisation")
            add_worker(f["to_worker"], "receiving worker")
        elif cls is CaseMeetingHeld:
            add(event.originator_id, "meeting")
            add_org(f["host"], "host")
            for attendee in f.get("attendees") or ():
                add_org(attendee["organisation"], "attendee")
            for item in f.get("agenda") or ():
                add(item["case_id"], "on agenda")
        if "link_id" in f and cls is not ServiceLinked:
            add(f["link_id"], "service link")
        return out


def _case_values(state: CaseState) -> dict[str, Any]:
    return {
        "dong": state.dong,
        "district": state.district,
        "organisation": state.organisation,
        "stage": state.stage,
        "track": state.track,
        "level": state.level,
        "closure_reason": state.closure_reason,
    }


def _unique(relationships: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for r in relationships:
        key = (r["objectId"], r["qualifier"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _dump(item: dict[str, Any]) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def _attribute_names(cls: type[Event], deidentified: bool) -> tuple[str, ...]:
    names = [*_COMMON, *EVENT_TYPE_COLUMNS[cls]]
    return tuple(
        dict.fromkeys(
            n
            for n in names
            if n not in _RELATIONAL and not (deidentified and _COLUMNS[n].dropped_when_deidentified)
        )
    )


def _types(deidentified: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    event_types = []
    for cls, _ in EVENT_TYPE_COLUMNS.items():
        attributes = [
            {"name": n, "type": _OCEL_TYPES[_COLUMNS[n].type]}
            for n in _attribute_names(cls, deidentified)
        ]
        event_types.append({"name": cls.__name__, "attributes": attributes})
    object_types = []
    for name, declared in OBJECT_TYPES.items():
        if deidentified and name == "worker":
            continue
        kept = [a for a in declared if not (deidentified and a[0] == "service")]
        object_types.append({"name": name, "attributes": [{"name": n, "type": t} for n, t in kept]})
    return event_types, object_types


def write_ocel(
    path: Path,
    events: Iterable[LogEvent],
    *,
    window: Window,
    tz: tzinfo,
    deidentifier: Deidentifier | None = None,
    households: set[str] | None = None,
    transform: Callable[[dict[str, Any]], None] | None = None,
) -> OcelCounts:
    """Write the OCEL 2.0 JSON file of ``events`` (the log, in order) at ``path``.

    Events that occurred in ``window`` are written; objects created before its end.
    ``households`` collects the ids of the households written (objects and events).
    """
    places = Places()
    folder = path.parent
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8", dir=folder) as objects,
        tempfile.TemporaryFile("w+", encoding="utf-8", dir=folder) as event_file,
    ):
        writer = _Writer(
            objects, event_file, tz=tz, deidentifier=deidentifier, households=households
        )
        for event in events:
            places.update(event)
            if not window.before_end(event.occurred_at):
                continue
            writer.create(event, places)
            if window.contains(event.occurred_at):
                writer.event(event, places, transform)
        writer.finish_objects()
        event_types, object_types = _types(deidentifier is not None)
        with path.open("w", encoding="utf-8") as out:
            out.write('{"objectTypes":' + _dump_list(object_types))
            out.write(',\n"eventTypes":' + _dump_list(event_types))
            out.write(',\n"objects":[\n')
            objects.seek(0)
            shutil.copyfileobj(objects, out)
            out.write('],\n"events":[\n')
            event_file.seek(0)
            shutil.copyfileobj(event_file, out)
            out.write("]}\n")
    return writer.counts


def _dump_list(items: list[dict[str, Any]]) -> str:
    return json.dumps(items, ensure_ascii=False, separators=(",", ":"))
