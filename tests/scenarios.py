"""The seed scenarios of the domain guide, recorded through the public API.

Used by tests (and the tutorial), so each returns the ids a test needs to check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from caseledger import Ledger

KST = ZoneInfo("Asia/Seoul")


def kst(y: int, m: int, d: int, hh: int = 10) -> datetime:
    return datetime(y, m, d, hh, tzinfo=KST)


def register_dongducheon(ledger: Ledger) -> None:
    """Organisations and workers of Dongducheon (seeds 001, 003, 004)."""
    at = kst(2022, 1, 3, 9)
    orgs = [
        ("jungang-dong", "중앙동 행정복지센터", "public", "dong_centre", "중앙동"),
        ("dongducheon-hwst", "동두천시 희망복지지원단", "public", "district_team", None),
        ("dongducheon-mhwc", "동두천시 정신건강복지센터", "private", "mental_health_centre", None),
        ("dongducheon-senior", "동두천시 노인복지관", "private", "senior_welfare_centre", None),
    ]
    for code, name, sector, kind, dong in orgs:
        ledger.register_organisation(
            code, name=name, sector=sector, kind=kind, dong=dong, district="동두천시", at=at
        )
    ledger.register_worker(
        "jungang-officer", organisation="jungang-dong", role="dong_officer", at=at
    )
    ledger.register_worker("jungang-lead", organisation="jungang-dong", role="supervisor", at=at)
    ledger.register_worker(
        "hwst-manager", organisation="dongducheon-hwst", role="case_manager", at=at
    )
    ledger.register_worker(
        "mhwc-worker", organisation="dongducheon-mhwc", role="partner_worker", at=at
    )
    ledger.register_worker(
        "senior-worker", organisation="dongducheon-senior", role="partner_worker", at=at
    )


@dataclass(frozen=True)
class Scenario1:
    resolved_case: UUID
    medical_case: UUID
    meeting: UUID
    medical_link: UUID


def _selected_case(ledger: Ledger, discovered: datetime, selected: datetime, name: str) -> UUID:
    by = "jungang-officer"
    household = ledger.discover_household(
        dong="중앙동", district="동두천시", channel="outreach_visit", by=by, at=discovered,
        members=[{"member_no": 1, "birth_year": 1958, "personal": {"name": name}}],
    )  # fmt: skip
    ledger.record_consultation(household, method="visit", outcome="intake", by=by, at=discovered,
                               problems=["health", "economy"])  # fmt: skip
    case = ledger.open_case(household, by=by, at=discovered)
    ledger.assess_needs(case, needs=[{"sub_domain": "health.physical", "urgency": 4},
                                     {"sub_domain": "economy.debt", "urgency": 3}],
                        by=by, at=discovered)  # fmt: skip
    meeting = ledger.hold_meeting(
        kind="internal", host="jungang-dong", agenda=[case], decisions={case: "select"},
        by="jungang-lead", at=selected,
    )  # fmt: skip
    ledger.classify(case, meeting=meeting, track="case_managed", level="general",
                    criteria_version="dongducheon-2022", by=by, at=selected)  # fmt: skip
    ledger.agree_plan(case, services=[{"domain": "health", "service": "방문간호", "provider":
                                       "jungang-dong", "sector": "public", "kind": "service"}],
                      by=by, at=selected)  # fmt: skip
    return case


def scenario_1(ledger: Ledger) -> Scenario1:
    """Dongducheon Jungang-dong (seeds 001, 003).

    Two households selected for case management in October and January; the internal
    case meeting on 9 February reviews both: one household's difficulties are resolved
    and its case is closed; the other, with heavy medical costs, is linked to a public
    service. After it: one open case, one closed case with the meeting as its authority,
    one new public service link.
    """
    register_dongducheon(ledger)
    resolved = _selected_case(ledger, kst(2022, 10, 4), kst(2022, 10, 20), "김OO")
    medical = _selected_case(ledger, kst(2023, 1, 5), kst(2023, 1, 19), "이OO")
    meeting = ledger.hold_meeting(
        kind="internal", host="jungang-dong", agenda=[resolved, medical],
        decisions={resolved: "close", medical: "link_service"},
        attendees=[{"organisation": "jungang-dong", "role": "맞춤형복지팀"}],
        title="2월 내부사례회의", by="jungang-lead", at=kst(2023, 2, 9, 14),
    )  # fmt: skip
    ledger.close_case(resolved, meeting=meeting, reason="goal_achieved", by="jungang-officer",
                      at=kst(2023, 2, 9, 15))  # fmt: skip
    linked = ledger.link_service(
        medical, service="긴급지원 의료비", provider="jungang-dong", domain="health",
        kind="cash", amount="3000000", meeting=meeting, by="jungang-officer",
        at=kst(2023, 2, 10),
    )  # fmt: skip
    return Scenario1(resolved, medical, meeting, linked.link_id)  # type: ignore[attr-defined]


def every_event(ledger: Ledger) -> None:
    """Record at least one event of every event class (for round-trip and projection tests)."""
    s = scenario_1(ledger)
    by = "jungang-officer"
    at = kst(2023, 2, 13)
    medical = s.medical_case
    household = ledger.case(medical).household_id
    consent = ledger.grant_consent(household, scopes=["collect", "use", "provide"],
                                   recipients=["dongducheon-mhwc"], purpose="통합사례관리",
                                   by=by, at=at)  # fmt: skip
    ledger.check_service(medical, link_id=s.medical_link, method="visit", progress=40, by=by, at=at,
                         notes="의료비 지원 진행 중")  # fmt: skip
    ledger.reassess(medical, needs=[{"sub_domain": "health.mental", "urgency": 3}], by=by, at=at,
                    risk={"instrument": "위기도", "instrument_version": "2022", "score": 12.5,
                          "level": "high"})  # fmt: skip
    ledger.record_supervision(medical, by="jungang-lead", at=at, notes="슈퍼비전")
    referral = ledger.refer(
        medical, to="dongducheon-mhwc", domain="health", purpose="상담", by=by, at=at
    ).referral_id  # type: ignore[attr-defined]
    ledger.respond_to_referral(medical, referral, accept=True, by="mhwc-worker", at=at)
    ledger.complete_referral(medical, referral, by="mhwc-worker", at=at)
    rejected = ledger.refer(
        medical, to="dongducheon-senior", domain="daily_living", by=by, at=at
    ).referral_id  # type: ignore[attr-defined]
    ledger.respond_to_referral(medical, rejected, accept=False, reason="정원 초과",
                               by="senior-worker", at=at)  # fmt: skip
    revoked = ledger.refer(
        medical, to="dongducheon-senior", domain="safety", by=by, at=at
    ).referral_id  # type: ignore[attr-defined]
    ledger.revoke_referral(medical, revoked, by=by, at=at, reason="중복 의뢰")
    ledger.transfer_case(medical, to_organisation="dongducheon-hwst", to_worker="hwst-manager",
                         by=by, at=at)  # fmt: skip
    ledger.withdraw_consent(household, consent, by=by, at=kst(2023, 2, 14))
    ledger.follow_up(s.resolved_case, by=by, at=kst(2023, 3, 9), recommend_reopen=True)
    ledger.reopen_case(s.resolved_case, by=by, at=kst(2023, 3, 10), reason="재위기")
