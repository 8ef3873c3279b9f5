"""Seed scenario 1, Dongducheon Jungang-dong, end to end through the public API."""

from __future__ import annotations

import pytest

from caseledger import (
    CaseClosedError,
    ClosureReason,
    Ledger,
    Sector,
    Stage,
    Track,
)
from caseledger.events import CaseClosed, ServiceLinked
from tests.scenarios import kst, scenario_1


def test_after_the_february_meeting_one_case_is_open_and_one_closed(ledger: Ledger) -> None:
    s = scenario_1(ledger)

    resolved = ledger.case(s.resolved_case)
    assert resolved.stage is Stage.CLOSED
    assert resolved.closure_reason is ClosureReason.GOAL_ACHIEVED
    closing = ledger.history(s.resolved_case)[-1]
    assert isinstance(closing, CaseClosed)
    assert closing.meeting_id == s.meeting

    medical = ledger.case(s.medical_case)
    assert medical.stage is Stage.IN_SERVICE
    assert medical.track is Track.CASE_MANAGED
    assert [link.sector for link in medical.active_links] == [Sector.PUBLIC]
    link_event = ledger.history(s.medical_case)[-1]
    assert isinstance(link_event, ServiceLinked)
    assert link_event.meeting_id == s.meeting
    assert str(link_event.amount) == "3000000"


def test_the_closed_case_refuses_further_service(ledger: Ledger) -> None:
    s = scenario_1(ledger)
    before = len(ledger)
    with pytest.raises(CaseClosedError, match="closed"):
        ledger.link_service(
            s.resolved_case, service="x", provider="jungang-dong", domain="health",
            by="jungang-officer", at=kst(2023, 2, 11),
        )  # fmt: skip
    assert len(ledger) == before


def test_the_whole_log_streams_in_order(ledger: Ledger) -> None:
    scenario_1(ledger)
    positions = [entry.position for entry in ledger.events()]
    assert positions == list(range(1, len(ledger) + 1))
    assert len(list(ledger.events(since=len(ledger) - 2))) == 2
