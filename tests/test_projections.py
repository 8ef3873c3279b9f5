"""Read models through the public API: the seed scenarios' caseloads, audit trails and KPIs.

Every expected figure below was counted by hand from the scenario's timeline in
``tests/scenarios.py``; each test runs on memory, SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path
from uuid import UUID

import pytest

from caseledger import (
    CaseloadEntry,
    ClosureReason,
    ConfigurationError,
    Deadlines,
    InvalidInput,
    Ledger,
    Level,
    MeetingDecision,
    MeetingKind,
    Stage,
    Track,
)
from caseledger.events import EVENT_CLASSES
from caseledger.projections import PROJECTIONS
from caseledger.projections import caseload as caseload_module
from caseledger.projections.base import Projection, cutoff
from caseledger.projections.meetings import Meetings
from caseledger.values import TAXONOMY_VERSION
from tests.conftest import MASTER_KEY, FixedClock
from tests.scenarios import kst, register_dongducheon, scenario_1, scenario_2, scenario_3


@pytest.fixture(autouse=True)
def _first_of_march(clock: FixedClock) -> None:
    # The figures below count days up to the day everything was recorded: 1 March 2023.
    clock.now = kst(2023, 3, 1, 9)


# ---------------------------------------------------------------------------
# Scenario 1: Dongducheon Jungang-dong (seeds 001, 003)


def test_scenario_1_caseload_after_the_february_meeting(ledger: Ledger) -> None:
    s = scenario_1(ledger)  # the clock says 2023-03-01 09:00 KST

    [medical] = ledger.caseload()
    assert medical.case_id == s.medical_case
    assert (medical.dong, medical.district) == ("중앙동", "동두천시")
    assert (medical.organisation, medical.worker) == ("jungang-dong", "jungang-officer")
    assert medical.stage is Stage.IN_SERVICE
    assert (medical.track, medical.level) == (Track.CASE_MANAGED, Level.GENERAL)
    assert medical.stage_since == kst(2023, 2, 10)
    assert medical.days_in_stage == 19
    assert medical.opened_at == kst(2023, 1, 5)
    assert medical.last_checked_at is None
    assert (medical.next_due, medical.next_due_kind) == (date(2023, 3, 10), "service_check")

    closed, still_open = ledger.caseload(include_closed=True)
    assert still_open.case_id == s.medical_case
    assert closed.case_id == s.resolved_case
    assert closed.stage is Stage.CLOSED
    assert closed.closed_at == kst(2023, 2, 9, 15)
    assert closed.closure_reason is ClosureReason.GOAL_ACHIEVED
    assert (closed.next_due, closed.next_due_kind) == (date(2023, 5, 9), "follow_up")

    assert [e.case_id for e in ledger.caseload(stage="closed")] == [s.resolved_case]
    assert ledger.caseload(dong="다른동") == []
    assert ledger.caseload(worker="hwst-manager") == []


def test_scenario_1_caseload_as_it_was_on_1_february(ledger: Ledger) -> None:
    s = scenario_1(ledger)

    resolved, medical = ledger.caseload(as_of=date(2023, 2, 1))
    assert (resolved.case_id, medical.case_id) == (s.resolved_case, s.medical_case)
    assert resolved.stage is medical.stage is Stage.PLANNED
    assert resolved.stage_since == kst(2022, 10, 20)
    assert resolved.days_in_stage == 104
    assert medical.stage_since == kst(2023, 1, 19)
    assert medical.days_in_stage == 13
    assert resolved.next_due is None

    assert [e.case_id for e in ledger.caseload(as_of=date(2022, 12, 31))] == [s.resolved_case]
    # Everything was recorded on 1 March: the day before, the ledger knew nothing.
    assert ledger.caseload(as_of_recorded=date(2023, 2, 28)) == []
    assert len(ledger.caseload(as_of_recorded=date(2023, 3, 1))) == 1


def test_caseload_entries_are_whole_dataclass_instances(ledger: Ledger) -> None:
    # Entries are built without the dataclass's constructor: each must still carry
    # exactly the declared fields, of the declared kinds, and equal a constructed one.
    scenario_1(ledger)
    entries = ledger.caseload(include_closed=True) + ledger.caseload(as_of=date(2023, 2, 1))
    assert entries
    names = {f.name for f in dataclasses.fields(CaseloadEntry)}
    for entry in entries:
        assert set(vars(entry)) == names
        assert CaseloadEntry(**dataclasses.asdict(entry)) == entry
        assert isinstance(entry.case_id, UUID)
        assert isinstance(entry.stage, Stage)
        assert entry.stage_since.tzinfo is not None
        assert entry.opened_at.tzinfo is not None
        with pytest.raises(dataclasses.FrozenInstanceError):
            entry.worker = "someone else"  # type: ignore[misc]


def test_scenario_1_audit_trail_of_the_closed_case(ledger: Ledger, clock: FixedClock) -> None:
    s = scenario_1(ledger)

    entries = ledger.audit_trail(case_id=s.resolved_case).entries
    assert [e.event for e in entries] == [
        "CaseOpened",
        "NeedsAssessed",
        "CaseMeetingHeld",
        "CaseClassified",
        "ServicePlanAgreed",
        "CaseMeetingHeld",
        "CaseClosed",
    ]
    assert [e.label_ko for e in entries][-2:] == ["사례회의", "종결"]
    selection_meeting = entries[2]
    assert dict(selection_meeting.changes) == {"decision": "select"}
    assert entries[3].meeting_id == selection_meeting.meeting_id
    assert entries[3].changes["track"] == "case_managed"
    assert dict(entries[5].changes) == {"decision": "close"}
    closing = entries[6]
    assert closing.meeting_id == entries[5].meeting_id == s.meeting
    assert closing.changes["reason"] == "goal_achieved"
    assert (closing.actor, closing.organisation) == ("jungang-officer", "jungang-dong")
    assert closing.occurred_at == kst(2023, 2, 9, 15)
    assert closing.recorded_at == clock.now
    assert closing.policy_version == ledger.policy_version
    assert closing.taxonomy_version == TAXONOMY_VERSION
    assert sorted(entries[0].changes) == [
        "case_organisation",
        "discovered_at",
        "district",
        "dong",
        "household_id",
        "worker",
    ]

    by_lead = ledger.audit_trail(worker="jungang-lead").entries
    assert [e.event for e in by_lead] == ["CaseMeetingHeld"] * 3
    assert by_lead[-1].subject_id == s.meeting
    assert by_lead[-1].changes["title"] == "2월 내부사례회의"


def test_audit_trails_page_without_losing_anything(ledger: Ledger) -> None:
    s = scenario_1(ledger)
    whole = ledger.audit_trail(case_id=s.medical_case, limit=1000)
    assert whole.next_after is None
    # Opened, assessed, selection meeting, classified, plan, February meeting, linked.
    assert len(whole.entries) == 7

    pages = []
    after = None
    while True:
        page = ledger.audit_trail(case_id=s.medical_case, limit=3, after=after)
        pages.append(page.entries)
        if page.next_after is None:
            break
        after = page.next_after
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [e for p in pages for e in p] == list(whole.entries)

    everything = ledger.audit_trail(limit=10_000).entries
    assert [e.position for e in everything] == list(range(1, len(ledger) + 1))
    with pytest.raises(InvalidInput, match="limit"):
        ledger.audit_trail(limit=0)


def test_no_personal_data_reaches_a_read_model(ledger: Ledger) -> None:
    scenario_1(ledger)  # the households' members have names (김OO, 이OO)
    dump = ledger.projections.dump()
    text = repr(dump)
    assert "김OO" not in text
    assert "이OO" not in text
    for entry in ledger.audit_trail(limit=10_000).entries:
        assert not {"personal", "members"} & set(entry.changes)
    discovered = next(e for e in ledger.audit_trail().entries if e.event == "HouseholdDiscovered")
    assert discovered.changes["channel"] == "outreach_visit"


def test_scenario_1_kpis_first_quarter_against_the_last(ledger: Ledger) -> None:
    scenario_1(ledger)
    report = ledger.kpis("2023Q1", by="dong")
    assert (report.period, report.previous_period) == ("2023Q1", "2022Q4")
    assert report.groups() == ["중앙동"]
    expected = {
        # metric: (2023Q1, 2022Q4)
        "discoveries": (1, 1),
        "discoveries.channel.outreach_visit": (1, 1),
        "cases_opened": (1, 1),
        "selections": (1, 1),
        "selections.case_managed.general": (1, 1),
        "meetings": (2, 1),
        "meetings.kind.internal": (2, 1),
        "meetings.cases_discussed": (3, 1),
        "meetings.decision.close": (1, 0),
        "meetings.decision.link_service": (1, 0),
        "service_links": (1, 0),
        "service_links.sector.public": (1, 0),
        "service_links.provider.jungang-dong": (1, 0),
        "service_checks": (0, 0),
        "closures": (1, 0),
        "closures.reason.goal_achieved": (1, 0),
        # 4 October 2022 to 9 February 2023: 128 days.
        "closures.duration.91-180d": (1, 0),
        # Intake 5 Jan, plan 19 Jan: 14 days; the year before 4 Oct to 20 Oct: 16 days.
        "intake_to_plan.count": (1, 1),
        "intake_to_plan.median_days": (14, 16),
        "intake_to_plan.share_on_time": (1.0, 1.0),
        # On 31 March the medical case is in service, its check due since 10 March.
        "open_caseload": (1, 1),
        "open_caseload.stage.in_service": (1, 0),
        "open_caseload.stage.planned": (0, 1),
        "overdue_checks": (1, 0),
    }
    for metric, (now, before) in expected.items():
        figure = report.figure(metric, "중앙동")
        assert (figure.value, figure.previous) == (now, before), metric
    assert report.figure("meetings", "중앙동").change == 1
    whole = ledger.kpis("2023Q1", compare_previous=False)
    assert whole.previous_period is None
    assert whole.value("meetings") == 2
    assert whole.previous("meetings") is None


def test_a_backdated_service_check_on_both_time_axes(ledger: Ledger, clock: FixedClock) -> None:
    s = scenario_1(ledger)
    # Visited on 2 March, recorded on 20 March.
    clock.now = kst(2023, 3, 20, 9)
    ledger.check_service(s.medical_case, link_id=s.medical_link, method="visit", progress=40,
                         by="jungang-officer", at=kst(2023, 3, 2))  # fmt: skip

    known_then = ledger.case_state(s.medical_case, as_of_recorded=date(2023, 3, 15))
    assert known_then.last_checked_at is None
    assert known_then.next_due == date(2023, 3, 10)
    assert known_then.days_in_stage == 33

    true_then = ledger.case_state(s.medical_case, as_of=date(2023, 3, 15))
    assert true_then.last_checked_at == kst(2023, 3, 2)
    assert true_then.next_due == date(2023, 4, 2)
    assert ledger.case_state(s.medical_case).last_checked_at == kst(2023, 3, 2)

    # What the ledger knew on 15 March about the world on 15 March: no check yet.
    both = ledger.case_state(s.medical_case, as_of=date(2023, 3, 15),
                             as_of_recorded=date(2023, 3, 15))  # fmt: skip
    assert both.last_checked_at is None
    assert ledger.case_state(s.medical_case, as_of=date(2023, 3, 1)).last_checked_at is None

    march = ledger.kpis("2023-03")
    assert (march.value("service_checks"), march.value("overdue_checks")) == (1, 0)
    audited = ledger.kpis("2023-03", as_of_recorded=date(2023, 3, 15))
    assert (audited.value("service_checks"), audited.value("overdue_checks")) == (0, 1)
    assert ledger.kpis("2023-03", as_of=date(2023, 3, 1)).value("service_checks") == 0


# ---------------------------------------------------------------------------
# Scenario 2: Dongducheon city, the 4th integrated case meeting of 2021 (seed 004)


def test_scenario_2_the_fourth_integrated_meeting_in_the_register(ledger: Ledger) -> None:
    s = scenario_2(ledger)

    meetings = ledger.meetings(period="2021")
    assert [m.kind for m in meetings] == [MeetingKind.INTEGRATED] * 4
    assert [m.meeting_id for m in meetings] == [*s.earlier_meetings, s.fourth_meeting]
    fourth = meetings[-1]
    assert fourth.title == "2021년 제4회 통합사례회의"
    assert fourth.held_at == kst(2021, 4, 22, 14)
    assert (fourth.host, fourth.host_district) == ("dongducheon-hwst", "동두천시")
    assert fourth.attending_organisations == (
        "dongducheon-mhwc",
        "dongducheon-senior",
        "dongducheon-hwst",
    )
    [discussed] = fourth.cases
    assert discussed.case_id == s.case
    assert discussed.decision is MeetingDecision.SELECT
    assert discussed.actions == (
        "classified:case_managed/complex",
        "linked:private:dongducheon-mhwc",
        "linked:private:dongducheon-senior",
        "linked:public:jungang-dong",
    )
    assert fourth.decisions == {"select": 1}
    assert [m.cases for m in meetings[:3]] == [(), (), ()]
    assert ledger.meetings(period="2021-04") == [fourth]
    assert ledger.meetings(period="2022") == []
    assert len(ledger.meetings(kind="integrated", host="dongducheon-hwst")) == 4


def test_scenario_2_caseload_and_audit_trail(ledger: Ledger) -> None:
    s = scenario_2(ledger)
    [case] = ledger.caseload(as_of=date(2021, 4, 30))
    assert case.case_id == s.case
    assert (case.stage, case.track, case.level) == (
        Stage.IN_SERVICE,
        Track.CASE_MANAGED,
        Level.COMPLEX,
    )
    assert (case.worker, case.organisation) == ("hwst-manager", "dongducheon-hwst")
    assert (case.dong, case.district) == ("중앙동", "동두천시")
    assert case.stage_since == kst(2021, 4, 27)
    assert (case.next_due, case.next_due_kind) == (date(2021, 5, 27), "service_check")
    # On 21 April, the day before the meeting: assessed, the meeting still to come.
    [before] = ledger.caseload(as_of=date(2021, 4, 21))
    assert before.stage is Stage.ASSESSED

    trail = ledger.audit_trail(case_id=s.case).entries
    assert [(e.event, e.actor) for e in trail] == [
        ("CaseOpened", "jungang-officer"),
        ("NeedsAssessed", "hwst-manager"),
        ("CaseMeetingHeld", "hwst-manager"),
        ("CaseClassified", "hwst-manager"),
        ("ReferralSent", "hwst-manager"),
        ("ReferralSent", "hwst-manager"),
        ("ReferralAccepted", "mhwc-worker"),
        ("ReferralAccepted", "senior-worker"),
        ("ServicePlanAgreed", "hwst-manager"),
        ("ServiceLinked", "hwst-manager"),
        ("ServiceLinked", "hwst-manager"),
        ("ServiceLinked", "hwst-manager"),
    ]
    assert [e.organisation for e in trail if e.event == "ReferralAccepted"] == [
        "dongducheon-mhwc",
        "dongducheon-senior",
    ]
    assert [e.meeting_id for e in trail if e.event == "ServiceLinked"] == [s.fourth_meeting] * 3
    assert trail[1].changes["risk"]["level"] == "high"


def test_scenario_2_kpis_second_quarter_against_the_first(ledger: Ledger) -> None:
    scenario_2(ledger)
    report = ledger.kpis("2021Q2")
    expected = {
        # metric: (2021Q2, 2021Q1)
        "discoveries": (0, 1),
        "discoveries.channel.safety_net": (0, 1),
        "consultations": (0, 1),
        "cases_opened": (0, 1),
        "meetings": (1, 3),
        "meetings.kind.integrated": (1, 3),
        "meetings.cases_discussed": (1, 0),
        "meetings.decision.select": (1, 0),
        "selections": (1, 0),
        "selections.case_managed.complex": (1, 0),
        "referrals_sent": (2, 0),
        "referrals_accepted": (2, 0),
        "referrals_rejected": (0, 0),
        "service_links": (3, 0),
        "service_links.sector.private": (2, 0),
        "service_links.sector.public": (1, 0),
        "service_links.provider.dongducheon-mhwc": (1, 0),
        "service_links.provider.dongducheon-senior": (1, 0),
        "service_links.provider.jungang-dong": (1, 0),
        # Intake 30 March, plan 26 April.
        "intake_to_plan.median_days": (27, None),
        "open_caseload": (1, 1),
        "open_caseload.stage.in_service": (1, 0),
        "open_caseload.stage.opened": (0, 1),
        # In service since 27 April, never checked: due 27 May, overdue on 30 June.
        "overdue_checks": (1, 0),
    }
    for metric, (now, before) in expected.items():
        assert (report.value(metric), report.previous(metric)) == (now, before), metric

    by_org = ledger.kpis("2021Q2", by="organisation")
    assert by_org.value("meetings", "dongducheon-hwst") == 1
    assert by_org.value("service_links", "dongducheon-hwst") == 3
    assert by_org.value("referrals_accepted", "dongducheon-mhwc") == 1
    assert by_org.value("referrals_accepted", "dongducheon-senior") == 1
    assert by_org.value("open_caseload", "dongducheon-hwst") == 1


# ---------------------------------------------------------------------------
# Scenario 3: Uijeongbu district monitoring of four dongs (seed 002)


def test_scenario_3_four_dongs_in_the_four_areas(ledger: Ledger) -> None:
    scenario_3(ledger)
    report = ledger.kpis("2020", by="dong", district="의정부시")
    assert report.previous_period == "2019"
    assert report.groups() == ["송산2동", "신곡2동", "의정부2동", "호원1동"]
    # dong: discoveries, meetings, service links, service checks; (2020, 2019) each
    expected = {
        "의정부2동": ((5, 3), (2, 1), (3, 2), (4, 2)),
        "신곡2동": ((2, 2), (0, 1), (1, 1), (0, 1)),
        "호원1동": ((4, 1), (3, 0), (3, 0), (3, 0)),
        "송산2동": ((1, 2), (1, 2), (0, 1), (0, 1)),
    }
    areas = ("discoveries", "meetings", "service_links", "service_checks")
    for dong, figures in expected.items():
        for metric, (now, before) in zip(areas, figures, strict=True):
            figure = report.figure(metric, dong)
            assert (figure.value, figure.previous, figure.change) == (now, before, now - before), (
                dong,
                metric,
            )
    # States on 31 December: open cases, and those overdue for their monthly check.
    open_and_overdue = {
        "의정부2동": ((5, 2), (4, 2)),
        "신곡2동": ((1, 1), (1, 1)),
        "호원1동": ((2, 0), (1, 0)),
        "송산2동": ((0, 1), (0, 0)),
    }
    for dong, ((open_now, open_before), (late_now, late_before)) in open_and_overdue.items():
        assert report.figure("open_caseload", dong).value == open_now
        assert report.figure("open_caseload", dong).previous == open_before
        assert report.figure("overdue_checks", dong).value == late_now
        assert report.figure("overdue_checks", dong).previous == late_before
    assert report.value("closures.reason.goal_achieved", "송산2동") == 1
    assert report.value("closures.duration.366d+", "송산2동") == 1  # 11 Feb 2019 to 26 Mar 2020
    assert report.value("cases_opened", "의정부2동") == 3


def test_scenario_3_district_totals_and_sectors(ledger: Ledger) -> None:
    scenario_3(ledger)
    report = ledger.kpis("2020", by="district")
    assert report.groups() == ["의정부시"]
    expected = {
        "discoveries": (12, 8),
        "meetings": (6, 4),
        "service_links": (7, 4),
        "service_links.sector.public": (3, 2),
        "service_links.sector.private": (4, 2),
        "service_checks": (7, 4),
        "selections": (5, 4),
        "open_caseload": (8, 4),
        "overdue_checks": (6, 3),
        "open_caseload.workers.0-9": (3, 3),
    }
    for metric, (now, before) in expected.items():
        assert (report.value(metric, "의정부시"), report.previous(metric, "의정부시")) == (
            now,
            before,
        ), metric
    loads = ledger.worker_caseloads(district="의정부시")
    assert [(w.worker, w.open_cases) for w in loads.workers] == [
        ("howon1-officer", 2),
        ("singok2-officer", 1),
        ("songsan2-officer", 0),
        ("ujb-manager", 0),
        ("ujb2-officer", 5),
    ]
    assert loads.buckets == {"0-9": 5, "10-19": 0, "20-29": 0, "30+": 0}


# ---------------------------------------------------------------------------
# Worker buckets, deadlines, projection hygiene


def test_worker_caseload_buckets(memory_ledger: Ledger) -> None:
    ledger = memory_ledger
    at = kst(2022, 1, 3)
    ledger.register_organisation("d", name="가동", sector="public", dong="가동", district="구",
                                 at=at)  # fmt: skip
    counts = {"w09": 9, "w10": 10, "w20": 20, "w30": 30, "w00": 0}
    with ledger.batch():
        for worker, n in counts.items():
            ledger.register_worker(worker, organisation="d", role="dong_officer", at=at)
            for _ in range(n):
                household = ledger.discover_household(
                    dong="가동", district="구", channel="outreach_visit", by=worker, at=at
                )
                ledger.record_consultation(household, method="visit", outcome="intake",
                                           by=worker, at=at)  # fmt: skip
                ledger.open_case(household, by=worker, at=at)
    loads = ledger.worker_caseloads()
    assert {w.worker: (w.open_cases, w.bucket) for w in loads.workers} == {
        "w00": (0, "0-9"),
        "w09": (9, "0-9"),
        "w10": (10, "10-19"),
        "w20": (20, "20-29"),
        "w30": (30, "30+"),
    }
    assert loads.buckets == {"0-9": 2, "10-19": 1, "20-29": 1, "30+": 1}
    assert ledger.worker_caseloads(as_of=date(2022, 1, 2)).buckets["0-9"] == 0


def test_due_and_overdue_follow_the_deadlines(ledger: Ledger, clock: FixedClock) -> None:
    s = scenario_1(ledger)
    due = ledger.due(today=date(2023, 3, 1))
    assert [(d.case_id, d.kind, d.due_on, d.overdue) for d in due] == [
        (s.medical_case, "service_check", date(2023, 3, 10), False),
        (s.resolved_case, "follow_up", date(2023, 5, 9), False),
    ]
    [late] = ledger.due(overdue_only=True, today=date(2023, 3, 11))
    assert (late.kind, late.days_overdue, late.worker) == ("service_check", 1, "jungang-officer")
    relaxed = ledger.due(today=date(2023, 3, 11), deadlines=Deadlines(check_months=2))
    assert relaxed[0].due_on == date(2023, 4, 10)
    assert not relaxed[0].overdue

    # A new case walks through the earlier deadlines.
    by = "jungang-officer"
    household = ledger.discover_household(dong="중앙동", district="동두천시",
                                          channel="self_application", by=by,
                                          at=kst(2023, 2, 20))  # fmt: skip
    ledger.record_consultation(household, method="walk_in", outcome="intake", by=by,
                               at=kst(2023, 2, 20))  # fmt: skip
    case = ledger.open_case(household, by=by, at=kst(2023, 2, 20))

    def due_on_case() -> list[tuple[str, date]]:
        return [(d.kind, d.due_on) for d in ledger.due(today=date(2023, 3, 1)) if d.case_id == case]

    assert due_on_case() == [("assessment", date(2023, 3, 2))]
    ledger.assess_needs(case, needs=[{"sub_domain": "economy.income", "urgency": 4}], by=by,
                        at=kst(2023, 2, 25))  # fmt: skip
    assert due_on_case() == []
    meeting = ledger.hold_meeting(kind="internal", host="jungang-dong", agenda=[case],
                                  by="jungang-lead", at=kst(2023, 2, 27))  # fmt: skip
    assert due_on_case() == [("selection", date(2023, 3, 4))]
    ledger.classify(case, meeting=meeting, track="case_managed", criteria_version="c1", by=by,
                    at=kst(2023, 3, 1, 8))  # fmt: skip
    assert due_on_case() == [("plan", date(2023, 3, 22))]
    assert ledger.case_state(case).next_due_kind == "plan"


def test_each_projection_handles_or_ignores_every_event_class() -> None:
    for projection in PROJECTIONS:
        for cls in EVENT_CLASSES:
            handled = cls in projection.handles
            ignored = cls in projection.ignores
            assert handled != ignored, f"{projection.name} must handle or ignore {cls.__name__}"
        projection.check_coverage()

    class Forgetful(Projection):
        name = "forgetful"
        handles = frozenset(EVENT_CLASSES[1:])
        ignores = frozenset()
        tables = ()

    with pytest.raises(TypeError, match=EVENT_CLASSES[0].__name__):
        Forgetful.check_coverage()


def test_bad_query_arguments_are_refused(ledger: Ledger) -> None:
    with pytest.raises(InvalidInput, match="period"):
        ledger.kpis("2022-13")
    with pytest.raises(InvalidInput, match="period"):
        ledger.kpis("last year")
    with pytest.raises(InvalidInput, match="by"):
        ledger.kpis("2022", by="planet")
    with pytest.raises(InvalidInput, match="stage"):
        ledger.caseload(stage="nowhere")


def test_projections_off_keeps_no_read_models(clock: FixedClock) -> None:
    with Ledger.open(":memory:", clock=clock, projections="off") as ledger:
        scenario_1(ledger)
        with pytest.raises(ConfigurationError, match="projections='off'"):
            ledger.caseload()
        tables = {r[0] for r in ledger.store.query("SELECT name FROM sqlite_master")}
        assert not any(t.startswith("caseledger_case") for t in tables)
    with pytest.raises(ConfigurationError, match="inline, follow, off"):
        Ledger.open(":memory:", projections="sometimes")


def test_an_entry_that_occurred_before_its_case_was_opened_survives_a_rebuild(
    ledger: Ledger,
) -> None:
    register_dongducheon(ledger)
    by = "jungang-officer"
    household = ledger.discover_household(
        dong="중앙동", district="동두천시", channel="outreach_visit", by=by, at=kst(2023, 1, 2)
    )
    ledger.record_consultation(household, method="visit", outcome="intake", by=by,
                               at=kst(2023, 1, 2), problems=["health"])  # fmt: skip
    case = ledger.open_case(household, by=by, at=kst(2023, 1, 10))
    # Assessed (recorded later) on a day before the case was opened: on the occurred
    # axis it takes effect at the opening.
    ledger.assess_needs(case, needs=[{"sub_domain": "health.physical", "urgency": 4}], by=by,
                        at=kst(2023, 1, 5))  # fmt: skip
    assert ledger.case_state(case, as_of=date(2023, 1, 10)).stage is Stage.ASSESSED
    inline = ledger.projections.dump()
    # One event per batch: the opening and the assessment are applied apart.
    for batch_size in (1, 1000):
        assert ledger.projections.rebuild(batch_size=batch_size) == len(ledger)
        assert ledger.projections.dump() == inline


def test_a_rebuild_reports_its_progress_once_a_batch(ledger: Ledger) -> None:
    scenario_1(ledger)  # 26 events
    before = ledger.projections.dump()
    seen: list[int] = []
    assert ledger.projections.rebuild(batch_size=10, on_progress=seen.append) == 26
    assert seen == [10, 20, 26]
    seen.clear()
    assert ledger.rebuild(on_progress=seen.append) == 26
    assert seen == [26]
    assert ledger.projections.dump() == before


def test_a_rebuild_on_sqlite_keeps_its_connection_settings(tmp_path: Path) -> None:
    with Ledger.open(str(tmp_path / "ledger.db"), master_key=MASTER_KEY) as ledger:
        scenario_1(ledger)
        before = ledger.projections.dump()
        ledger.rebuild()
        assert ledger.projections.dump() == before
        # Deleted content is still overwritten (the erasure of a data key relies on it),
        # and the page cache is back to its default.
        for _ in range(4):
            assert ledger.store.query("PRAGMA secure_delete") == [(1,)]
            assert ledger.store.query("PRAGMA cache_size") == [(-2000,)]


def test_writes_after_a_failed_rebuild_still_update_every_read_model(
    ledger: Ledger, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = scenario_1(ledger)

    def fail(self: Meetings, tx: object, items: object) -> None:
        raise RuntimeError("applying failed")

    # The last projection fails: the others had begun their rebuild.
    monkeypatch.setattr(Meetings, "apply", fail)
    with pytest.raises(RuntimeError, match="applying failed"):
        ledger.rebuild()
    monkeypatch.undo()

    clock.now = kst(2023, 3, 20, 9)
    ledger.close_case(s.medical_case, meeting=s.meeting, reason="goal_achieved",
                      by="jungang-officer", at=kst(2023, 3, 2))  # fmt: skip
    assert ledger.case_state(s.medical_case).stage is Stage.CLOSED
    assert ledger.case_state(s.medical_case, as_of=date(2023, 3, 15)).stage is Stage.CLOSED
    inline = ledger.projections.dump()
    ledger.rebuild()
    assert ledger.projections.dump() == inline


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_index_added_by_a_newer_release_is_made_on_opening(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # A ledger made before the caseload's indexes for open cases and service checks:
    # opening it adds them (and drops the index they replace) without a rebuild.
    url = (
        str(tmp_path / "ledger.db")
        if backend == "sqlite"
        else request.getfixturevalue("pg_schema_url")
    )
    new = {"caseledger_case_occurred_open", "caseledger_case_recorded_open",
           "caseledger_case_transition_checked"}  # fmt: skip
    with Ledger.open(url, master_key=MASTER_KEY) as ledger:
        scenario_1(ledger)
        rows, caseload = ledger.projections.dump(), ledger.caseload(as_of=date(2023, 2, 1))
        prefix = "" if backend == "sqlite" else f'"{ledger.projections.schema.prefix[1:-2]}".'
        assert new <= _index_names(ledger)
        for name in sorted(new):
            ledger.store.maintain(f"DROP INDEX {prefix}{name}")
        ledger.store.maintain(
            f"CREATE INDEX caseledger_case_transition_kind "
            f"ON {prefix}caseledger_case_transition (case_id, kind, occurred_at)"
        )
        positions = ledger.projections.positions()
        assert not new & _index_names(ledger)

    with Ledger.open(url, master_key=MASTER_KEY) as reopened:
        names = _index_names(reopened)
        assert new <= names
        assert "caseledger_case_transition_kind" not in names
        assert reopened.projections.positions() == positions  # nothing was rebuilt
        assert reopened.projections.dump() == rows
        assert reopened.caseload(as_of=date(2023, 2, 1)) == caseload


def _index_names(ledger: Ledger) -> set[str]:
    if ledger.store.dialect == "sqlite":
        rows = ledger.store.query("SELECT name FROM sqlite_master WHERE type = 'index'")
    else:
        schema = ledger.projections.schema.prefix[1:-2]
        rows = ledger.store.query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = ?", (schema,)
        )
    return {row[0] for row in rows}


def test_as_of_queries_on_postgresql_read_the_interval_index_and_restore_settings(
    ledger: Ledger,
) -> None:
    # PostgreSQL's planner over-estimates how many versions an as-of moment has open and
    # would read the whole table; the as-of query is planned with the partial interval
    # index and without JIT, for that one statement only.
    if ledger.store.dialect != "postgres":
        pytest.skip("planner settings exist on PostgreSQL only")
    s = scenario_1(ledger)
    moment = cutoff(date(2023, 2, 1), ledger.projections.tz)
    schema = ledger.projections.schema
    with ledger.store.transaction(commit=False) as tx:
        tx.execute("SELECT set_config('jit', 'on', true) AS a")
        tx.fetchone()
        found = caseload_module.open_states_at(
            tx, schema, as_of=moment, as_of_recorded=None, filters={}, include_closed=False
        )
        tx.execute("SELECT current_setting('enable_seqscan') AS a, current_setting('jit') AS b")
        assert tx.fetchone() == ("on", "on")  # as they were before the query
        with caseload_module._planned_for_intervals(tx, schema, as_of=True):
            tx.execute(
                f"EXPLAIN SELECT v.case_id FROM {schema.t('caseledger_case_occurred')} v "
                f"WHERE v.vfrom <= ? AND v.vto > ? AND v.stage <> 'closed'",
                (moment, moment),
            )
            plan = "\n".join(str(row[0]) for row in tx.fetchall())
    assert "caseledger_case_occurred_open" in plan
    assert {f.case_id for f in found} == {str(s.resolved_case), str(s.medical_case)}
