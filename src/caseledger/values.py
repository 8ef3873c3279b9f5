"""Vocabularies and value objects of integrated case management.

Every vocabulary is a :class:`LabelledEnum`: its value is a stable English code
(what is stored and exported), and ``.ko`` / ``.en`` give display labels::

    >>> Track.CASE_MANAGED.value, Track.CASE_MANAGED.ko
    ('case_managed', '사례관리')

The codes are part of the stored format: add members freely, never rename one.
``TAXONOMY_VERSION`` names the version of these lists that an event was recorded under.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "TAXONOMY_VERSION",
    "Channel",
    "CheckDecision",
    "CheckMethod",
    "ClosureReason",
    "Code",
    "ConsentScope",
    "ConsultationMethod",
    "ConsultationOutcome",
    "LabelledEnum",
    "Level",
    "MeetingAttendee",
    "MeetingDecision",
    "MeetingKind",
    "Member",
    "NeedDomain",
    "NeedRating",
    "PersonalData",
    "PlannedService",
    "ReferralStatus",
    "RiskRating",
    "Role",
    "Sector",
    "ServiceKind",
    "Stage",
    "SubDomain",
    "Track",
]

#: Version of the vocabularies below; stored on every event.
TAXONOMY_VERSION = "2026.1"

#: An identifier chosen by the deploying organisation (organisation or worker code).
Code = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"),
]


class LabelledEnum(StrEnum):
    """A vocabulary member with a stable code and Korean/English display labels."""

    _ko: str
    _en: str

    def __new__(cls, code: str, ko: str = "", en: str = "") -> Self:
        member = str.__new__(cls, code)
        member._value_ = code
        member._ko = ko
        member._en = en or code.replace("_", " ")
        return member

    @property
    def ko(self) -> str:
        """The Korean label, as used in Korean welfare administration."""
        return self._ko

    @property
    def en(self) -> str:
        """The English label."""
        return self._en

    def label(self, lang: str = "ko") -> str:
        """The label in ``lang`` (``"ko"`` or ``"en"``)."""
        return self._ko if lang == "ko" else self._en


class Channel(LabelledEnum):
    """How a household in need was found (발굴 경로)."""

    BLIND_SPOT_SYSTEM = (
        "blind_spot_system",
        "복지사각지대 발굴시스템",
        "blind-spot detection system",
    )
    OUTREACH_VISIT = "outreach_visit", "찾아가는 보건복지서비스", "outreach visit"
    PARTNER_REFERRAL = "partner_referral", "민간기관 의뢰", "private partner referral"
    SAFETY_NET = "safety_net", "인적안전망", "human safety net"
    SELF_APPLICATION = "self_application", "본인 신청", "self application"
    PROXY_APPLICATION = "proxy_application", "대리 신청", "proxy application"
    HOTLINE_129 = "hotline_129", "129 보건복지상담센터", "129 hotline"


class ConsultationMethod(LabelledEnum):
    """How an initial consultation was held (초기상담 방법)."""

    VISIT = "visit", "방문", "home visit"
    PHONE = "phone", "전화", "phone"
    WALK_IN = "walk_in", "내방", "walk-in"


class ConsultationOutcome(LabelledEnum):
    """What an initial consultation led to."""

    INTAKE = "intake", "접수", "intake"
    INFORMATION_ONLY = "information_only", "정보제공", "information only"
    REFERRED_OUT = "referred_out", "타기관 의뢰", "referred out"


class NeedDomain(LabelledEnum):
    """The ten life domains of the needs assessment (욕구 영역), plus other."""

    SAFETY = "safety", "안전", "safety"
    HEALTH = "health", "건강", "health"
    DAILY_LIVING = "daily_living", "일상생활유지", "daily living"
    FAMILY = "family", "가족관계", "family relations"
    SOCIAL = "social", "사회적관계", "social relations"
    ECONOMY = "economy", "경제", "economy"
    EDUCATION = "education", "교육", "education"
    EMPLOYMENT = "employment", "고용", "employment"
    LIVING_ENVIRONMENT = "living_environment", "생활환경", "living environment"
    LEGAL_RIGHTS = "legal_rights", "법률 및 권익보장", "legal and rights"
    OTHER = "other", "기타", "other"

    @property
    def sub_domains(self) -> tuple[SubDomain, ...]:
        """The sub-domains of this domain."""
        return tuple(s for s in SubDomain if s.domain is self)


class SubDomain(LabelledEnum):
    """Two sub-domains per life domain (세부 영역). The code starts with its domain's code."""

    SAFETY_VIOLENCE = "safety.violence", "폭력·학대", "violence and abuse"
    SAFETY_RISK = "safety.risk", "위험·방임", "risk and neglect"
    HEALTH_PHYSICAL = "health.physical", "신체건강", "physical health"
    HEALTH_MENTAL = "health.mental", "정신건강", "mental health"
    DAILY_LIVING_SELF_CARE = "daily_living.self_care", "자기돌봄", "self care"
    DAILY_LIVING_HOUSEHOLD = "daily_living.household", "가사·식생활", "housework and meals"
    FAMILY_CONFLICT = "family.conflict", "가족갈등", "family conflict"
    FAMILY_CARE = "family.care", "돌봄부담", "care burden"
    SOCIAL_ISOLATION = "social.isolation", "사회적 고립", "isolation"
    SOCIAL_PARTICIPATION = "social.participation", "지역사회 참여", "community participation"
    ECONOMY_INCOME = "economy.income", "소득", "income"
    ECONOMY_DEBT = "economy.debt", "부채", "debt"
    EDUCATION_CHILD = "education.child", "아동·청소년 교육", "child education"
    EDUCATION_ADULT = "education.adult", "성인 교육", "adult education"
    EMPLOYMENT_JOB = "employment.job", "구직", "job seeking"
    EMPLOYMENT_CONDITIONS = "employment.conditions", "근로환경", "working conditions"
    LIVING_HOUSING = "living_environment.housing", "주거", "housing"
    LIVING_SANITATION = "living_environment.sanitation", "위생", "sanitation"
    LEGAL_AID = "legal_rights.legal_aid", "법률지원", "legal aid"
    LEGAL_ADVOCACY = "legal_rights.advocacy", "권익옹호", "rights advocacy"
    OTHER_OTHER = "other.other", "기타", "other"

    @property
    def domain(self) -> NeedDomain:
        """The life domain this sub-domain belongs to."""
        return NeedDomain(self.value.split(".", 1)[0])


