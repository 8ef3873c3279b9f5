"""The meeting register: case meetings by kind and host, who attended, what was decided.

Each meeting keeps its agenda with the meeting's decision per case, and the
actions later recorded under its authority (a classification, a closure or a
service link that names the meeting), so the register shows decisions taken as well
as decisions recorded.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from caseledger.events import (
    CaseClassified,
    CaseClosed,
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
from caseledger.projections.base import (
    Item,
    Projection,
    Schema,
    chunks,
    fetch,
    from_ts,
    placeholders,
)
from caseledger.projections.directory import organisation_places
from caseledger.store import Tx
from caseledger.values import MeetingDecision, MeetingKind

__all__ = ["MeetingCase", "MeetingEntry", "Meetings", "meetings_query"]

_MEETING = "caseledger_meeting"
_CASE = "caseledger_meeting_case"
_HANDLED: frozenset[type[Event]] = frozenset(
    {CaseMeetingHeld, CaseClassified, CaseClosed, ServiceLinked}
)


class Meetings(Projection):
    """Meetings with their attendees, agenda, decisions and the actions taken under them."""

    name: ClassVar[str] = "meetings"
    version: ClassVar[int] = 1
    handles: ClassVar[frozenset[type[Event]]] = _HANDLED
    # Only meetings, and the decisions that name a meeting, belong in the register.
    ignores: ClassVar[frozenset[type[Event]]] = frozenset(
        {
            OrganisationRegistered, WorkerRegistered, HouseholdDiscovered, ConsultationRecorded,
            ConsentGranted, ConsentWithdrawn, HouseholdErased, CaseOpened, NeedsAssessed,
            ServicePlanAgreed, ReferralSent, ReferralAccepted, ReferralRejected,
            ReferralCompleted, ReferralRevoked, ServiceChecked, NeedsReassessed,
            SupervisionRecorded, FollowUpConducted, CaseReopened, CaseTransferred,
        }
    )  # fmt: skip
    tables: ClassVar[tuple[str, ...]] = (_MEETING, _CASE)

    def __init__(self, schema: Schema) -> None:
        super().__init__(schema)
        self._act = (
            f"UPDATE {schema.t(_CASE)} SET actions = actions || ? "
            "WHERE meeting_id = ? AND case_id = ?"
        )

    def create_statements(self) -> list[str]:
        s = self.schema
        return [
            f"CREATE TABLE IF NOT EXISTS {s.t(_MEETING)} ("
            f"meeting_id {s.text} PRIMARY KEY, position BIGINT NOT NULL, "
            f"held_at {s.time} NOT NULL, recorded_at {s.time} NOT NULL, kind TEXT NOT NULL, "
            f"host {s.text} NOT NULL, host_dong TEXT, host_district TEXT, title TEXT NOT NULL, "
            f"actor {s.text} NOT NULL, attendees TEXT NOT NULL, cases INTEGER NOT NULL, "
            "decisions INTEGER NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS caseledger_meeting_held ON {s.t(_MEETING)} (held_at)",
            f"CREATE TABLE IF NOT EXISTS {s.t(_CASE)} ("
            f"meeting_id {s.text} NOT NULL, case_id {s.text} NOT NULL, item INTEGER NOT NULL, "
            "decision TEXT, actions TEXT NOT NULL, PRIMARY KEY (meeting_id, case_id))",
        ]

    def apply(self, tx: Tx, items: Sequence[Item]) -> None:
        held = [i for i in items if i.cls is CaseMeetingHeld]
        places = organisation_places(tx, self.schema.prefix, [i.fields["host"] for i in held])
        meetings = []
        cases = []
        actions = []
        for item in items:
            f = item.fields
            cls = item.cls
            if cls is CaseMeetingHeld:
                mid = item.subject
                agenda = f["agenda"]
                attendees = json.dumps(
                    [[a["organisation"], a.get("role", "")] for a in f["attendees"]],
                    ensure_ascii=False,
                    separators=(",", ":"),
                )
                dong, district = places.get(f["host"], (None, None))
                decided = sum(1 for entry in agenda if entry.get("decision") is not None)
                meetings.append(
                    (
                        mid,
                        item.position,
                        item.occurred,
                        item.recorded,
                        str(f["kind"]),
                        f["host"],
                        dong,
                        district,
                        f.get("title", ""),
                        f["actor"],
                        attendees,
                        len(agenda),
                        decided,
                    )
                )
                for n, entry in enumerate(agenda, start=1):
                    decision = entry.get("decision")
                    cases.append(
                        (
                            mid,
                            str(entry["case_id"]),
                            n,
                            None if decision is None else str(decision),
                            "",
                        )
                    )
                continue
            meeting_id = f.get("meeting_id")
            if meeting_id is None:
                continue
            if cls is CaseClassified:
                action = f"classified:{f['track']}/{f['level']}"
            elif cls is CaseClosed:
                action = f"closed:{f['reason']}"
            else:
                action = f"linked:{f['sector']}:{f['provider']}"
            actions.append((action + ";", str(meeting_id), item.subject))
        s = self.schema
        tx.executemany(
            f"INSERT INTO {s.t(_MEETING)} (meeting_id, position, held_at, recorded_at, kind, "
            "host, host_dong, host_district, title, actor, attendees, cases, decisions) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            meetings,
        )
        tx.executemany(
            f"INSERT INTO {s.t(_CASE)} (meeting_id, case_id, item, decision, actions) "
            "VALUES (?,?,?,?,?)",
            cases,
        )
        tx.executemany(self._act, actions)


@dataclass(frozen=True)
class MeetingCase:
    """A case on a meeting's agenda: the meeting's decision and what was recorded under it.

    ``actions`` are like ``"closed:goal_achieved"``, ``"classified:case_managed/general"``
    or ``"linked:public:jungang-dong"``, in the order they were recorded.
    """

    case_id: UUID
    decision: MeetingDecision | None
    actions: tuple[str, ...]


@dataclass(frozen=True)
class MeetingEntry:
    """One case meeting (사례회의) in the register."""

    meeting_id: UUID
    held_at: datetime
    recorded_at: datetime
    kind: MeetingKind
    host: str
    host_dong: str | None
    host_district: str | None
    title: str
    recorded_by: str
    attendees: tuple[tuple[str, str], ...]
    cases: tuple[MeetingCase, ...]

    @property
    def attending_organisations(self) -> tuple[str, ...]:
        """The organisations that attended, in the order recorded."""
        return tuple(org for org, _ in self.attendees)

    @property
    def decisions(self) -> dict[str, int]:
        """How many agenda cases got each decision."""
        counts: dict[str, int] = defaultdict(int)
        for case in self.cases:
            if case.decision is not None:
                counts[case.decision.value] += 1
        return dict(counts)


def meetings_query(
    tx: Tx,
    prefix: str,
    *,
    start: str | None = None,
    end: str | None = None,
    kind: MeetingKind | str | None = None,
    host: str | None = None,
    dong: str | None = None,
    district: str | None = None,
) -> list[MeetingEntry]:
    """Meetings held in ``[start, end)`` (stored-time text) matching the filters, by date."""
    where = []
    params: list[Any] = []
    for column, value in (
        ("kind", MeetingKind(kind).value if kind is not None else None),
        ("host", host),
        ("host_dong", dong),
        ("host_district", district),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if start is not None:
        where.append("held_at >= ?")
        params.append(start)
    if end is not None:
        where.append("held_at < ?")
        params.append(end)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    tx.execute(
        "SELECT meeting_id, held_at, recorded_at, kind, host, host_dong, host_district, "
        f"title, actor, attendees FROM {prefix}{_MEETING}{clause} ORDER BY held_at, position",
        params,
    )
    rows = fetch(tx)
    agenda: dict[str, list[MeetingCase]] = defaultdict(list)
    ids = [r[0] for r in rows]
    for part in chunks(ids):
        tx.execute(
            f"SELECT meeting_id, case_id, decision, actions FROM {prefix}{_CASE} "
            f"WHERE meeting_id IN ({placeholders(len(part))}) ORDER BY meeting_id, item",
            part,
        )
        for mid, cid, decision, actions in fetch(tx):
            agenda[mid].append(
                MeetingCase(
                    UUID(cid),
                    MeetingDecision(decision) if decision else None,
                    tuple(a for a in actions.split(";") if a),
                )
            )
    return [
        MeetingEntry(
            meeting_id=UUID(r[0]),
            held_at=from_ts(r[1]),
            recorded_at=from_ts(r[2]),
            kind=MeetingKind(r[3]),
            host=r[4],
            host_dong=r[5],
            host_district=r[6],
            title=r[7],
            recorded_by=r[8],
            attendees=tuple((a[0], a[1]) for a in json.loads(r[9])),
            cases=tuple(agenda[r[0]]),
        )
        for r in rows
    ]
