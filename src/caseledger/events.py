"""Every domain event caseledger records, as explicit, frozen, versioned classes.

Events are the stored contract: named in the past tense, never mutated, never
renamed. Each class has a ``class_version``; when its fields change, bump the
version and register an upcaster (see :func:`upcaster`) that turns the stored
fields of the previous version into the new shape, so old ledgers still replay.

Every event carries an envelope:

``originator_id`` / ``originator_version``
    the aggregate (case, household, meeting, organisation, worker) and its position in it;
``occurred_at``
    when it happened in the world, given by the caller (timezone-aware, may be in the past);
``recorded_at``
    when the ledger recorded it, set by the ledger;
``actor`` / ``organisation``
    the acting worker's code and that worker's organisation;
``policy_version`` / ``taxonomy_version``
    the authority policy and vocabulary versions in force when it was recorded.

Personal fields live only inside ``personal`` (:class:`~caseledger.values.PersonalData`)
and ``members``; every other field is structural and safe for reports. They are stored
sealed (see :mod:`caseledger.keystore`); an event decoded without the key to open them
has them set to None and says so in its ``redaction`` (:class:`Redaction`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from caseledger.values import (
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

__all__ = [
    "EVENT_CLASSES",
    "AgendaItem",
    "CaseClassified",
    "CaseClosed",
    "CaseEvent",
    "CaseMeetingHeld",
    "CaseOpened",
    "CaseReopened",
    "CaseTransferred",
    "ConsentGranted",
    "ConsentWithdrawn",
    "ConsultationRecorded",
    "Event",
    "FollowUpConducted",
    "HouseholdDiscovered",
    "HouseholdErased",
    "HouseholdEvent",
    "NeedsAssessed",
    "NeedsReassessed",
    "OrganisationRegistered",
    "Redaction",
    "ReferralAccepted",
    "ReferralCompleted",
    "ReferralRejected",
    "ReferralRevoked",
    "ReferralSent",
    "ServiceChecked",
    "ServiceLinked",
    "ServicePlanAgreed",
    "SupervisionRecorded",
    "WorkerRegistered",
    "event_class",
    "topic_of",
    "upcast",
    "upcaster",
]

_TOPIC_PREFIX = "caseledger.events:"


class Redaction(BaseModel):
    """Personal fields of a decoded event that were not opened, and why.

    ``reason`` is ``"erased"`` when the household's data key was destroyed
    (:meth:`~caseledger.Ledger.erase_household`) and ``"withheld"`` when the reader was
    not given the key (plain :meth:`~caseledger.Ledger.history`, or a reader the policy
    does not entitle to personal data). ``fields`` lists the field paths, e.g.
    ``("personal", "members.0.personal")``; those fields read None.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: Literal["erased", "withheld"]
    fields: tuple[str, ...]
    #: The stored sealed bytes of those fields, so the event re-encodes to the same bytes.
    sealed: tuple[bytes, ...] = Field(default=(), repr=False)


class Event(BaseModel):
    """Base of every domain event: the envelope shared by all of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Bumped whenever the stored fields of a class change; see :func:`upcaster`.
    class_version: ClassVar[int] = 1
    #: Korean label for display.
    label_ko: ClassVar[str] = ""

    originator_id: UUID
    originator_version: int = Field(ge=1)
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime
    actor: str
    organisation: str
    policy_version: str
    taxonomy_version: str
    #: Set when personal fields were not opened on decoding; never stored.
    redaction: Redaction | None = Field(default=None, exclude=True)

    @property
    def topic(self) -> str:
        """The stored topic of this event's class."""
        return topic_of(type(self))


# ---------------------------------------------------------------------------
# Registry: organisations and workers


class OrganisationRegistered(Event):
    """An organisation joined the ledger (public dong/district office or private partner)."""

    label_ko: ClassVar[str] = "기관 등록"
    code: str
    name: str
    sector: Sector
    kind: str = Field(description="e.g. dong_centre, district_team, welfare_centre")
    dong: str | None = None
    district: str | None = None


class WorkerRegistered(Event):
    """A worker account was registered with a role in an organisation."""

    label_ko: ClassVar[str] = "담당자 등록"
    code: str
    worker_organisation: str
    role: Role
    personal: PersonalData | None = None


# ---------------------------------------------------------------------------
# Households: discovery, consultation, consent


class HouseholdEvent(Event):
    """An event of a household aggregate (``originator_id`` is the household id)."""

    @property
    def household_id(self) -> UUID:
        """The household this event belongs to."""
        return self.originator_id


class HouseholdDiscovered(HouseholdEvent):
    """A household in need was found (발굴), through a named channel."""

    label_ko: ClassVar[str] = "발굴"
    dong: str
    district: str
    channel: Channel
    crisis_codes: tuple[str, ...] = ()
    batch: str | None = Field(default=None, description="blind-spot system batch, e.g. 2022-02")
    referred_by: str | None = Field(default=None, description="referring organisation code")
    members: tuple[Member, ...] = ()
    personal: PersonalData | None = None


