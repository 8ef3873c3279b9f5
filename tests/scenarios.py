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


def register_dongducheon(ledger: Ledger, at: datetime | None = None) -> None:
    """Organisations and workers of Dongducheon (seeds 001, 003, 004)."""
    at = at or kst(2022, 1, 3, 9)
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
    # Referring to the two private centres provides the household's data to them: the
    # consent must name both (the default policy checks it at each referral).
    consent = ledger.grant_consent(household, scopes=["collect", "use", "provide"],
                                   recipients=["dongducheon-mhwc", "dongducheon-senior"],
                                   purpose="통합사례관리", by=by, at=at)  # fmt: skip
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
    # A household that only needed information: its personal data is destroyed (파기).
    informed = ledger.discover_household(
        dong="중앙동", district="동두천시", channel="hotline_129", by=by, at=kst(2023, 3, 2),
        members=[{"member_no": 1, "birth_year": 1970, "personal": {"name": "박OO"}}],
    )  # fmt: skip
    ledger.record_consultation(informed, method="phone", outcome="information_only", by=by,
                               at=kst(2023, 3, 2))  # fmt: skip
    ledger.erase_household(informed, reason="상담 종료, 보존 불필요", by="jungang-lead",
                           at=kst(2023, 3, 20))  # fmt: skip


@dataclass(frozen=True)
class Scenario2:
    case: UUID
    household: UUID
    fourth_meeting: UUID
    earlier_meetings: tuple[UUID, ...]
    links: tuple[UUID, ...]