class Track(LabelledEnum):
    """The selection decision's track (대상자 구분)."""

    CASE_MANAGED = "case_managed", "사례관리", "case-managed"
    LINKAGE_ONLY = "linkage_only", "서비스연계", "linkage only"
    NOT_SELECTED = "not_selected", "미선정", "not selected"


class Level(LabelledEnum):
    """Case difficulty level (사례 수준)."""

    GENERAL = "general", "일반", "general"
    COMPLEX = "complex", "고난도", "complex"


class Sector(LabelledEnum):
    """Public or private side of public-private cooperation (민관협력)."""

    PUBLIC = "public", "공공", "public"
    PRIVATE = "private", "민간", "private"


class ServiceKind(LabelledEnum):
    """Kind of support a service provides."""

    CASH = "cash", "현금", "cash"
    IN_KIND = "in_kind", "현물", "in kind"
    SERVICE = "service", "서비스", "service"
    COUNSELLING = "counselling", "상담", "counselling"


class CheckMethod(LabelledEnum):
    """How a service check was made (점검 방법)."""

    VISIT = "visit", "방문", "visit"
    PHONE = "phone", "전화", "phone"
    PROVIDER_REPORT = "provider_report", "제공기관 보고", "provider report"
    WALK_IN = "walk_in", "내방", "walk-in"


class CheckDecision(LabelledEnum):
    """What a service check decided for the service."""

    CONTINUE = "continue", "유지", "continue"
    ADJUST = "adjust", "변경", "adjust"
    STOP = "stop", "중단", "stop"


class ClosureReason(LabelledEnum):
    """Why a case was closed (종결 사유)."""

    GOAL_ACHIEVED = "goal_achieved", "목표달성", "goal achieved"
    REFERRED = "referred", "타기관 이관·의뢰", "referred or transferred"
    CLIENT_REFUSED = "client_refused", "대상자 거부·중단", "client refused or stopped"
    LOST_CONTACT = "lost_contact", "연락두절", "lost contact"
    MOVED_OUT = "moved_out", "전출", "moved out"
    DEATH = "death", "사망", "death"
    ENTERED_FACILITY = "entered_facility", "시설입소", "entered a facility"
    NOT_SELECTED = "not_selected", "미선정 종결", "not selected"
    OTHER = "other", "기타", "other"


class MeetingKind(LabelledEnum):
    """Kinds of case meeting (사례회의)."""

    INTERNAL = "internal", "내부사례회의", "internal case meeting"
    INTEGRATED = "integrated", "통합사례회의", "integrated case meeting"
    EXPERT = "expert", "솔루션위원회", "expert committee"