class ConsultationRecorded(HouseholdEvent):
    """An initial consultation (초기상담) was held with the household."""

    label_ko: ClassVar[str] = "초기상담"
    method: ConsultationMethod
    problems: tuple[NeedDomain, ...] = ()
    outcome: ConsultationOutcome
    personal: PersonalData | None = None


class ConsentGranted(HouseholdEvent):
    """A household member consented to processing of their data (정보제공 동의)."""

    label_ko: ClassVar[str] = "정보제공 동의"
    consent_id: UUID
    member_no: int
    scopes: tuple[ConsentScope, ...]
    recipients: tuple[str, ...] = Field(default=(), description="organisation codes")
    purpose: str
    expires_at: AwareDatetime | None = None


class ConsentWithdrawn(HouseholdEvent):
    """A household member withdrew a consent given earlier."""

    label_ko: ClassVar[str] = "동의 철회"
    consent_id: UUID


class HouseholdErased(HouseholdEvent):
    """The household's personal data was destroyed (파기) by destroying its data key."""

    label_ko: ClassVar[str] = "개인정보 파기"
    reason: str = Field(description="why, without personal data (e.g. retention period ended)")


# ---------------------------------------------------------------------------
# Cases


class CaseEvent(Event):
    """An event of a case aggregate (``originator_id`` is the case id)."""

    household_id: UUID

    @property
    def case_id(self) -> UUID:
        """The case this event belongs to."""
        return self.originator_id


class CaseOpened(CaseEvent):
    """A case was opened at intake (접수) for a discovered household."""

    label_ko: ClassVar[str] = "접수"
    dong: str
    district: str
    case_organisation: str
    worker: str
    discovered_at: AwareDatetime


class NeedsAssessed(CaseEvent):
    """Needs and crisis risk were assessed (욕구 및 위기도 조사)."""

    label_ko: ClassVar[str] = "욕구·위기도 조사"
    needs: tuple[NeedRating, ...]
    risk: RiskRating | None = None
    personal: PersonalData | None = None


class CaseClassified(CaseEvent):
    """The case was classified at a case meeting (대상자 구분 및 선정)."""

    label_ko: ClassVar[str] = "대상자 선정"
    meeting_id: UUID
    track: Track
    level: Level
    criteria_version: str
    rationale: str = Field(default="", description="structural summary; details go in personal")
    personal: PersonalData | None = None


class ServicePlanAgreed(CaseEvent):
    """A service plan (서비스 제공계획) was agreed with the client, or revised."""

    label_ko: ClassVar[str] = "서비스 계획"
    services: tuple[PlannedService, ...]
    goal_count: int = Field(ge=0)
    agreed_on: date
    revision: int = Field(ge=1)
    personal: PersonalData | None = None


class ServiceLinked(CaseEvent):
    """A service was linked to a provider organisation (서비스연계)."""

    label_ko: ClassVar[str] = "서비스 연계"
    link_id: UUID
    domain: NeedDomain
    service: str
    provider: str
    sector: Sector
    kind: ServiceKind
    amount: Decimal | None = None
    referral_id: UUID | None = None
    meeting_id: UUID | None = None


class ReferralSent(CaseEvent):
    """The case was referred to another organisation (의뢰)."""

    label_ko: ClassVar[str] = "의뢰"
    referral_id: UUID
    to_organisation: str
    domain: NeedDomain
    purpose: str = ""


class ReferralAccepted(CaseEvent):
    """The receiving organisation accepted a referral."""

    label_ko: ClassVar[str] = "의뢰 수락"
    referral_id: UUID


class ReferralRejected(CaseEvent):
    """The receiving organisation rejected a referral, with a reason."""

    label_ko: ClassVar[str] = "의뢰 거절"
    referral_id: UUID
    reason: str


class ReferralCompleted(CaseEvent):
    """The receiving organisation completed what the referral asked for."""

    label_ko: ClassVar[str] = "의뢰 완료"
    referral_id: UUID


class ReferralRevoked(CaseEvent):
    """The sending organisation revoked a referral that was not yet completed."""

    label_ko: ClassVar[str] = "의뢰 철회"
    referral_id: UUID
    reason: str = ""


class ServiceChecked(CaseEvent):
    """A linked service was checked (서비스점검): progress and a decision."""

    label_ko: ClassVar[str] = "서비스 점검"
    link_id: UUID
    method: CheckMethod
    progress: int = Field(ge=0, le=100, description="percent toward the plan's goals")
    decision: CheckDecision
    personal: PersonalData | None = None


class NeedsReassessed(CaseEvent):
    """Needs were reassessed (재사정) during service."""

    label_ko: ClassVar[str] = "재사정"
    needs: tuple[NeedRating, ...]
    risk: RiskRating | None = None
    personal: PersonalData | None = None


