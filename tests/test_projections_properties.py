"""Properties of the read models over random valid histories (``tests/strategies.py``).

* rebuilding from scratch gives exactly the rows incremental application gave;
* a follower applying the log in arbitrary batches ends with the same rows;
* the indexed point-in-time queries agree with folding the history directly, and the
  current caseload agrees with the case aggregates;
* refused commands write nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caseledger import CaseNotFound, Ledger
from caseledger.case import Case
from caseledger.codec import decode
from tests.conftest import FixedClock
from tests.scenarios import KST
from tests.strategies import START, Runner, Step, programs

_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_FAR = datetime(2100, 1, 1, tzinfo=KST)


def _play(program: list[Step], projections: str = "inline") -> tuple[Ledger, FixedClock]:
    clock = FixedClock(START)
    ledger = Ledger.open(":memory:", clock=clock, projections=projections)
    played = Runner(ledger, clock).run(program)
    assert played.errors == []
    return ledger, clock


@_SETTINGS
@given(program=programs(), batch_size=st.integers(1, 60))
def test_rebuilding_gives_exactly_the_incremental_read_models(
    program: list[Step], batch_size: int
) -> None:
    ledger, _ = _play(program)
    with ledger:
        incremental = ledger.projections.dump()
        assert ledger.projections.rebuild(batch_size=batch_size) == len(ledger)
        assert ledger.projections.dump() == incremental
        assert set(ledger.projections.positions().values()) == {len(ledger)}


@_SETTINGS
@given(
    program=programs(max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=4),
    batch_size=st.integers(1, 9),
)
def test_a_follower_ends_with_the_inline_read_models(
    program: list[Step], cuts: list[int], batch_size: int
) -> None:
    inline, _ = _play(program)
    with inline:
        expected = inline.projections.dump()
    clock = FixedClock(START)
    with Ledger.open(":memory:", clock=clock, projections="follow") as followed:
        runner = Runner(followed, clock)
        start = 0
        for cut in sorted(set(cuts)):
            runner.run(program[start:cut])
            start = max(start, cut)
            followed.project(batch_size=batch_size, max_batches=2)
        runner.run(program[start:])
        assert runner.played.errors == []
        followed.project(batch_size=batch_size)
        assert followed.projections.dump() == expected


def _replayed(ledger: Ledger, case_id: object, recorded_by: datetime) -> Case | None:
    records = ledger.store.read_aggregate(case_id)  # type: ignore[arg-type]
    events = [decode(r) for r in records]
    known = [e for e in events if e.recorded_at <= recorded_by]
    return Case.replay(events[0].originator_id, known) if known else None


@_SETTINGS
@given(program=programs(min_size=5), days=st.lists(st.integers(-30, 400), min_size=1, max_size=3))
def test_point_in_time_queries_agree_with_folding_the_history(
    program: list[Step], days: list[int]
) -> None:
    ledger, clock = _play(program)
    with ledger:
        # Now: the caseload agrees with the case aggregates.
        for entry in ledger.caseload(include_closed=True):
            case = ledger.case(entry.case_id)
            assert (entry.stage, entry.worker, entry.organisation) == (
                case.stage,
                case.worker,
                case.organisation,
            )
            assert (entry.track, entry.level, entry.dong) == (case.track, case.level, case.dong)
        for offset in days:
            moment = (START + timedelta(days=offset)).date()
            # Occurred axis: the interval tables against a direct fold of the transitions.
            indexed = ledger.caseload(as_of=moment, include_closed=True)
            folded = ledger.caseload(as_of=moment, as_of_recorded=_FAR, include_closed=True)
            assert indexed == folded
            # Recorded axis: against replaying each case's events recorded by then.
            cut = datetime.combine(moment + timedelta(days=1), datetime.min.time(), KST)
            cut -= timedelta(microseconds=1)
            known = {e.case_id: e for e in ledger.caseload(as_of_recorded=moment,
                                                           include_closed=True)}  # fmt: skip
            for entry in ledger.caseload(include_closed=True):
                replayed = _replayed(ledger, entry.case_id, cut)
                if replayed is None:
                    assert entry.case_id not in known
                    continue
                assert known[entry.case_id].stage == replayed.stage
                assert known[entry.case_id].worker == replayed.worker
        assert clock.now >= START


def test_a_case_not_yet_opened_has_no_state(memory_ledger: Ledger, clock: FixedClock) -> None:
    clock.now = START
    runner = Runner(memory_ledger, clock)
    runner.run([Step("discover", 0, 0, 0, 0, 0, False)])
    [case] = runner.cases
    assert memory_ledger.case_state(case).stage.value == "opened"
    with pytest.raises(CaseNotFound, match="does not exist"):
        memory_ledger.case_state(case, as_of=date(2021, 1, 1))
