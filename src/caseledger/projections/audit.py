"""The audit trail: per case and per acting worker, everything recorded, in log order.

One row per event (and, for a case meeting, one more row per case on its agenda, so
the meeting appears in each case's trail): what was recorded, when it happened and
when it was recorded, who recorded it for which organisation, under which authority
(the meeting it names, the policy and taxonomy versions), and what it changed, as the
event's structural fields in JSON. Personal fields (``personal``, ``members``) are
never copied here: the trail can be shown to auditors without exposing them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from types import MappingProxyType
from typing import Any, ClassVar
from uuid import UUID

from caseledger.errors import InvalidInput
from caseledger.events import (
    EVENT_CLASSES,
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
from caseledger.projections.base import Item, Projection, fetch, from_ts, scalar_text, ts
from caseledger.store import Tx

__all__ = ["PERSONAL_FIELDS", "Audit", "AuditEntry", "AuditPage", "audit_query", "structural"]

#: Field names that hold personal data; never stored in a projection.
PERSONAL_FIELDS = frozenset({"personal", "members"})

_ENVELOPE = frozenset(
    {"occurred_at", "recorded_at", "actor", "organisation", "policy_version", "taxonomy_version"}
)
_SKIPPED = _ENVELOPE | PERSONAL_FIELDS
_HOUSEHOLD_EVENTS = (
    HouseholdDiscovered,
    ConsultationRecorded,
    ConsentGranted,
    ConsentWithdrawn,
    HouseholdErased,
)
_TABLE = "caseledger_audit"
_BY_NAME = {cls.__name__: cls for cls in EVENT_CLASSES}
_MAX_LIMIT = 10_000


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind is str or value is None:
        return value
    if kind is dict or isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in PERSONAL_FIELDS}
    if kind is tuple or kind is list or isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


_NESTED = (dict, tuple, list)


def _default(value: object) -> object:
    text = scalar_text(value)
    if text is None:
        msg = f"cannot put a {type(value).__name__} in the audit trail"
        raise TypeError(msg)
    return text


def _encoder() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
    default=_default)``, without building an encoder per call."""
    options = {
        "ensure_ascii": False,
        "sort_keys": True,
        "separators": (",", ":"),
        "default": _default,
    }
    fallback: Callable[[Any], str] = json.JSONEncoder(**options).encode  # type: ignore[arg-type]
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the C encoder
        return fallback
    try:
        # The arguments json.JSONEncoder.iterencode gives it for these options; without a
        # circular-reference check, which stored fields (trees of plain values) never need.
        iterencode = make(None, _default, json.encoder.encode_basestring, None, ":", ",",
                          True, False, True)  # fmt: skip
    except TypeError:  # pragma: no cover - another Python's private signature
        return fallback

    def encode(value: Any) -> str:
        return "".join(iterencode(value, 0))

    sample = {"b": [1, 2.5, None, True], "a": {"c": "가", "d": UUID(int=1)}}
    if encode(sample) != fallback(sample):  # pragma: no cover - likewise
        return fallback
    return encode


_encode = _encoder()


def structural(fields: Mapping[str, Any]) -> str:
    """The structural fields of an event (no envelope, nothing personal) as JSON text."""
    kept: dict[str, Any] = {}
    for k, v in fields.items():
        if k in _SKIPPED:
            continue
        kind = type(v)
        # Items carry ids and times as text already; a caller's own ids and times are
        # converted here, as _default would (cheaper than the encoder's call back).
        if kind is str:
            pass
        elif kind is UUID:
            v = str(v)
        elif kind is datetime:
            v = ts(v)
        elif kind in _NESTED:
            # Only containers can hold nested personal fields; scalars go as they are.
            v = _plain(v)
        kept[k] = v
    return _encode(kept)


def _decision_changes(decision: Any) -> str:
    """``json.dumps({"decision": ...}, separators=(",", ":"))`` of an agenda entry."""
    if decision is None:
        return '{"decision":null}'
    return '{"decision":' + json.encoder.encode_basestring_ascii(str(decision)) + "}"


