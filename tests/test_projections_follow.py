"""Keeping read models outside the write path: followers, crashes, rebuilds, mixed writers.

These need two ledgers on one database, so they run on SQLite files and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

import caseledger
from caseledger import Ledger
from tests.conftest import MASTER_KEY, FixedClock
from tests.scenarios import every_event, kst, scenario_1


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A database two ledgers can open at once."""
    if request.param == "sqlite":
        yield str(tmp_path / "shared.db")
    else:
        yield request.getfixturevalue("pg_schema_url")


def _open(url: str, clock: FixedClock, projections: str = "inline") -> Ledger:
    return Ledger.open(url, clock=clock, master_key=MASTER_KEY, projections=projections)


def _open_a_case(ledger: Ledger, at: datetime) -> None:
    """Discover a household, consult it and open its case, all at ``at``."""
    household = ledger.discover_household(
        dong="중앙동", district="동두천시", channel="outreach_visit", by="jungang-officer", at=at
    )
    ledger.record_consultation(
        household, method="visit", outcome="intake", by="jungang-officer", at=at
    )
    ledger.open_case(household, by="jungang-officer", at=at)


def _rebuilt(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    ledger.rebuild()
    return ledger.projections.dump()


def test_a_follower_brings_the_read_models_up_to_date(shared_url: str, clock: FixedClock) -> None:
    with _open(shared_url, clock, "follow") as writer, _open(shared_url, clock, "follow") as f:
        s = scenario_1(writer)
        assert writer.caseload() == []  # nobody has applied the events yet
        assert f.project(batch_size=4, max_batches=2) == 8
        assert set(f.projections.positions().values()) == {8}
        assert f.project(batch_size=4) == len(writer) - 8
        assert [e.case_id for e in writer.caseload()] == [s.medical_case]
        assert f.project() == 0
        applied = f.projections.dump()
        assert _rebuilt(f) == applied


def test_a_follower_failing_mid_batch_resumes_without_applying_twice(
    shared_url: str, clock: FixedClock
) -> None:
    with _open(shared_url, clock, "follow") as writer, _open(shared_url, clock, "follow") as f:
        scenario_1(writer)
        f.project(batch_size=5, max_batches=1)
        kpis = next(p for p in f.projections._all if p.name == "kpis")
        calls = []

        def crash(tx: Any, items: Any) -> None:
            calls.append(len(items))
            if len(calls) == 2:
                raise RuntimeError("the follower's machine lost power")
            type(kpis).apply(kpis, tx, items)

        kpis.apply = crash  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="lost power"):
            f.project(batch_size=5)
        # The batch that failed left nothing behind, its tracking update included.
        assert set(f.projections.positions().values()) == {10}
        del kpis.apply
        f.project(batch_size=5)
        applied = f.projections.dump()
        assert _rebuilt(f) == applied


def test_a_follower_catching_up_reports_and_stops_batch_by_batch(
    shared_url: str, clock: FixedClock
) -> None:
    with _open(shared_url, clock, "follow") as writer, _open(shared_url, clock, "follow") as f:
        scenario_1(writer)
        total = len(writer)
        stop = threading.Event()
        seen: list[tuple[int, int]] = []
        waiting = False

        def progress(applied: int, position: int) -> None:
            seen.append((applied, position))
            if position >= 10 and not waiting:
                stop.set()

        # A backlog of 26 events in batches of 5: stopped after the second batch.
        assert f.projections.follow(poll=0, batch_size=5, stop=stop, on_progress=progress) == 10
        assert seen == [(5, 5), (5, 10)]
        assert set(f.projections.positions().values()) == {10}
        # Started again, it finishes the log and waits for more.
        stop.clear()
        seen.clear()
        waiting = True
        errors: list[BaseException] = []

        def follow() -> None:
            try:
                f.projections.follow(poll=0.01, batch_size=5, stop=stop, on_progress=progress)
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        waiter = threading.Thread(target=follow)
        waiter.start()
        deadline = time.monotonic() + 30
        while min(writer.projections.positions().values()) < total:
            assert time.monotonic() < deadline, "the follower did not catch up"
            assert errors == []
            time.sleep(0.01)
        stop.set()
        waiter.join()
        assert errors == []
        assert [n for n, _ in seen] == [5, 5, 5, 1]
        assert f.projections.dump() == _rebuilt(f)