def scenario_2(ledger: Ledger) -> Scenario2:
    """Dongducheon city (seed 004): the 4th integrated case meeting of 2021.

    An elderly person living alone in Jungang-dong, found by the human safety net on
    29 March, needs immediate intervention in mental health, care and safety. The
    district Hope Welfare Support Team takes the case; at the year's 4th integrated
    case meeting (22 April), with the mental health welfare centre and the senior
    welfare centre, it is selected as a complex case-managed case, and each
    organisation's service is linked: mental health counselling, senior care (both
    private, after referrals they accepted) and safety visits by the dong (public).
    """
    register_dongducheon(ledger, at=kst(2021, 1, 4, 9))
    manager = "hwst-manager"
    earlier = tuple(
        ledger.hold_meeting(kind="integrated", host="dongducheon-hwst", by=manager,
                            title=f"2021년 제{n}회 통합사례회의", at=at)
        for n, at in enumerate((kst(2021, 1, 28, 14), kst(2021, 2, 25, 14),
                                kst(2021, 3, 25, 14)), start=1)
    )  # fmt: skip
    household = ledger.discover_household(
        dong="중앙동", district="동두천시", channel="safety_net", by="jungang-officer",
        at=kst(2021, 3, 29), members=[{"member_no": 1, "birth_year": 1939, "sex": "F",
                                       "personal": {"name": "최OO"}}],
    )  # fmt: skip
    ledger.record_consultation(household, method="visit", outcome="intake", by="jungang-officer",
                               at=kst(2021, 3, 29, 15), problems=["health", "daily_living",
                                                                   "safety"])  # fmt: skip
    ledger.grant_consent(household, scopes=["collect", "use", "provide"],
                         recipients=["dongducheon-mhwc", "dongducheon-senior"],
                         purpose="통합사례관리", by="jungang-officer",
                         at=kst(2021, 3, 29, 15))  # fmt: skip
    case = ledger.open_case(household, by="jungang-officer", worker=manager, at=kst(2021, 3, 30))
    ledger.assess_needs(
        case, needs=[{"sub_domain": "health.mental", "urgency": 5},
                     {"sub_domain": "daily_living.self_care", "urgency": 4},
                     {"sub_domain": "safety.risk", "urgency": 5},
                     {"sub_domain": "social.isolation", "urgency": 3}],
        risk={"instrument": "위기도 척도", "instrument_version": "2021", "score": 82,
              "level": "high"},
        by=manager, at=kst(2021, 4, 8),
    )  # fmt: skip
    fourth = ledger.hold_meeting(
        kind="integrated", host="dongducheon-hwst", agenda=[case], decisions={case: "select"},
        attendees=[{"organisation": "dongducheon-mhwc", "role": "정신건강복지센터"},
                   {"organisation": "dongducheon-senior", "role": "노인복지관"},
                   {"organisation": "dongducheon-hwst", "role": "무한돌봄팀"}],
        title="2021년 제4회 통합사례회의", by=manager, at=kst(2021, 4, 22, 14),
    )  # fmt: skip
    ledger.classify(case, meeting=fourth, track="case_managed", level="complex",
                    criteria_version="dongducheon-2021",
                    rationale="정신건강·돌봄·안전 영역 즉각 개입 필요", by=manager,
                    at=kst(2021, 4, 22, 15))  # fmt: skip
    mental = ledger.refer(case, to="dongducheon-mhwc", domain="health", by=manager,
                          at=kst(2021, 4, 22, 16), purpose="정신건강 상담")  # fmt: skip
    care = ledger.refer(case, to="dongducheon-senior", domain="daily_living", by=manager,
                        at=kst(2021, 4, 22, 16), purpose="노인맞춤돌봄")  # fmt: skip
    mental_id = mental.referral_id  # type: ignore[attr-defined]
    care_id = care.referral_id  # type: ignore[attr-defined]
    ledger.respond_to_referral(case, mental_id, accept=True, by="mhwc-worker",
                               at=kst(2021, 4, 23))  # fmt: skip
    ledger.respond_to_referral(case, care_id, accept=True, by="senior-worker",
                               at=kst(2021, 4, 23, 11))  # fmt: skip
    ledger.agree_plan(
        case, services=[
            {"domain": "health", "service": "정신건강 상담", "provider": "dongducheon-mhwc",
             "sector": "private", "kind": "counselling", "frequency": "주 1회", "months": 6},
            {"domain": "daily_living", "service": "노인맞춤돌봄서비스",
             "provider": "dongducheon-senior", "sector": "private", "kind": "service",
             "frequency": "주 2회", "months": 6},
            {"domain": "safety", "service": "안부 확인 방문", "provider": "jungang-dong",
             "sector": "public", "kind": "service", "frequency": "주 1회", "months": 6},
        ], goal_count=3, by=manager, at=kst(2021, 4, 26),
    )  # fmt: skip
    links = (
        ledger.link_service(case, service="정신건강 상담", provider="dongducheon-mhwc",
                            domain="health", kind="counselling", referral_id=mental_id,
                            meeting=fourth, by=manager, at=kst(2021, 4, 27)),
        ledger.link_service(case, service="노인맞춤돌봄서비스", provider="dongducheon-senior",
                            domain="daily_living", referral_id=care_id, meeting=fourth,
                            by=manager, at=kst(2021, 4, 27, 11)),
        ledger.link_service(case, service="안부 확인 방문", provider="jungang-dong",
                            domain="safety", meeting=fourth, by=manager,
                            at=kst(2021, 4, 27, 12)),
    )  # fmt: skip
    return Scenario2(
        case, household, fourth, earlier,
        tuple(link.link_id for link in links),  # type: ignore[attr-defined]
    )  # fmt: skip


#: The four dongs Uijeongbu visited in seed 002: code → dong name.
UIJEONGBU_DONGS = {
    "ujb2": "의정부2동",
    "singok2": "신곡2동",
    "howon1": "호원1동",
    "songsan2": "송산2동",
}
UIJEONGBU_PARTNER = "ujb-welfare"


@dataclass(frozen=True)
class Scenario3:
    #: Cases by their letter in :func:`scenario_3`'s timeline.
    cases: dict[str, UUID]


