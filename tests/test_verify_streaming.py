"""Verification reads the log in pages: the report does not depend on the page size.

The records and the leaf cache are read side by side a page at a time, and merged
record by record from the first page where they differ. Whatever the page size, the
same tampering gives the same report; and the store streams a query's rows in pages.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from caseledger import Ledger
from caseledger.merkle_log import VerificationReport
from tests import test_tamper
from tests.conftest import MASTER_KEY, FixedClock
from tests.scenarios import scenario_1, scenario_3
from tests.test_tamper import SIGNER, VERIFIER, Rows, flip

PAGE_SIZES = (1, 2, 5, 7, 5000)

# The tamper tests' fixtures: a ledger (SQLite and PostgreSQL) with scenario 1, its
# checkpoint and direct access to its rows.
url = test_tamper.url
setup = test_tamper.setup


def reports(url: str, note: str) -> list[VerificationReport]:
    with Ledger.open(url, master_key=MASTER_KEY, projections="off") as ledger:
        return [ledger.merkle.verify([note], VERIFIER, batch_size=n) for n in PAGE_SIZES]


def same(found: list[VerificationReport]) -> VerificationReport:
    first = found[0]
    for report in found[1:]:
        assert report.findings == first.findings
        assert report.checkpoints == first.checkpoints
        assert (report.records, report.last_position, report.root, report.omitted) == (
            first.records, first.last_position, first.root, first.omitted,
        )  # fmt: skip
    return first


def change_state(rows: Rows, position: int) -> None:
    record = rows.record(position)
    rows.put(position, (*record[:3], flip(bytes(record[3]))))


def delete(rows: Rows, position: int) -> None:
    rows.delete(position)


def zero_version(rows: Rows, position: int) -> None:
    rows.run(f"UPDATE stored_events SET originator_version = 0 WHERE rowid = {position}")


def damage_cache(rows: Rows, position: int) -> None:
    rows.run(
        "UPDATE caseledger_leaves SET leaf_hash = ? WHERE position = ?", (b"\0" * 32, position)
    )


def drop_leaf(rows: Rows, position: int) -> None:
    rows.run("DELETE FROM caseledger_leaves WHERE position = ?", (position,))


def cut_tail(rows: Rows, position: int) -> None:
    rows.run(f"DELETE FROM stored_events WHERE rowid >= {position}")


TAMPERING: dict[str, tuple[Callable[[Rows, int], None], set[str]]] = {
    "modified": (change_state, {"modified", "checkpoint"}),
    "deleted": (delete, {"deleted", "truncated", "checkpoint"}),
    "version 0": (zero_version, {"modified", "checkpoint"}),
    "cache damaged": (damage_cache, {"cache"}),
    "leaf dropped": (drop_leaf, {"cache"}),
    "tail cut": (cut_tail, {"truncated", "checkpoint"}),
}


def test_an_untouched_ledger_verifies_with_any_page_size(setup: tuple[str, str, Rows]) -> None:
    url, note, _ = setup
    report = same(reports(url, note))
    assert report.ok
    assert report.records == 26


@pytest.mark.parametrize("position", [1, 8, 14, 26])
@pytest.mark.parametrize("how", list(TAMPERING))
def test_tampering_gives_one_report_whatever_the_page_size(
    setup: tuple[str, str, Rows], how: str, position: int
) -> None:
    url, note, rows = setup
    tamper, kinds = TAMPERING[how]
    tamper(rows, position)
    report = same(reports(url, note))
    assert not report.ok
    assert set(report.by_kind()) <= kinds
    assert report.by_kind().keys() & (kinds - {"checkpoint"})


def test_verification_reports_its_progress_once_a_page(setup: tuple[str, str, Rows]) -> None:
    url, note, rows = setup
    with Ledger.open(url, master_key=MASTER_KEY, projections="off") as ledger:
        seen: list[int] = []
        report = ledger.merkle.verify([note], VERIFIER, batch_size=10, on_progress=seen.append)
        assert report.ok
        assert seen == [10, 20, 26]
        seen.clear()
        assert ledger.verify(on_progress=seen.append).ok
        assert seen == [26]
    # From the page that differs on, the records and the cache are merged: still a page
    # at a time.
    damage_cache(rows, 14)
    with Ledger.open(url, master_key=MASTER_KEY, projections="off") as ledger:
        seen = []
        assert not ledger.merkle.verify(batch_size=10, on_progress=seen.append).ok
        assert seen == [10, 20, 26]


def test_records_added_after_a_checkpoint_verify_with_any_page_size(
    setup: tuple[str, str, Rows], clock: FixedClock
) -> None:
    url, note, _ = setup
    with Ledger.open(url, clock=clock, master_key=MASTER_KEY) as ledger:
        scenario_3(ledger)
        later = ledger.checkpoint(SIGNER)
    with Ledger.open(url, master_key=MASTER_KEY, projections="off") as ledger:
        found = [ledger.merkle.verify([note, later], VERIFIER, batch_size=n) for n in PAGE_SIZES]
    report = same(found)
    assert report.ok
    assert [c.consistent for c in report.checkpoints] == [None, True]


def test_the_store_streams_a_query_in_pages(url: str, clock: FixedClock) -> None:
    with Ledger.open(url, clock=clock, master_key=MASTER_KEY) as ledger:
        scenario_1(ledger)
        with ledger.store.transaction(commit=False) as tx:
            sql = "SELECT leaf_index, position FROM caseledger_leaves ORDER BY leaf_index"
            pages = list(tx.stream(sql, size=10))
            tx.execute("SELECT COUNT(*) FROM caseledger_leaves")
            count = tx.fetchone()
    assert [len(page) for page in pages] == [10, 10, 6]
    rows = [row for page in pages for row in page]
    assert all(type(row) is tuple for row in rows)
    assert [row[0] for row in rows] == list(range(26))
    assert count == (26,)
