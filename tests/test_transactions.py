"""Batches, idempotency keys, concurrent writers and reading old stored versions."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4

import pytest

import caseledger
from caseledger import (
    ConcurrencyError,
    IdempotencyConflict,
    Ledger,
    Stage,
    StageError,
)
from caseledger.codec import pack
from caseledger.events import CaseOpened, topic_of
from caseledger.store import StoredEvent
from tests.conftest import FixedClock
from tests.scenarios import kst, register_dongducheon

BY = "jungang-officer"


def discover(ledger: Ledger, day: int = 1, **kwargs: object) -> UUID:
    return ledger.discover_household(
        dong="중앙동",
        district="동두천시",
        channel="outreach_visit",
        by=BY,
        at=kst(2022, 4, day),
        **kwargs,
    )  # type: ignore[arg-type]


def test_a_batch_is_one_transaction_and_sees_its_own_commands(ledger: Ledger) -> None:
    register_dongducheon(ledger)
    before = len(ledger)
    with ledger.batch():
        household = discover(ledger)
        ledger.record_consultation(
            household, method="visit", outcome="intake", by=BY, at=kst(2022, 4, 1)
        )
        case = ledger.open_case(household, by=BY, at=kst(2022, 4, 1))
        assert ledger.case(case).stage is Stage.OPENED
        assert len(ledger) == before  # nothing is written until the block ends
    assert len(ledger) == before + 3
    assert [e.originator_version for e in ledger.history(case)] == [1]


def test_a_failing_batch_writes_nothing(ledger: Ledger) -> None:
    register_dongducheon(ledger)
    before = len(ledger)
    with pytest.raises(StageError), ledger.batch():
        household = discover(ledger)
        ledger.open_case(household, by=BY, at=kst(2022, 4, 1))  # no intake consultation yet
    assert len(ledger) == before
    with pytest.raises(RuntimeError), ledger.batch():
        discover(ledger)
        raise RuntimeError("the caller's own failure")
    assert len(ledger) == before
    # The ledger's cache did not keep the discarded household either.
    assert discover(ledger) is not None
    assert len(ledger) == before + 1


def test_an_idempotency_key_records_once_and_returns_the_original_result(ledger: Ledger) -> None:
    register_dongducheon(ledger)
    first = discover(ledger, idempotency_key="import-42")
    size = len(ledger)
    again = discover(ledger, idempotency_key="import-42")
    assert again == first
    assert len(ledger) == size
    household = first
    ledger.record_consultation(
        household, method="visit", outcome="intake", by=BY, at=kst(2022, 4, 2)
    )
    case = ledger.open_case(household, by=BY, at=kst(2022, 4, 2))
    event = ledger.record_supervision(
        case, by="jungang-lead", at=kst(2022, 4, 3), idempotency_key="sv-1"
    )
    size = len(ledger)
    assert (
        ledger.record_supervision(
            case, by="jungang-lead", at=kst(2022, 4, 3), idempotency_key="sv-1"
        )
        == event
    )
    assert len(ledger) == size
    with pytest.raises(IdempotencyConflict, match="sv-1"):
        ledger.record_supervision(
            case, by="jungang-lead", at=kst(2022, 4, 4), idempotency_key="sv-1"
        )
    assert len(ledger) == size


def test_an_idempotency_key_holds_across_reopening_the_ledger(
    tmp_path: Path, clock: FixedClock
) -> None:
    path = tmp_path / "ledger.db"
    with Ledger.open(path, clock=clock) as ledger:
        register_dongducheon(ledger)
        first = discover(ledger, idempotency_key="k")
        size = len(ledger)
    with Ledger.open(path, clock=clock) as ledger:
        assert discover(ledger, idempotency_key="k") == first
        assert len(ledger) == size


def test_two_writers_on_one_case_conflict_and_retry_loses_nothing(
    ledger_url: str, clock: FixedClock
) -> None:
    with Ledger.open(ledger_url, clock=clock) as a:
        register_dongducheon(a)
        household = discover(a)
        a.record_consultation(
            household, method="visit", outcome="intake", by=BY, at=kst(2022, 4, 1)
        )
        case = a.open_case(household, by=BY, at=kst(2022, 4, 1))
        if ledger_url == ":memory:":
            pytest.skip("an in-memory ledger has one writer by construction")
        with Ledger.open(ledger_url, clock=clock) as b:
            b.case(case)  # b has the case at version 1 in its cache
            with pytest.raises(ConcurrencyError), a.batch():
                a.record_supervision(case, by="jungang-lead", at=kst(2022, 4, 2))
                b.record_supervision(case, by="jungang-lead", at=kst(2022, 4, 2))  # wins the race
            assert [e.originator_version for e in a.history(case)] == [1, 2]
            caseledger.retry(
                lambda: a.record_supervision(case, by="jungang-lead", at=kst(2022, 4, 2))
            )
            assert [e.originator_version for e in b.history(case)] == [1, 2, 3]


def test_retry_gives_up_after_the_given_attempts() -> None:
    calls = []

    def always_conflicts() -> None:
        calls.append(1)
        raise ConcurrencyError("conflict")

    with pytest.raises(ConcurrencyError):
        caseledger.retry(always_conflicts, attempts=3, backoff=0)
    assert len(calls) == 3


def test_a_hand_written_version_1_row_is_upcast_on_read(ledger: Ledger) -> None:
    """The first draft of CaseOpened called the worker 'assigned_worker' and had no district."""
    register_dongducheon(ledger)
    household = discover(ledger)
    case_id = uuid4()
    state = pack(
        {
            "_v": 1,
            "occurred_at": kst(2022, 4, 5),
            "recorded_at": kst(2022, 4, 5, 11),
            "actor": BY,
            "organisation": "jungang-dong",
            "policy_version": "default-2026.1",
            "taxonomy_version": "2026.1",
            "household_id": household,
            "dong": "중앙동",
            "case_organisation": "jungang-dong",
            "assigned_worker": BY,
        }
    )
    ledger.store.append([StoredEvent(case_id, 1, topic_of(CaseOpened), state)])
    opened = ledger.history(case_id)[0]
    assert isinstance(opened, CaseOpened)
    assert (opened.worker, opened.district, opened.discovered_at) == (BY, "", kst(2022, 4, 5))
    assert ledger.case(case_id).stage is Stage.OPENED
    # The case goes on from the upcast state.
    ledger.record_supervision(case_id, by="jungang-lead", at=kst(2022, 4, 6))
    assert ledger.case(case_id).version == 2
