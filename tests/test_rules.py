"""The lifecycle rules: every broken rule is a typed error, and nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from caseledger import (
    AlreadyExists,
    CaseClosedError,
    CaseLedgerError,
    CaseNotFound,
    HouseholdNotFound,
    InvalidInput,
    Ledger,
    MeetingNotFound,
    MeetingRuleError,
    OrganisationNotFound,
    RuleViolation,
    ServiceLinkNotFound,
    Stage,
    StageError,
    TimeError,
    WorkerNotFound,
)
from caseledger.errors import AuthorityError, ReferralNotFound
from tests.conftest import FixedClock
from tests.scenarios import kst, register_dongducheon, scenario_1

BY = "jungang-officer"


def refused(ledger: Ledger, error: type[CaseLedgerError], call: Callable[[], Any]) -> str:
    """Run ``call``, expect ``error``, and check that nothing was written."""
    before = len(ledger)
    with pytest.raises(error) as info:
        call()
    assert len(ledger) == before, "a refused command wrote something"
    return str(info.value)


def new_case(ledger: Ledger, at_day: int = 4) -> UUID:
    household = ledger.discover_household(
        dong="중앙동",
        district="동두천시",
        channel="blind_spot_system",
        by=BY,
        at=kst(2022, 10, at_day),
    )
    ledger.record_consultation(
        household, method="phone", outcome="intake", by=BY, at=kst(2022, 10, at_day)
    )
    return ledger.open_case(household, by=BY, at=kst(2022, 10, at_day))


@pytest.fixture
def registered(memory_ledger: Ledger) -> Ledger:
    register_dongducheon(memory_ledger)
    return memory_ledger


def test_unknown_ids_are_typed_not_found_errors(registered: Ledger) -> None:
    ledger = registered
    ghost = uuid4()
    msg = refused(ledger, CaseNotFound, lambda: ledger.case(ghost))
    assert str(ghost) in msg
    assert "does not exist" in msg
    refused(ledger, HouseholdNotFound, lambda: ledger.open_case(ghost, by=BY, at=kst(2022, 10, 5)))
    refused(
        ledger,
        WorkerNotFound,
        lambda: ledger.discover_household(
            dong="중앙동",
            district="동두천시",
            channel="hotline_129",
            by="nobody",
            at=kst(2022, 1, 5),
        ),
    )
    refused(
        ledger,
        OrganisationNotFound,
        lambda: ledger.register_worker(
            "w9", organisation="nowhere", role="dong_officer", at=kst(2022, 1, 5)
        ),
    )
    case = new_case(ledger)
    refused(
        ledger,
        MeetingNotFound,
        lambda: ledger.classify(
            case,
            meeting=ghost,
            track="case_managed",
            criteria_version="v",
            by=BY,
            at=kst(2022, 10, 6),
        ),
    )
    refused(
        ledger,
        ServiceLinkNotFound,
        lambda: ledger.check_service(
            case, link_id=ghost, method="visit", progress=1, by=BY, at=kst(2022, 10, 6)
        ),
    )
    refused(
        ledger,
        ReferralNotFound,
        lambda: ledger.respond_to_referral(case, ghost, accept=True, by=BY, at=kst(2022, 10, 6)),
    )


def test_a_household_id_is_not_a_case(registered: Ledger) -> None:
    household = registered.discover_household(
        dong="중앙동", district="동두천시", channel="self_application", by=BY, at=kst(2022, 3, 1)
    )
    refused(registered, CaseNotFound, lambda: registered.case(household))
    refused(registered, CaseNotFound, lambda: registered.history(household))


def test_lifecycle_order_is_enforced(registered: Ledger) -> None:
    ledger = registered
    case = new_case(ledger)
    at = kst(2022, 10, 7)
    plan = [
        {
            "domain": "health",
            "service": "s",
            "provider": "jungang-dong",
            "sector": "public",
            "kind": "service",
        }
    ]
    msg = refused(ledger, StageError, lambda: ledger.agree_plan(case, services=plan, by=BY, at=at))
    assert "case_managed" in msg
    refused(
        ledger,
        StageError,
        lambda: ledger.link_service(
            case, service="s", provider="jungang-dong", domain="health", by=BY, at=at
        ),
    )
    meeting = ledger.hold_meeting(
        kind="internal", host="jungang-dong", agenda=[case], by="jungang-lead", at=at
    )
    msg = refused(
        ledger,
        StageError,
        lambda: ledger.classify(
            case, meeting=meeting, track="case_managed", criteria_version="v", by=BY, at=at
        ),
    )
    assert "assessed" in msg
    refused(
        ledger,
        StageError,
        lambda: ledger.reassess(
            case, needs=[{"sub_domain": "health.mental", "urgency": 2}], by=BY, at=at
        ),
    )
    ledger.assess_needs(case, needs=[{"sub_domain": "health.mental", "urgency": 2}], by=BY, at=at)
    refused(
        ledger,
        StageError,
        lambda: ledger.assess_needs(
            case, needs=[{"sub_domain": "health.mental", "urgency": 2}], by=BY, at=at
        ),
    )
    ledger.classify(case, meeting=meeting, track="linkage_only", criteria_version="v", by=BY, at=at)
    msg = refused(ledger, StageError, lambda: ledger.agree_plan(case, services=plan, by=BY, at=at))
    assert "linkage_only" in msg
    household = ledger.case(case).household_id
    ledger.grant_consent(household, scopes=["provide"], recipients=["dongducheon-senior"],
                         purpose="도시락 배달", by=BY, at=at)  # fmt: skip
    ledger.link_service(
        case, service="도시락", provider="dongducheon-senior", domain="daily_living", by=BY, at=at
    )
    assert ledger.case(case).stage is Stage.LINKED
    refused(ledger, StageError, lambda: ledger.follow_up(case, by=BY, at=at))
    refused(ledger, StageError, lambda: ledger.reopen_case(case, by=BY, at=at))


def test_closed_cases_take_only_follow_up_and_reopen(memory_ledger: Ledger) -> None:
    s = scenario_1(memory_ledger)
    ledger, case = memory_ledger, s.resolved_case
    at = kst(2023, 3, 2)
    refused(
        ledger, CaseClosedError, lambda: ledger.record_supervision(case, by="jungang-lead", at=at)
    )
    refused(
        ledger,
        CaseClosedError,
        lambda: ledger.close_case(case, meeting=s.meeting, reason="other", by=BY, at=at),
    )
    refused(
        ledger,
        CaseClosedError,
        lambda: ledger.transfer_case(
            case, to_organisation="dongducheon-hwst", to_worker="hwst-manager", by=BY, at=at
        ),
    )
    ledger.follow_up(case, by=BY, at=at, recommend_reopen=True)
    ledger.reopen_case(case, by=BY, at=at, reason="재위기")
    reopened = ledger.case(case)
    assert reopened.stage is Stage.OPENED
    assert reopened.track is None
    assert reopened.reopened == 1


def test_decisions_need_a_meeting_that_had_the_case_on_its_agenda(registered: Ledger) -> None:
    ledger = registered
    case, other = new_case(ledger), new_case(ledger)
    at = kst(2022, 10, 8)
    ledger.assess_needs(case, needs=[{"sub_domain": "economy.income", "urgency": 3}], by=BY, at=at)
    meeting = ledger.hold_meeting(
        kind="internal", host="jungang-dong", agenda=[other], by="jungang-lead", at=at
    )
    msg = refused(
        ledger,
        MeetingRuleError,
        lambda: ledger.classify(
            case, meeting=meeting, track="case_managed", criteria_version="v", by=BY, at=at
        ),
    )
    assert "agenda" in msg
    refused(
        ledger,
        MeetingRuleError,
        lambda: ledger.close_case(case, meeting=meeting, reason="goal_achieved", by=BY, at=at),
    )
    later = ledger.hold_meeting(
        kind="internal", host="jungang-dong", agenda=[case], by="jungang-lead", at=kst(2022, 10, 20)
    )
    msg = refused(
        ledger,
        MeetingRuleError,
        lambda: ledger.classify(
            case,
            meeting=later,
            track="case_managed",
            criteria_version="v",
            by=BY,
            at=kst(2022, 10, 19),
        ),
    )
    assert "before meeting" in msg
    refused(
        ledger,
        InvalidInput,
        lambda: ledger.hold_meeting(
            kind="internal",
            host="jungang-dong",
            agenda=[case],
            decisions={other: "select"},
            by=BY,
            at=at,
        ),
    )


def test_times_must_not_be_in_the_future_or_before_discovery(
    registered: Ledger, clock: FixedClock
) -> None:
    ledger = registered
    case = new_case(ledger)
    msg = refused(
        ledger,
        TimeError,
        lambda: ledger.record_supervision(
            case, by="jungang-lead", at=clock.now + timedelta(days=1)
        ),
    )
    assert "future" in msg
    msg = refused(
        ledger,
        TimeError,
        lambda: ledger.record_supervision(case, by="jungang-lead", at=kst(2022, 9, 1)),
    )
    assert "before the household was discovered" in msg
    household = ledger.case(case).household_id
    refused(
        ledger,
        TimeError,
        lambda: ledger.record_consultation(
            household, method="visit", outcome="intake", by=BY, at=kst(2022, 9, 1)
        ),
    )
    from datetime import datetime

    naive = datetime(2022, 10, 10, 9)
    msg = refused(ledger, InvalidInput, lambda: ledger.record_supervision(case, by=BY, at=naive))
    assert "at" in msg
    assert "timezone" in msg


def test_wrong_types_and_missing_fields_are_invalid_input(registered: Ledger) -> None:
    ledger = registered
    case = new_case(ledger)
    with pytest.raises(InvalidInput) as error:
        ledger.check_service(
            case, link_id=uuid4(), method="telepathy", progress=150, by=BY, at=kst(2022, 10, 9)
        )
    paths = {p for p, _ in error.value.problems}
    assert paths == {"method", "progress"}
    refused(
        ledger,
        InvalidInput,
        lambda: ledger.assess_needs(case, needs=[], by=BY, at=kst(2022, 10, 9)),
    )
    refused(
        ledger,
        InvalidInput,
        lambda: ledger.assess_needs(
            case, needs=[{"sub_domain": "health.nope", "urgency": 3}], by=BY, at=kst(2022, 10, 9)
        ),
    )
    refused(ledger, InvalidInput, lambda: ledger.case("not-a-uuid"))  # type: ignore[arg-type]
    refused(
        ledger,
        InvalidInput,
        lambda: ledger.register_organisation(
            "bad code!", name="x", sector="public", at=kst(2022, 1, 1)
        ),
    )


def test_ids_and_codes_cannot_be_registered_twice(registered: Ledger) -> None:
    ledger = registered
    refused(
        ledger,
        AlreadyExists,
        lambda: ledger.register_organisation(
            "jungang-dong", name="again", sector="public", at=kst(2022, 1, 4)
        ),
    )
    refused(
        ledger,
        AlreadyExists,
        lambda: ledger.register_worker(
            "jungang-officer", organisation="jungang-dong", role="dong_officer", at=kst(2022, 1, 4)
        ),
    )
    case = new_case(ledger)
    household = ledger.case(case).household_id
    refused(
        ledger,
        AlreadyExists,
        lambda: ledger.open_case(household, case_id=case, by=BY, at=kst(2022, 10, 10)),
    )


def test_referrals_are_a_small_state_machine_with_authority(registered: Ledger) -> None:
    ledger = registered
    case = new_case(ledger)
    at = kst(2022, 10, 11)
    household = ledger.case(case).household_id
    ledger.grant_consent(household, scopes=["provide"], recipients=["dongducheon-mhwc"],
                         purpose="정신건강 상담", by=BY, at=at)  # fmt: skip
    sent = ledger.refer(
        case, to="dongducheon-mhwc", domain="health", purpose="정신건강 상담", by=BY, at=at
    )
    referral = sent.referral_id  # type: ignore[attr-defined]
    msg = refused(
        ledger,
        AuthorityError,
        lambda: ledger.respond_to_referral(case, referral, accept=True, by="senior-worker", at=at),
    )
    # The policy refuses a partner the referral was not sent to before the case rules run.
    assert "partner-service" in msg
    assert "dongducheon-senior" in msg
    refused(
        ledger,
        RuleViolation,
        lambda: ledger.respond_to_referral(case, referral, accept=False, by="mhwc-worker", at=at),
    )
    refused(
        ledger,
        StageError,
        lambda: ledger.complete_referral(case, referral, by="mhwc-worker", at=at),
    )
    ledger.respond_to_referral(case, referral, accept=True, by="mhwc-worker", at=at)
    refused(
        ledger,
        StageError,
        lambda: ledger.respond_to_referral(case, referral, accept=True, by="mhwc-worker", at=at),
    )
    refused(
        ledger,
        AuthorityError,
        lambda: ledger.revoke_referral(case, referral, by="mhwc-worker", at=at),
    )
    ledger.complete_referral(case, referral, by="mhwc-worker", at=at)
    refused(ledger, StageError, lambda: ledger.revoke_referral(case, referral, by=BY, at=at))
    refused(
        ledger,
        RuleViolation,
        lambda: ledger.refer(case, to="jungang-dong", domain="health", by=BY, at=at),
    )


def test_transfer_moves_the_case_to_the_new_organisation(registered: Ledger) -> None:
    ledger = registered
    case = new_case(ledger)
    at = kst(2022, 10, 12)
    refused(
        ledger,
        RuleViolation,
        lambda: ledger.transfer_case(
            case, to_organisation="dongducheon-hwst", to_worker="jungang-lead", by=BY, at=at
        ),
    )
    ledger.transfer_case(
        case, to_organisation="dongducheon-hwst", to_worker="hwst-manager", by=BY, at=at
    )
    moved = ledger.case(case)
    assert (moved.organisation, moved.worker) == ("dongducheon-hwst", "hwst-manager")


def test_consent_is_per_member_and_can_be_withdrawn(registered: Ledger) -> None:
    ledger = registered
    household = ledger.discover_household(
        dong="중앙동", district="동두천시", channel="safety_net", by=BY, at=kst(2022, 5, 1),
        members=[{"member_no": 1}, {"member_no": 2}],
    )  # fmt: skip
    consent = ledger.grant_consent(
        household, member_no=2, scopes=["collect", "use", "provide"],
        recipients=["dongducheon-mhwc"], purpose="통합사례관리", expires_at=kst(2023, 5, 1),
        by=BY, at=kst(2022, 5, 2),
    )  # fmt: skip
    refused(
        ledger,
        RuleViolation,
        lambda: ledger.grant_consent(
            household, member_no=3, scopes=["use"], purpose="x", by=BY, at=kst(2022, 5, 2)
        ),
    )
    state = ledger.household(household)
    assert state.consent_covers("provide", "dongducheon-mhwc", kst(2022, 6, 1))  # type: ignore[arg-type]
    assert not state.consent_covers("provide", "dongducheon-senior", kst(2022, 6, 1))  # type: ignore[arg-type]
    assert not state.consent_covers("provide", "dongducheon-mhwc", kst(2023, 6, 1))  # type: ignore[arg-type]
    ledger.withdraw_consent(household, consent, by=BY, at=kst(2022, 7, 1))
    state = ledger.household(household)
    assert state.consent_covers("provide", "dongducheon-mhwc", kst(2022, 6, 1))  # type: ignore[arg-type]
    assert not state.consent_covers("provide", "dongducheon-mhwc", kst(2022, 7, 2))  # type: ignore[arg-type]
    refused(
        ledger,
        RuleViolation,
        lambda: ledger.withdraw_consent(household, consent, by=BY, at=kst(2022, 7, 3)),
    )