class MeetingDecision(LabelledEnum):
    """A meeting's decision on one case on its agenda."""

    SELECT = "select", "선정", "select"
    CLOSE = "close", "종결", "close"
    LINK_SERVICE = "link_service", "서비스연계", "link service"
    REFER = "refer", "의뢰", "refer"
    CONTINUE = "continue", "유지", "continue"


class Role(LabelledEnum):
    """A worker's role; authority is granted to roles by the policy."""

    DONG_OFFICER = "dong_officer", "읍면동 맞춤형복지 담당", "dong welfare officer"
    CASE_MANAGER = "case_manager", "통합사례관리사", "district integrated case manager"
    SUPERVISOR = "supervisor", "슈퍼바이저·팀장", "supervisor or team lead"
    PARTNER_WORKER = "partner_worker", "민간기관 실무자", "private partner worker"
    AUDITOR = "auditor", "감사", "auditor"
    RESEARCHER = "researcher", "연구자", "researcher"


class ConsentScope(LabelledEnum):
    """What a consent covers (정보제공 동의 범위)."""

    COLLECT = "collect", "수집", "collect"
    USE = "use", "이용", "use"
    PROVIDE = "provide", "제3자 제공", "provide to third parties"


class ReferralStatus(LabelledEnum):
    """States of a referral between organisations."""

    SENT = "sent", "의뢰", "sent"
    ACCEPTED = "accepted", "수락", "accepted"
    REJECTED = "rejected", "거절", "rejected"
    COMPLETED = "completed", "완료", "completed"
    REVOKED = "revoked", "철회", "revoked"


class Stage(LabelledEnum):
    """Where a case stands in the lifecycle."""

    OPENED = "opened", "접수", "opened (intake)"
    ASSESSED = "assessed", "욕구·위기도 조사", "assessed"
    SELECTED = "selected", "선정", "selected (case-managed)"
    LINKAGE_SELECTED = "linkage_selected", "서비스연계 선정", "selected (linkage only)"
    NOT_SELECTED = "not_selected", "미선정", "not selected"
    PLANNED = "planned", "서비스계획", "planned"
    IN_SERVICE = "in_service", "서비스 제공", "in service"
    LINKED = "linked", "서비스연계", "linked"
    CLOSED = "closed", "종결", "closed"


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PersonalData(_Value):
    """Personal fields of one person or one note. Kept apart from structural fields.

    Everything here is personal data under 개인정보 보호법: it is what privacy features
    encrypt, erase and leave out of de-identified exports.
    """

    name: str | None = Field(default=None, max_length=200)
    rrn: str | None = Field(default=None, max_length=20, description="resident registration number")
    phone: str | None = Field(default=None, max_length=40)
    address: str | None = Field(default=None, max_length=500)
    notes: str | None = Field(default=None, max_length=20_000)
    health: str | None = Field(default=None, max_length=20_000)


class Member(_Value):
    """A household member. ``member_no`` is stable within the household (1 = head)."""

    member_no: int = Field(ge=1, le=99)
    birth_year: int | None = Field(default=None, ge=1890, le=2100)
    sex: str | None = Field(default=None, pattern=r"^[MFX]$")
    personal: PersonalData | None = None


class NeedRating(_Value):
    """An assessed need in one sub-domain, rated 1 (low) to 5 (urgent)."""

    sub_domain: SubDomain
    urgency: int = Field(ge=1, le=5)

    @property
    def domain(self) -> NeedDomain:
        """The life domain of the rated sub-domain."""
        return self.sub_domain.domain


class RiskRating(_Value):
    """A crisis risk rating (위기도) from a named, versioned instrument."""

    instrument: str = Field(min_length=1, max_length=64)
    instrument_version: str = Field(min_length=1, max_length=32)
    score: float = Field(ge=0)
    level: str = Field(min_length=1, max_length=32)


class PlannedService(_Value):
    """One service in a service plan, for one need domain."""

    domain: NeedDomain
    service: str = Field(min_length=1, max_length=200)
    provider: str = Field(min_length=1, max_length=64, description="organisation code")
    sector: Sector
    kind: ServiceKind
    frequency: str = Field(default="", max_length=100)
    months: int = Field(default=1, ge=0, le=120)


class MeetingAttendee(_Value):
    """An organisation (and the role it sent) attending a case meeting."""

    organisation: str = Field(min_length=1, max_length=64)
    role: str = Field(default="", max_length=100)