_FOLLOWER = textwrap.dedent(
    """
    import sys, time
    from caseledger import Ledger
    from tests.conftest import MASTER_KEY
    with Ledger.open(sys.argv[1], master_key=MASTER_KEY, projections="follow") as ledger:
        # One event at a time, slowly, so the parent can kill it part of the way
        # through (follow() would catch up on the whole log in one round).
        while True:
            ledger.projections.project(batch_size=1, max_batches=1)
            time.sleep(0.05)
    """
)


def test_a_killed_follower_process_resumes_where_it_stopped(
    shared_url: str, clock: FixedClock
) -> None:
    with _open(shared_url, clock, "follow") as writer:
        scenario_1(writer)
        total = len(writer)
        env = {**os.environ, "PYTHONPATH": os.getcwd()}
        process = subprocess.Popen([sys.executable, "-c", _FOLLOWER, shared_url], env=env)
        try:
            deadline = time.monotonic() + 30
            while min(writer.projections.positions().values()) < 5:
                assert time.monotonic() < deadline, "the follower made no progress"
                assert process.poll() is None, "the follower died by itself"
                time.sleep(0.02)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        reached = min(writer.projections.positions().values())
        assert 5 <= reached < total
        assert writer.project() == total - reached
        applied = writer.projections.dump()
        assert _rebuilt(writer) == applied


def test_an_inline_writer_first_applies_what_follow_mode_writers_left(
    shared_url: str, clock: FixedClock
) -> None:
    with _open(shared_url, clock, "follow") as follow_writer:
        s = scenario_1(follow_writer)
        with _open(shared_url, clock) as inline:  # catches up on opening
            assert [e.case_id for e in inline.caseload()] == [s.medical_case]
            follow_writer.follow_up(s.resolved_case, by="jungang-officer", at=kst(2023, 3, 1))
            before = len(inline)
            inline.check_service(s.medical_case, link_id=s.medical_link, method="phone",
                                 progress=10, by="jungang-officer", at=kst(2023, 3, 2))  # fmt: skip
            assert set(inline.projections.positions().values()) == {before + 1}
            [closed] = inline.caseload(stage="closed")
            assert closed.next_due is None  # the follow-up was applied first
            applied = inline.projections.dump()
            assert _rebuilt(inline) == applied