class SupervisionRecorded(CaseEvent):
    """Supervision (슈퍼비전) was given on the case."""

    label_ko: ClassVar[str] = "슈퍼비전"
    personal: PersonalData | None = None


class CaseClosed(CaseEvent):
    """The case was closed (종결) by the decision of a case meeting, with a reason."""

    label_ko: ClassVar[str] = "종결"
    meeting_id: UUID
    reason: ClosureReason


class FollowUpConducted(CaseEvent):
    """Follow-up (사후관리) after closure; it may recommend reopening."""

    label_ko: ClassVar[str] = "사후관리"
    method: CheckMethod
    recommend_reopen: bool = False
    personal: PersonalData | None = None


class CaseReopened(CaseEvent):
    """A closed case was reopened (재개); it goes back to intake."""

    label_ko: ClassVar[str] = "재개"
    reason: str = ""
    worker: str


class CaseTransferred(CaseEvent):
    """An open case was transferred (이관) to another dong, district or organisation."""

    label_ko: ClassVar[str] = "이관"
    to_organisation: str
    to_worker: str
    to_dong: str
    to_district: str


# ---------------------------------------------------------------------------
# Case meetings


class AgendaItem(BaseModel):
    """A case on a meeting's agenda, with the meeting's decision on it (if any)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    case_id: UUID
    decision: MeetingDecision | None = None


class CaseMeetingHeld(Event):
    """A case meeting (사례회의) was held: kind, host, attendees, agenda and decisions."""

    label_ko: ClassVar[str] = "사례회의"
    kind: MeetingKind
    host: str
    title: str = ""
    attendees: tuple[MeetingAttendee, ...] = ()
    agenda: tuple[AgendaItem, ...] = ()

    def has_on_agenda(self, case_id: UUID) -> bool:
        """Whether the case was on this meeting's agenda."""
        return any(item.case_id == case_id for item in self.agenda)


# ---------------------------------------------------------------------------
# Topics, versions and upcasting

#: Every event class, in catalogue order. Projections and the codec enumerate this.
EVENT_CLASSES: tuple[type[Event], ...] = (
    OrganisationRegistered,
    WorkerRegistered,
    HouseholdDiscovered,
    ConsultationRecorded,
    ConsentGranted,
    ConsentWithdrawn,
    HouseholdErased,
    CaseOpened,
    NeedsAssessed,
    CaseMeetingHeld,
    CaseClassified,
    ServicePlanAgreed,
    ServiceLinked,
    ReferralSent,
    ReferralAccepted,
    ReferralRejected,
    ReferralCompleted,
    ReferralRevoked,
    ServiceChecked,
    NeedsReassessed,
    SupervisionRecorded,
    CaseClosed,
    FollowUpConducted,
    CaseReopened,
    CaseTransferred,
)

_BY_TOPIC: dict[str, type[Event]] = {_TOPIC_PREFIX + c.__name__: c for c in EVENT_CLASSES}

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
_UPCASTERS: dict[tuple[type[Event], int], Upcaster] = {}


def topic_of(cls: type[Event]) -> str:
    """The stored topic naming an event class."""
    return _TOPIC_PREFIX + cls.__name__


def event_class(topic: str) -> type[Event]:
    """The event class a stored topic names. Raises ``KeyError`` for an unknown topic."""
    return _BY_TOPIC[topic]


def upcaster(cls: type[Event], from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function turning stored fields of ``from_version`` into ``from_version + 1``.

    Example, after adding a required ``district`` field to ``CaseOpened``
    (and setting ``CaseOpened.class_version = 2``)::

        @upcaster(CaseOpened, from_version=1)
        def _district_unknown(fields):
            return {**fields, "district": "unknown"}
    """

    def register(func: Upcaster) -> Upcaster:
        _UPCASTERS[(cls, from_version)] = func
        return func

    return register


def upcast(cls: type[Event], version: int, fields: dict[str, Any]) -> dict[str, Any]:
    """Bring stored ``fields`` of ``version`` up to ``cls.class_version``."""
    while version < cls.class_version:
        try:
            step = _UPCASTERS[(cls, version)]
        except KeyError:
            msg = f"no upcaster registered for {cls.__name__} from version {version}"
            raise LookupError(msg) from None
        fields = step(fields)
        version += 1
    return fields


# ---------------------------------------------------------------------------
# Upcasters of released event versions


@upcaster(CaseOpened, from_version=1)
def _case_opened_v1_to_v2(fields: dict[str, Any]) -> dict[str, Any]:
    # The first draft of the stored format (version 1) called the assigned worker
    # "assigned_worker" and had no district; ledgers written with it still replay.
    fields = dict(fields)
    fields["worker"] = fields.pop("assigned_worker")
    fields.setdefault("district", "")
    fields.setdefault("discovered_at", fields["occurred_at"])
    return fields


CaseOpened.class_version = 2