class _Uijeongbu:
    """Small verbs for writing scenario 3's timeline by hand."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.cases: dict[str, UUID] = {}
        self.links: dict[str, list[UUID]] = {}
        at = kst(2019, 1, 2, 9)
        for code, dong in UIJEONGBU_DONGS.items():
            ledger.register_organisation(code, name=f"{dong} 행정복지센터", sector="public",
                                         kind="dong_centre", dong=dong, district="의정부시",
                                         at=at)  # fmt: skip
            ledger.register_worker(f"{code}-officer", organisation=code, role="dong_officer",
                                   at=at)  # fmt: skip
        ledger.register_organisation("ujb-hwst", name="의정부시 희망복지지원단", sector="public",
                                     kind="district_team", district="의정부시", at=at)  # fmt: skip
        ledger.register_worker("ujb-manager", organisation="ujb-hwst", role="case_manager", at=at)
        ledger.register_organisation(UIJEONGBU_PARTNER, name="의정부종합사회복지관",
                                     sector="private", kind="welfare_centre",
                                     district="의정부시", at=at)  # fmt: skip

    def found(self, code: str, day: datetime, channel: str, letter: str | None = None) -> None:
        """A household found in ``code``'s dong; with a ``letter``, a case is opened for it."""
        by = f"{code}-officer"
        household = self.ledger.discover_household(
            dong=UIJEONGBU_DONGS[code], district="의정부시", channel=channel, by=by, at=day,
            referred_by=UIJEONGBU_PARTNER if channel == "partner_referral" else None,
        )  # fmt: skip
        outcome = "intake" if letter else "information_only"
        self.ledger.record_consultation(household, method="visit", outcome=outcome, by=by, at=day)
        if letter:
            self.ledger.grant_consent(household, scopes=["collect", "use", "provide"],
                                      recipients=[UIJEONGBU_PARTNER], purpose="통합사례관리",
                                      by=by, at=day)  # fmt: skip
            case = self.ledger.open_case(household, by=by, at=day)
            self.ledger.assess_needs(case, needs=[{"sub_domain": "economy.income",
                                                   "urgency": 3}], by=by, at=day)  # fmt: skip
            self.cases[letter] = case

    def meeting(self, code: str, day: datetime, decisions: dict[str, str]) -> None:
        """An internal case meeting of ``code``: select, close or continue lettered cases."""
        by = f"{code}-officer"
        agenda = [self.cases[letter] for letter in decisions]
        meeting = self.ledger.hold_meeting(
            kind="internal", host=code, agenda=agenda, by=by, at=day,
            decisions={self.cases[k]: v for k, v in decisions.items()},
        )  # fmt: skip
        for letter, decision in decisions.items():
            if decision == "select":
                self.ledger.classify(self.cases[letter], meeting=meeting, track="case_managed",
                                     criteria_version="uijeongbu-2019", by=by, at=day)  # fmt: skip
            elif decision == "close":
                self.ledger.close_case(self.cases[letter], meeting=meeting,
                                       reason="goal_achieved", by=by, at=day)  # fmt: skip

    def link(self, code: str, letter: str, day: datetime, sector: str) -> None:
        """A service linked to a case: the dong's own (public) or the welfare centre's."""
        provider = code if sector == "public" else UIJEONGBU_PARTNER
        found = self.ledger.link_service(self.cases[letter], service="생계지원",
                                         provider=provider, domain="economy",
                                         by=f"{code}-officer", at=day)  # fmt: skip
        self.links.setdefault(letter, []).append(found.link_id)  # type: ignore[attr-defined]

    def check(self, code: str, letter: str, day: datetime, link: int = 0) -> None:
        """A service check of the case's ``link``-th service."""
        self.ledger.check_service(self.cases[letter], link_id=self.links[letter][link],
                                  method="visit", progress=50, by=f"{code}-officer",
                                  at=day)  # fmt: skip


