"""Commands: what a caller asks the ledger to record, as validated pydantic models.

Each :class:`~caseledger.Ledger` verb builds one of these and executes it; the
JSON-lines import reads the same models (one JSON object per line, its ``command``
field naming the verb), and :func:`command_json_schema` documents them.

Common fields:

``by``
    the acting worker's code (registry commands may omit it: ``"system"``);
``at``
    when it happened, timezone-aware, not in the future;
``idempotency_key``
    optional; re-sending a command with the same key records nothing twice and
    returns the original result.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from caseledger.values import (
    Channel,
    CheckDecision,
    CheckMethod,
    ClosureReason,
    Code,
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
    "COMMAND_CLASSES",
    "AgreePlan",
    "AssessNeeds",
    "CheckService",
    "Classify",
    "CloseCase",
    "Command",
    "CompleteReferral",
    "DiscoverHousehold",
    "EraseHousehold",
    "FollowUp",
    "GrantConsent",
    "HoldMeeting",
    "LinkService",
    "OpenCase",
    "Reassess",
    "RecordConsultation",
    "RecordSupervision",
    "Refer",
    "RegisterOrganisation",
    "RegisterWorker",
    "ReopenCase",
    "RespondToReferral",
    "RevokeReferral",
    "TransferCase",
    "WithdrawConsent",
    "command_adapter",
    "command_json_schema",
]

IdempotencyKey = Annotated[str, Field(min_length=1, max_length=200)]
ShortText = Annotated[str, Field(max_length=500)]
Notes = Annotated[str, Field(max_length=20_000)]


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    by: Code
    at: AwareDatetime
    idempotency_key: IdempotencyKey | None = None


class _RegistryCommand(_Command):
    by: Code = "system"


class RegisterOrganisation(_RegistryCommand):
    """Register an organisation (a dong centre, a district team, a private partner)."""

    command: Literal["register_organisation"] = "register_organisation"
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=200)]
    sector: Sector
    kind: Annotated[str, Field(min_length=1, max_length=64)] = "organisation"
    dong: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    district: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class RegisterWorker(_RegistryCommand):
    """Register a worker account with a role in an organisation."""

    command: Literal["register_worker"] = "register_worker"
    code: Code
    organisation: Code
    role: Role
    name: Annotated[str, Field(max_length=200)] | None = None


class DiscoverHousehold(_Command):
    """Record a household found in need (발굴)."""

    command: Literal["discover_household"] = "discover_household"
    dong: Annotated[str, Field(min_length=1, max_length=64)]
    district: Annotated[str, Field(min_length=1, max_length=64)]
    channel: Channel
    members: tuple[Member, ...] = ()
    crisis_codes: tuple[Annotated[str, Field(max_length=32)], ...] = ()
    batch: Annotated[str, Field(max_length=32)] | None = None
    referred_by: Code | None = None
    personal: PersonalData | None = None
    household_id: UUID | None = None


class RecordConsultation(_Command):
    """Record an initial consultation (초기상담) with a household."""

    command: Literal["record_consultation"] = "record_consultation"
    household_id: UUID
    method: ConsultationMethod
    outcome: ConsultationOutcome
    problems: tuple[NeedDomain, ...] = ()
    notes: Notes | None = None


class OpenCase(_Command):
    """Open a case at intake (접수) for a consulted household."""

    command: Literal["open_case"] = "open_case"
    household_id: UUID
    worker: Code | None = Field(default=None, description="assigned worker; defaults to `by`")
    case_id: UUID | None = None


class AssessNeeds(_Command):
    """Record the needs and risk assessment (욕구 및 위기도 조사)."""

    command: Literal["assess_needs"] = "assess_needs"
    case_id: UUID
    needs: Annotated[tuple[NeedRating, ...], Field(min_length=1)]
    risk: RiskRating | None = None
    notes: Notes | None = None


class HoldMeeting(_Command):
    """Record a case meeting (사례회의) with its agenda and decisions."""

    command: Literal["hold_meeting"] = "hold_meeting"
    kind: MeetingKind
    host: Code
    agenda: tuple[UUID, ...] = ()
    decisions: dict[UUID, MeetingDecision] = Field(default_factory=dict)
    attendees: tuple[MeetingAttendee, ...] = ()
    title: ShortText = ""
    meeting_id: UUID | None = None


class Classify(_Command):
    """Record the selection decision (대상자 구분 및 선정) taken at a meeting."""

    command: Literal["classify"] = "classify"
    case_id: UUID
    meeting_id: UUID
    track: Track
    level: Level = Level.GENERAL
    criteria_version: Annotated[str, Field(min_length=1, max_length=64)]
    rationale: ShortText = ""
    notes: Notes | None = None


class AgreePlan(_Command):
    """Record a service plan agreed with the client (or a revision of it)."""

    command: Literal["agree_plan"] = "agree_plan"
    case_id: UUID
    services: Annotated[tuple[PlannedService, ...], Field(min_length=1)]
    goal_count: int = Field(default=1, ge=0, le=100)
    agreed_on: date | None = None
    notes: Notes | None = None


class LinkService(_Command):
    """Link a service from a provider organisation to the case (서비스연계)."""

    command: Literal["link_service"] = "link_service"
    case_id: UUID
    service: Annotated[str, Field(min_length=1, max_length=200)]
    provider: Code
    domain: NeedDomain
    kind: ServiceKind = ServiceKind.SERVICE
    sector: Sector | None = Field(default=None, description="defaults to the provider's sector")
    amount: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    referral_id: UUID | None = None
    meeting_id: UUID | None = None
    link_id: UUID | None = None


class Refer(_Command):
    """Refer the case to another organisation."""

    command: Literal["refer"] = "refer"
    case_id: UUID
    to: Code
    domain: NeedDomain
    purpose: ShortText = ""
    referral_id: UUID | None = None


class RespondToReferral(_Command):
    """Accept or reject a referral, as a worker of the receiving organisation."""

    command: Literal["respond_to_referral"] = "respond_to_referral"
    case_id: UUID
    referral_id: UUID
    accept: bool
    reason: ShortText = ""


class CompleteReferral(_Command):
    """Mark an accepted referral as completed, as the receiving organisation."""

    command: Literal["complete_referral"] = "complete_referral"
    case_id: UUID
    referral_id: UUID


class RevokeReferral(_Command):
    """Revoke a referral not yet completed, as the sending organisation."""

    command: Literal["revoke_referral"] = "revoke_referral"
    case_id: UUID
    referral_id: UUID
    reason: ShortText = ""


class CheckService(_Command):
    """Record a service check (서비스점검) of a linked service."""

    command: Literal["check_service"] = "check_service"
    case_id: UUID
    link_id: UUID
    method: CheckMethod
    progress: int = Field(ge=0, le=100)
    decision: CheckDecision = CheckDecision.CONTINUE
    notes: Notes | None = None


class Reassess(_Command):
    """Record a reassessment (재사정)."""

    command: Literal["reassess"] = "reassess"
    case_id: UUID
    needs: Annotated[tuple[NeedRating, ...], Field(min_length=1)]
    risk: RiskRating | None = None
    notes: Notes | None = None


class RecordSupervision(_Command):
    """Record supervision (슈퍼비전) given on the case."""

    command: Literal["record_supervision"] = "record_supervision"
    case_id: UUID
    notes: Notes | None = None


class CloseCase(_Command):
    """Close the case (종결) as decided at a meeting, with a reason."""

    command: Literal["close_case"] = "close_case"
    case_id: UUID
    meeting_id: UUID
    reason: ClosureReason


class FollowUp(_Command):
    """Record follow-up (사후관리) on a closed case."""

    command: Literal["follow_up"] = "follow_up"
    case_id: UUID
    method: CheckMethod = CheckMethod.PHONE
    recommend_reopen: bool = False
    notes: Notes | None = None


class ReopenCase(_Command):
    """Reopen a closed case (재개); it goes back to intake."""

    command: Literal["reopen_case"] = "reopen_case"
    case_id: UUID
    reason: ShortText = ""
    worker: Code | None = None


class TransferCase(_Command):
    """Transfer an open case (이관) to a worker of another organisation."""

    command: Literal["transfer_case"] = "transfer_case"
    case_id: UUID
    to_organisation: Code
    to_worker: Code


class GrantConsent(_Command):
    """Record a household member's consent (정보제공 동의)."""

    command: Literal["grant_consent"] = "grant_consent"
    household_id: UUID
    member_no: int = Field(default=1, ge=1, le=99)
    scopes: Annotated[tuple[ConsentScope, ...], Field(min_length=1)]
    recipients: tuple[Code, ...] = ()
    purpose: Annotated[str, Field(min_length=1, max_length=500)]
    expires_at: AwareDatetime | None = None
    consent_id: UUID | None = None