def test_concurrent_writers_and_a_follower_agree_with_a_rebuild(
    shared_url: str, clock: FixedClock
) -> None:
    with _open(shared_url, clock, "follow") as setup:
        scenario_1(setup)
    stop = threading.Event()
    errors: list[BaseException] = []
    # Opened one after the other: opening creates tables, which is not what is tested.
    ledgers = [_open(shared_url, clock, "follow") for _ in range(3)]

    def write(ledger: Ledger, n: int) -> None:
        try:
            for i in range(15):
                at = kst(2023, 1, 2) + timedelta(hours=n * 100 + i)
                _open_a_case(ledger, at)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def follow(ledger: Ledger) -> None:
        try:
            ledger.follow(poll=0.005, batch_size=7, stop=stop)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    follower = threading.Thread(target=follow, args=(ledgers[0],))
    follower.start()
    writers = [threading.Thread(target=write, args=(ledgers[n], n)) for n in (1, 2)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    with _open(shared_url, clock, "follow") as check:
        deadline = time.monotonic() + 30
        while min(check.projections.positions().values()) < len(check):
            assert time.monotonic() < deadline, "the follower fell behind for good"
            time.sleep(0.02)
        stop.set()
        follower.join()
        for ledger in ledgers:
            ledger.close()
        assert errors == []
        assert len(check.caseload()) == 1 + 30
        applied = check.projections.dump()
        assert _rebuilt(check) == applied


def test_concurrent_inline_writers_on_one_case_agree_with_a_rebuild(
    shared_url: str, clock: FixedClock
) -> None:
    # Inline writers read a case's current read-model rows, the Merkle head and the end
    # of the access chain in their write transaction (on PostgreSQL sent ahead with the
    # insert); whoever commits second must have seen the first's rows.
    with _open(shared_url, clock) as setup:
        s = scenario_1(setup)
    errors: list[BaseException] = []
    ledgers = [_open(shared_url, clock) for _ in range(3)]

    def write(ledger: Ledger, n: int) -> None:
        try:
            for i in range(8):
                at = kst(2023, 3, 1) + timedelta(hours=n * 100 + i)
                caseledger.retry(
                    lambda at=at, i=i: ledger.check_service(
                        s.medical_case, link_id=s.medical_link, method="phone",
                        progress=10 * n + i, by="jungang-officer", at=at,
                    ),
                    attempts=100,
                )  # fmt: skip
                _open_a_case(ledger, at)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    writers = [threading.Thread(target=write, args=(ledgers[n], n)) for n in range(3)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    for ledger in ledgers:
        ledger.close()
    assert errors == []
    with _open(shared_url, clock) as check:
        assert set(check.projections.positions().values()) == {len(check)}
        assert len(check.caseload()) == 1 + 3 * 8
        [medical] = [e for e in check.caseload() if e.case_id == s.medical_case]
        assert medical.last_checked_at == kst(2023, 3, 1) + timedelta(hours=2 * 100 + 7)
        assert check.verify().ok
        check.access.verify()
        applied = check.projections.dump()
        assert _rebuilt(check) == applied


def test_every_event_class_survives_a_rebuild(ledger: Ledger) -> None:
    every_event(ledger)
    applied = ledger.projections.dump()
    assert ledger.rebuild() == len(ledger)
    assert ledger.projections.dump() == applied


def test_a_changed_projection_version_is_rebuilt_on_opening(
    shared_url: str, clock: FixedClock
) -> None:
    with _open(shared_url, clock) as ledger:
        scenario_1(ledger)
        expected = ledger.kpis("2023Q1").figures
        table = ledger.projections.schema.t("caseledger_projection")
        with ledger.store.transaction() as tx:
            tx.execute(f"UPDATE {table} SET version = 0 WHERE name = ?", ("kpis",))
            tx.execute(f"DELETE FROM {ledger.projections.schema.t('caseledger_kpi_fact')}")
        assert ledger.kpis("2023Q1").value("discoveries") == 0
    with _open(shared_url, clock) as reopened:
        assert reopened.kpis("2023Q1").figures == expected


def test_the_audit_trail_keeps_every_structural_field(ledger: Ledger) -> None:
    every_event(ledger)
    entries = ledger.audit_trail(limit=10_000).entries
    assert len(entries) == len(ledger)
    for entry, logged in zip(entries, ledger.events(), strict=True):
        assert entry.position == logged.position
        personal = {"personal", "members", "redaction"}
        rebuilt = entry.to_event().model_dump(exclude=personal)
        assert rebuilt == logged.event.model_dump(exclude=personal), entry.event


def test_a_follower_passes_positions_left_by_a_rolled_back_write(
    shared_url: str, clock: FixedClock
) -> None:
    from caseledger import ConcurrencyError
    from caseledger.codec import encode

    with _open(shared_url, clock, "follow") as writer, _open(shared_url, clock, "follow") as f:
        s = scenario_1(writer)
        f.project()
        linked = writer.history(s.medical_case)[-1]
        with pytest.raises(ConcurrencyError):
            writer.store.append([encode(linked)])  # the same version again: rolled back
        writer.check_service(s.medical_case, link_id=s.medical_link, method="phone",
                             progress=20, by="jungang-officer", at=kst(2023, 2, 20))  # fmt: skip
        last = writer.store.max_position()
        recorded = sum(1 for _ in writer.records())
        # PostgreSQL's sequence gave the rolled-back row a position nobody will fill.
        assert last == recorded + (1 if writer.store.dialect == "postgres" else 0)
        assert f.project() == 1
        assert set(f.projections.positions().values()) == {last}
        assert f.caseload()[0].last_checked_at == kst(2023, 2, 20)
        applied = f.projections.dump()
        assert _rebuilt(f) == applied