# Which ids an event fills in besides its subject: by the kind of its aggregate.
_CASE, _HOUSEHOLD, _MEETING, _OTHER = range(4)


def _role(cls: type[Event]) -> int:
    if issubclass(cls, CaseEvent):
        return _CASE
    if cls in _HOUSEHOLD_EVENTS:
        return _HOUSEHOLD
    if cls is CaseMeetingHeld:
        return _MEETING
    return _OTHER


class Audit(Projection):
    """Everything recorded, per case and per acting worker, with its authority."""

    name: ClassVar[str] = "audit"
    version: ClassVar[int] = 1
    # Every event is audited. Listed one by one: a new event class must be checked for
    # personal fields under new names before its fields are copied here.
    handles: ClassVar[frozenset[type[Event]]] = frozenset(
        {
            OrganisationRegistered, WorkerRegistered, HouseholdDiscovered, ConsultationRecorded,
            ConsentGranted, ConsentWithdrawn, HouseholdErased, CaseOpened, NeedsAssessed,
            CaseMeetingHeld, CaseClassified, ServicePlanAgreed, ServiceLinked, ReferralSent,
            ReferralAccepted, ReferralRejected, ReferralCompleted, ReferralRevoked,
            ServiceChecked, NeedsReassessed, SupervisionRecorded, CaseClosed,
            FollowUpConducted, CaseReopened, CaseTransferred,
        }
    )  # fmt: skip
    ignores: ClassVar[frozenset[type[Event]]] = frozenset()
    tables: ClassVar[tuple[str, ...]] = (_TABLE,)

    def create_statements(self) -> list[str]:
        s = self.schema
        return [
            f"CREATE TABLE IF NOT EXISTS {s.t(_TABLE)} ("
            f"position BIGINT NOT NULL, item INTEGER NOT NULL, case_id {s.text}, "
            f"household_id {s.text}, subject_id {s.text} NOT NULL, "
            f"subject_version INTEGER NOT NULL, event TEXT NOT NULL, "
            f"occurred_at {s.time} NOT NULL, recorded_at {s.time} NOT NULL, "
            f"actor {s.text} NOT NULL, organisation {s.text} NOT NULL, meeting_id {s.text}, "
            "policy_version TEXT NOT NULL, taxonomy_version TEXT NOT NULL, "
            "changes TEXT NOT NULL, PRIMARY KEY (position, item))",
            f"CREATE INDEX IF NOT EXISTS caseledger_audit_case ON {s.t(_TABLE)} "
            "(case_id, position)",
            f"CREATE INDEX IF NOT EXISTS caseledger_audit_actor ON {s.t(_TABLE)} "
            "(actor, item, position)",
        ]

    def apply(self, tx: Tx, items: Sequence[Item]) -> None:
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        roles = _ROLES
        for item in items:
            cls = item.cls
            role = roles.get(cls)
            if role is None:
                continue
            f = item.fields
            subject = item.subject
            case_id = household_id = meeting_id = None
            if role == _CASE:
                case_id = subject
                household_id = str(f["household_id"])
                found = f.get("meeting_id")
                meeting_id = str(found) if found is not None else None
            elif role == _HOUSEHOLD:
                household_id = subject
            elif role == _MEETING:
                meeting_id = subject
            name = cls.__name__
            actor = f["actor"]
            organisation = f["organisation"]
            policy = f["policy_version"]
            taxonomy = f["taxonomy_version"]
            append(
                (item.position, 0, case_id, household_id, subject, item.originator_version,
                 name, item.occurred, item.recorded, actor, organisation, meeting_id, policy,
                 taxonomy, structural(f))
            )  # fmt: skip
            if role == _MEETING:
                # The meeting belongs in the trail of every case it discussed.
                for n, entry in enumerate(f["agenda"], start=1):
                    append(
                        (item.position, n, str(entry["case_id"]), None, subject,
                         item.originator_version, name, item.occurred, item.recorded, actor,
                         organisation, meeting_id, policy, taxonomy,
                         _decision_changes(entry.get("decision")))
                    )  # fmt: skip
        tx.executemany(
            f"INSERT INTO {self.schema.t(_TABLE)} (position, item, case_id, household_id, "
            "subject_id, subject_version, event, occurred_at, recorded_at, actor, organisation, "
            "meeting_id, policy_version, taxonomy_version, changes) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )


#: The role of each audited event class (a class not here is not audited).
_ROLES: dict[type[Event], int] = {cls: _role(cls) for cls in Audit.handles}


@dataclass(frozen=True)
class AuditEntry:
    """One recorded event as the audit trail shows it.

    ``subject_id`` is the aggregate the event belongs to (a case, household, meeting,
    organisation or worker); ``case_id`` is the case it concerns, if any (a meeting's
    entry in a case's trail has the case here and the meeting in ``meeting_id``).
    ``changes`` holds the event's structural fields; personal fields are never kept.
    """

    position: int
    event: str
    case_id: UUID | None
    household_id: UUID | None
    subject_id: UUID
    subject_version: int
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    organisation: str
    meeting_id: UUID | None
    policy_version: str
    taxonomy_version: str
    changes: Mapping[str, Any]

    @property
    def label_ko(self) -> str:
        """The event's Korean label (e.g. 종결)."""
        return _BY_NAME[self.event].label_ko

    def to_event(self, tz: tzinfo = UTC) -> Event:
        """The recorded event, rebuilt from the trail: structural fields only.

        Personal fields (``personal``, ``members``) are left at their defaults; read
        them through the ledger, under the policy, when they are needed. ``occurred_at``
        and ``recorded_at`` are given in ``tz``.
        """
        return _BY_NAME[self.event].model_validate(
            {
                **self.changes,
                "originator_id": self.subject_id,
                "originator_version": self.subject_version,
                "occurred_at": self.occurred_at.astimezone(tz),
                "recorded_at": self.recorded_at.astimezone(tz),
                "actor": self.actor,
                "organisation": self.organisation,
                "policy_version": self.policy_version,
                "taxonomy_version": self.taxonomy_version,
            }
        )


@dataclass(frozen=True)
class AuditPage:
    """A page of an audit trail. Pass ``next_after`` as ``after=`` for the next page.

    ``next_after`` is None on the last page.
    """

    entries: tuple[AuditEntry, ...]
    next_after: int | None


def _uuid(value: str | None) -> UUID | None:
    return None if value is None else UUID(value)


def audit_query(
    tx: Tx,
    prefix: str,
    *,
    case_id: UUID | None = None,
    worker: str | None = None,
    limit: int = 100,
    after: int | None = None,
) -> AuditPage:
    """A page of the trail of one case, of one acting worker, or (neither) of the whole log."""
    if not 1 <= limit <= _MAX_LIMIT:
        msg = f"limit must be between 1 and {_MAX_LIMIT}, not {limit}; page with after="
        raise InvalidInput(msg, [("limit", "out of range")])
    where = ["position > ?"]
    params: list[Any] = [after if after is not None else 0]
    if case_id is not None:
        where.append("case_id = ?")
        params.append(str(case_id))
    else:
        where.append("item = 0")
    if worker is not None:
        where.append("actor = ?")
        params.append(worker)
    tx.execute(
        "SELECT position, event, case_id, household_id, subject_id, subject_version, "
        "occurred_at, recorded_at, actor, organisation, meeting_id, policy_version, "
        f"taxonomy_version, changes FROM {prefix}{_TABLE} WHERE {' AND '.join(where)} "
        "ORDER BY position LIMIT ?",
        [*params, limit + 1],
    )
    rows = fetch(tx)
    more = len(rows) > limit
    entries = tuple(
        AuditEntry(
            position=r[0],
            event=r[1],
            case_id=_uuid(r[2]),
            household_id=_uuid(r[3]),
            subject_id=UUID(r[4]),
            subject_version=r[5],
            occurred_at=from_ts(r[6]),
            recorded_at=from_ts(r[7]),
            actor=r[8],
            organisation=r[9],
            meeting_id=_uuid(r[10]),
            policy_version=r[11],
            taxonomy_version=r[12],
            changes=MappingProxyType(json.loads(r[13])),
        )
        for r in rows[:limit]
    )
    return AuditPage(entries, entries[-1].position if more else None)