class WithdrawConsent(_Command):
    """Record that a household member withdrew a consent."""

    command: Literal["withdraw_consent"] = "withdraw_consent"
    household_id: UUID
    consent_id: UUID


class EraseHousehold(_Command):
    """Destroy a household's personal data (파기) by destroying its data key."""

    command: Literal["erase_household"] = "erase_household"
    household_id: UUID
    reason: Annotated[str, Field(min_length=1, max_length=500)]


COMMAND_CLASSES: tuple[type[_Command], ...] = (
    RegisterOrganisation,
    RegisterWorker,
    DiscoverHousehold,
    RecordConsultation,
    OpenCase,
    AssessNeeds,
    HoldMeeting,
    Classify,
    AgreePlan,
    LinkService,
    Refer,
    RespondToReferral,
    CompleteReferral,
    RevokeReferral,
    CheckService,
    Reassess,
    RecordSupervision,
    CloseCase,
    FollowUp,
    ReopenCase,
    TransferCase,
    GrantConsent,
    WithdrawConsent,
    EraseHousehold,
)

Command = Annotated[
    RegisterOrganisation
    | RegisterWorker
    | DiscoverHousehold
    | RecordConsultation
    | OpenCase
    | AssessNeeds
    | HoldMeeting
    | Classify
    | AgreePlan
    | LinkService
    | Refer
    | RespondToReferral
    | CompleteReferral
    | RevokeReferral
    | CheckService
    | Reassess
    | RecordSupervision
    | CloseCase
    | FollowUp
    | ReopenCase
    | TransferCase
    | GrantConsent
    | WithdrawConsent
    | EraseHousehold,
    Field(discriminator="command"),
]

_ADAPTER: TypeAdapter[Command] | None = None


def command_adapter() -> TypeAdapter[Command]:
    """A pydantic adapter that validates any command from a dict or JSON."""
    global _ADAPTER
    if _ADAPTER is None:
        _ADAPTER = TypeAdapter(Command)
    return _ADAPTER


def command_json_schema() -> dict[str, Any]:
    """The JSON Schema of one line of a JSON-lines import."""
    schema = command_adapter().json_schema()
    schema["title"] = "caseledger command"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
