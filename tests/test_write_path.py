"""The write path's shortcuts keep their guarantees.

A ledger caches aggregate state and checks it against the log once per unit of work;
records another writer appended in between are seen. Data keys are looked up in bulk
for a batch; copies handed out stay independent; the stored bytes do not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

import caseledger.application
from caseledger import Ledger, PersonalData, RuleViolation
from caseledger.codec import decode, encode, pack
from caseledger.events import Event
from caseledger.store import StoredEvent, Tx, open_store
from tests.conftest import MASTER_KEY, FixedClock
from tests.scenarios import kst, register_dongducheon

BY = "jungang-officer"
LEAD = "jungang-lead"


def open_case(ledger: Ledger, day: int = 1) -> UUID:
    household = ledger.discover_household(
        dong="중앙동", district="동두천시", channel="outreach_visit", by=BY, at=kst(2022, 4, day)
    )
    ledger.record_consultation(
        household, method="visit", outcome="intake", by=BY, at=kst(2022, 4, day)
    )
    return ledger.open_case(household, by=BY, at=kst(2022, 4, day))


def test_a_ledger_sees_what_another_writer_recorded_since_it_cached_a_case(
    ledger_url: str, clock: FixedClock
) -> None:
    if ledger_url == ":memory:":
        pytest.skip("an in-memory ledger has one writer by construction")
    path = ledger_url
    with Ledger.open(path, clock=clock, master_key=MASTER_KEY) as a:
        register_dongducheon(a)
        case = open_case(a)
        assert a.case(case).version == 1  # cached at version 1
        with Ledger.open(path, clock=clock, master_key=MASTER_KEY) as b:
            b.record_supervision(case, by=LEAD, at=kst(2022, 4, 2))
        assert a.case(case).version == 2
        # Deciding on the fresh state: no concurrency error, the next version is 3.
        event = a.record_supervision(case, by=LEAD, at=kst(2022, 4, 3))
        assert event.originator_version == 3
        with a.batch():
            a.record_supervision(case, by=LEAD, at=kst(2022, 4, 4))
        assert [e.originator_version for e in a.history(case)] == [1, 2, 3, 4]


def test_a_ledger_far_behind_another_writer_drops_its_cached_states(
    ledger_url: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    if ledger_url == ":memory:":
        pytest.skip("an in-memory ledger has one writer by construction")
    monkeypatch.setattr(caseledger.application, "_CATCH_UP_LIMIT", 3)
    path = ledger_url
    with Ledger.open(path, clock=clock, master_key=MASTER_KEY) as a:
        register_dongducheon(a)
        cases = [open_case(a, day) for day in (1, 2)]
        assert [a.case(c).version for c in cases] == [1, 1]
        with Ledger.open(path, clock=clock, master_key=MASTER_KEY) as b:
            for day in (3, 4, 5):
                b.record_supervision(cases[0], by=LEAD, at=kst(2022, 4, day))
            b.record_supervision(cases[1], by=LEAD, at=kst(2022, 4, 6))
        assert [a.case(c).version for c in cases] == [4, 2]
        a.record_supervision(cases[1], by=LEAD, at=kst(2022, 4, 7))
        assert a.case(cases[1]).version == 3


def test_a_copy_of_a_case_is_independent_of_the_ledger(ledger: Ledger) -> None:
    register_dongducheon(ledger)
    case_id = open_case(ledger)
    copy = ledger.case(case_id)
    copy.links[UUID(int=1)] = None  # type: ignore[assignment]
    copy.stage = None  # type: ignore[assignment]
    again = ledger.case(case_id)
    assert UUID(int=1) not in again.links
    assert again.stage is not None
    assert again.__dict__ == ledger.case(case_id).__dict__


def test_a_batch_seals_for_many_households_and_refuses_an_erased_one(
    tmp_path: Path, clock: FixedClock
) -> None:
    with Ledger.open(tmp_path / "ledger.db", clock=clock, master_key=MASTER_KEY) as ledger:
        register_dongducheon(ledger)
        known = ledger.discover_household(
            dong="중앙동",
            district="동두천시",
            channel="outreach_visit",
            by=BY,
            at=kst(2022, 4, 1),
            personal={"name": "가상인물-1"},
        )
        with ledger.batch():
            households = [
                ledger.discover_household(
                    dong="중앙동",
                    district="동두천시",
                    channel="outreach_visit",
                    by=BY,
                    at=kst(2022, 4, 2),
                    personal={"name": f"가상인물-{i}"},
                )
                for i in range(2, 5)
            ]
            ledger.record_consultation(
                known,
                method="visit",
                outcome="information_only",
                notes="메모",
                by=BY,
                at=kst(2022, 4, 2),
            )
        reader = ledger.reader(BY, terminal="t")
        for i, household in enumerate([known, *households], start=1):
            first = reader.household_history(household)[0]
            assert first.personal == PersonalData(name=f"가상인물-{i}")  # type: ignore[attr-defined]
        ledger.erase_household(known, reason="요청", by=LEAD, at=kst(2022, 4, 3))
        before = len(ledger)
        with pytest.raises(RuleViolation, match="erased"), ledger.batch():
            ledger.discover_household(
                dong="중앙동",
                district="동두천시",
                channel="outreach_visit",
                by=BY,
                at=kst(2022, 4, 3),
                personal={"name": "가상인물-5"},
            )
            ledger.record_consultation(
                known,
                method="visit",
                outcome="information_only",
                notes="메모",
                by=BY,
                at=kst(2022, 4, 3),
            )
        assert len(ledger) == before


def test_encoding_gives_the_bytes_of_the_model_dump(ledger: Ledger) -> None:
    register_dongducheon(ledger)
    case = open_case(ledger)
    ledger.record_supervision(case, by=LEAD, at=kst(2022, 4, 2))
    records = list(ledger.records())
    assert len(records) > 10
    for record in records:
        event: Event = decode(record)
        again = encode(event)
        assert again.state == record.state
        if event.redaction is None:
            fields = event.model_dump(exclude={"originator_id", "originator_version"})
            assert again.state == pack({"_v": type(event).class_version, **fields})


def test_the_store_lists_what_was_appended_after_a_position(ledger: Ledger) -> None:
    store = ledger.store
    register_dongducheon(ledger)
    start = len(ledger)
    case = open_case(ledger)
    changes = store.changes_after(start, 10)
    assert changes is not None
    assert [p for p, _, _ in changes] == list(range(start + 1, len(ledger) + 1))
    assert (len(ledger), case, 1) == changes[-1]
    assert store.changes_after(start, 1) == changes[:1]
    assert store.changes_after(len(ledger), 10) == []
    assert store.has_records(case)
    assert not store.has_records(UUID(int=12345))


class _Counter:
    """A write hook that reads a row ahead (prefetch) and after the insert."""

    READ = "SELECT n FROM prefetch_counter WHERE id = ?"

    def __init__(self, *, write_first: bool) -> None:
        self.write_first = write_first
        self.seen: list[int] = []

    def create_statements(self, dialect: str) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS prefetch_counter (id INTEGER PRIMARY KEY, n INTEGER)",
        ]

    def prefetch(self, tx: Tx, records: Sequence[StoredEvent], context: dict[str, Any]) -> None:
        tx.prefetch(self.READ, (1,))

    def after_insert(
        self,
        tx: Tx,
        records: Sequence[StoredEvent],
        positions: Sequence[int],
        context: dict[str, Any],
    ) -> None:
        if self.write_first:
            tx.execute("UPDATE prefetch_counter SET n = n + 1 WHERE id = ?", (1,))
        tx.execute(self.READ, (1,))
        row = tx.fetchone()
        assert row is not None
        self.seen.append(int(row[0]))
        if not self.write_first:
            tx.execute("UPDATE prefetch_counter SET n = n + 1 WHERE id = ?", (1,))


def _record(version: int) -> StoredEvent:
    return StoredEvent(UUID(int=7), version, "test.topic", b"state")


@pytest.mark.parametrize("write_first", [False, True], ids=["read-then-write", "write-then-read"])
def test_a_hook_reading_ahead_sees_what_its_transaction_wrote_before_it_reads(
    ledger_url: str, write_first: bool
) -> None:
    # On PostgreSQL the read is sent with the insert; a write to the same table between
    # that and the hook's read makes the hook's read run again (and see the write).
    store = open_store(ledger_url)
    try:
        hook = _Counter(write_first=write_first)
        store.add_hook(hook)
        with store.transaction() as tx:
            tx.execute("INSERT INTO prefetch_counter (id, n) VALUES (?, ?)", (1, 10))
        for version in (1, 2, 3):
            store.append([_record(version)])
        expected = [11, 12, 13] if write_first else [10, 11, 12]
        assert hook.seen == expected
        assert store.query("SELECT n FROM prefetch_counter") == [(13,)]
    finally:
        store.close()


class _ArrayReader(_Counter):
    """Reads with an array parameter (unhashable) while a read sent ahead is pending."""

    def after_insert(
        self,
        tx: Tx,
        records: Sequence[StoredEvent],
        positions: Sequence[int],
        context: dict[str, Any],
    ) -> None:
        tx.execute("SELECT n FROM prefetch_counter WHERE id = ANY(?)", ([1, 2],))
        row = tx.fetchone()
        assert row is not None
        self.seen.append(int(row[0]))
        super().after_insert(tx, records, positions, context)


def test_a_hook_may_read_with_an_array_parameter_while_a_read_is_sent_ahead(
    pg_schema_url: str,
) -> None:
    store = open_store(pg_schema_url)
    try:
        hook = _ArrayReader(write_first=False)
        store.add_hook(hook)
        with store.transaction() as tx:
            tx.execute("INSERT INTO prefetch_counter (id, n) VALUES (?, ?)", (1, 5))
        store.append([_record(1)])
        store.append([_record(2)])
        assert hook.seen == [5, 5, 6, 6]
    finally:
        store.close()