def scenario_3(ledger: Ledger) -> Scenario3:
    """Uijeongbu (seed 002): four dongs' data of 2019 and 2020, counted by hand.

    In the four monitored areas (discovery, meetings, service linkage, service checks):

    ============  ==========================  ==========================
    dong          2019: found/meet/link/check  2020: found/meet/link/check
    ============  ==========================  ==========================
    의정부2동     3 / 1 / 2 (1 pub) / 2        5 / 2 / 3 (2 pub) / 4
    신곡2동       2 / 1 / 1 (1 pub) / 1        2 / 0 / 1 (0 pub) / 0
    호원1동       1 / 0 / 0 / 0                4 / 3 / 3 (1 pub) / 3
    송산2동       2 / 2 / 1 (0 pub) / 1        1 / 1 / 0 / 0
    ============  ==========================  ==========================

    Cases (letters) are opened at discovery; meetings select them (송산2동's case J is
    closed at its 2020 meeting). Open at the end of 2020: 의정부2동 A B C D E,
    신곡2동 F, 호원1동 G H; of these A, B, D, E, F and H are overdue for their monthly
    check on 31 December 2020 (H's check of 30 November fell due on 30 December).
    """
    u = _Uijeongbu(ledger)
    # 의정부2동, 2019: three found (A, B opened), one meeting, two links, two checks.
    u.found("ujb2", kst(2019, 3, 4), "blind_spot_system", "A")
    u.found("ujb2", kst(2019, 5, 13), "outreach_visit", "B")
    u.found("ujb2", kst(2019, 6, 10), "safety_net")
    u.meeting("ujb2", kst(2019, 6, 20), {"A": "select", "B": "select"})
    u.link("ujb2", "A", kst(2019, 7, 1), "public")
    u.link("ujb2", "B", kst(2019, 7, 2), "private")
    u.check("ujb2", "A", kst(2019, 8, 1))
    u.check("ujb2", "B", kst(2019, 8, 2))
    # 신곡2동, 2019: two found (F opened), one meeting, one link, one check.
    u.found("singok2", kst(2019, 4, 8), "outreach_visit", "F")
    u.meeting("singok2", kst(2019, 4, 25), {"F": "select"})
    u.link("singok2", "F", kst(2019, 5, 2), "public")
    u.check("singok2", "F", kst(2019, 6, 3))
    u.found("singok2", kst(2019, 10, 7), "partner_referral")
    # 호원1동, 2019: one found, nothing else.
    u.found("howon1", kst(2019, 8, 19), "outreach_visit")
    # 송산2동, 2019: two found (J opened), two meetings, one link, one check.
    u.found("songsan2", kst(2019, 2, 11), "outreach_visit", "J")
    u.meeting("songsan2", kst(2019, 2, 28), {"J": "select"})
    u.link("songsan2", "J", kst(2019, 3, 7), "private")
    u.found("songsan2", kst(2019, 9, 2), "blind_spot_system")
    u.meeting("songsan2", kst(2019, 11, 28), {"J": "continue"})
    u.check("songsan2", "J", kst(2019, 12, 5))

    # 의정부2동, 2020: five found (C, D, E opened), two meetings, three links, four checks.
    u.found("ujb2", kst(2020, 2, 3), "blind_spot_system", "C")
    u.found("ujb2", kst(2020, 2, 17), "outreach_visit", "D")
    u.meeting("ujb2", kst(2020, 2, 27), {"C": "select", "D": "select"})
    u.link("ujb2", "C", kst(2020, 3, 5), "public")
    u.link("ujb2", "D", kst(2020, 3, 6), "public")
    u.check("ujb2", "C", kst(2020, 4, 2))
    u.check("ujb2", "D", kst(2020, 4, 3))
    u.found("ujb2", kst(2020, 4, 6), "self_application")
    u.found("ujb2", kst(2020, 6, 1), "safety_net", "E")
    u.meeting("ujb2", kst(2020, 6, 25), {"E": "select"})
    u.link("ujb2", "E", kst(2020, 7, 1), "private")
    u.check("ujb2", "E", kst(2020, 7, 30))
    u.found("ujb2", kst(2020, 9, 14), "hotline_129")
    u.check("ujb2", "C", kst(2020, 12, 10))
    # 신곡2동, 2020: two found, no meeting, one link (for F), no check.
    u.found("singok2", kst(2020, 3, 9), "outreach_visit")
    u.link("singok2", "F", kst(2020, 5, 11), "private")
    u.found("singok2", kst(2020, 11, 2), "blind_spot_system")
    # 호원1동, 2020: four found (G, H opened), three meetings, three links, three checks.
    u.found("howon1", kst(2020, 1, 13), "blind_spot_system", "G")
    u.meeting("howon1", kst(2020, 1, 30), {"G": "select"})
    u.link("howon1", "G", kst(2020, 2, 6), "public")
    u.link("howon1", "G", kst(2020, 2, 7), "private")
    u.check("howon1", "G", kst(2020, 3, 5))
    u.found("howon1", kst(2020, 3, 16), "safety_net", "H")
    u.meeting("howon1", kst(2020, 3, 26), {"H": "select"})
    u.link("howon1", "H", kst(2020, 4, 1), "private")
    u.found("howon1", kst(2020, 5, 18), "outreach_visit")
    u.found("howon1", kst(2020, 8, 24), "self_application")
    u.meeting("howon1", kst(2020, 10, 29), {"G": "continue", "H": "continue"})
    u.check("howon1", "H", kst(2020, 11, 30))
    u.check("howon1", "G", kst(2020, 12, 3), link=1)
    # 송산2동, 2020: one found, one meeting closing J.
    u.meeting("songsan2", kst(2020, 3, 26), {"J": "close"})
    u.found("songsan2", kst(2020, 7, 6), "outreach_visit")
    return Scenario3(dict(u.cases))
