"""Tampering with the stored rows behind the ledger's back is detected and located.

Each test records scenario 1 (26 events) and signs a checkpoint, then edits the
database directly: the SQLite file with ``sqlite3``, PostgreSQL with SQL in the test's
schema. Verification must find every change and say where and what it was.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path
from typing import Any, Protocol

import pytest

from caseledger import Ledger
from caseledger.integrity import generate_key
from caseledger.merkle_log import VerificationReport
from tests.conftest import MASTER_KEY, FixedClock
from tests.scenarios import scenario_1

SIGNER, VERIFIER = generate_key("example.org/caseledger/tamper")


class Rows(Protocol):
    """Direct access to the stored rows, by log position."""

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...
    def record(self, position: int) -> tuple[Any, Any, Any, bytes]: ...
    def put(self, position: int, record: tuple[Any, Any, Any, bytes]) -> None: ...
    def insert(self, record: tuple[Any, Any, Any, bytes]) -> int: ...
    def delete(self, position: int) -> None: ...


class SQLiteRows:
    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.path) as con:
            return con.execute(sql, params).fetchall()

    def record(self, position: int) -> tuple[Any, Any, Any, bytes]:
        sql = "SELECT originator_id, originator_version, topic, state FROM stored_events "
        return self.run(sql + "WHERE rowid = ?", (position,))[0]  # type: ignore[return-value]

    def put(self, position: int, record: tuple[Any, Any, Any, bytes]) -> None:
        self.run(
            "UPDATE stored_events SET originator_id = ?, originator_version = ?, topic = ?, "
            "state = ? WHERE rowid = ?",
            (*record, position),
        )

    def insert(self, record: tuple[Any, Any, Any, bytes]) -> int:
        self.run(
            "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
            "VALUES (?,?,?,?)",
            record,
        )
        return int(self.run("SELECT MAX(rowid) FROM stored_events")[0][0])

    def delete(self, position: int) -> None:
        self.run("DELETE FROM stored_events WHERE rowid = ?", (position,))


class PostgresRows:
    def __init__(self, url: str) -> None:
        match = re.search(r"[?&]schema=(\w+)", url)
        assert match
        self.schema = match.group(1)
        self.url = url[: match.start()]

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        sql = sql.replace("rowid", "notification_id").replace("?", "%s")
        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(f'SET search_path TO "{self.schema}"')
            cursor = con.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def record(self, position: int) -> tuple[Any, Any, Any, bytes]:
        sql = "SELECT originator_id, originator_version, topic, state FROM stored_events "
        return self.run(sql + "WHERE rowid = ?", (position,))[0]  # type: ignore[return-value]

    def put(self, position: int, record: tuple[Any, Any, Any, bytes]) -> None:
        self.run(
            "UPDATE stored_events SET originator_id = ?, originator_version = ?, topic = ?, "
            "state = ? WHERE rowid = ?",
            (*record, position),
        )

    def insert(self, record: tuple[Any, Any, Any, bytes]) -> int:
        sql = (
            "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
            "VALUES (?,?,?,?) RETURNING notification_id"
        )
        return int(self.run(sql, record)[0][0])

    def delete(self, position: int) -> None:
        self.run("DELETE FROM stored_events WHERE rowid = ?", (position,))


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "ledger.db")
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def setup(url: str, clock: FixedClock) -> tuple[str, str, Rows]:
    """A ledger with scenario 1, a checkpoint of it, and direct access to its rows."""
    with Ledger.open(url, clock=clock, master_key=MASTER_KEY) as ledger:
        scenario_1(ledger)
        note = ledger.checkpoint(SIGNER)
    rows: Rows = PostgresRows(url) if url.startswith("postgresql") else SQLiteRows(Path(url))
    return url, note, rows


def verify(url: str, note: str | None = None) -> VerificationReport:
    # No read models: catching them up would apply the tampered records first.
    with Ledger.open(url, master_key=MASTER_KEY, projections="off") as ledger:
        return ledger.verify([note] if note else [], VERIFIER)


def flip(state: bytes, at: int | None = None) -> bytes:
    raw = bytearray(state)
    raw[len(raw) // 2 if at is None else at] ^= 0x01
    return bytes(raw)


def test_an_untouched_ledger_verifies(setup: tuple[str, str, Rows]) -> None:
    url, note, _ = setup
    report = verify(url, note)
    assert report.ok, report.lines()
    assert report.summary().startswith("intact: 26 records")


def test_one_changed_byte_is_found(setup: tuple[str, str, Rows]) -> None:
    url, note, rows = setup
    aggregate, version, topic, state = rows.record(12)
    rows.put(12, (aggregate, version, topic, flip(state)))
    assert verify(url).by_kind() == {"modified": (12,)}
    report = verify(url, note)
    assert report.by_kind() == {"checkpoint": (), "modified": (12,)}
    assert "position 12: the stored record differs" in "\n".join(report.lines())


def test_a_changed_version_or_topic_is_found(setup: tuple[str, str, Rows]) -> None:
    url, note, rows = setup
    aggregate, version, topic, state = rows.record(3)
    rows.put(3, (aggregate, version + 100, topic, state))
    aggregate, version, topic, state = rows.record(4)
    rows.put(4, (aggregate, version, topic + "X", state))
    assert verify(url, note).by_kind() == {"checkpoint": (), "modified": (3, 4)}


def test_a_deleted_row_is_found(setup: tuple[str, str, Rows]) -> None:
    url, note, rows = setup
    rows.delete(10)
    assert verify(url).by_kind() == {"deleted": (10,)}
    report = verify(url, note)
    assert report.by_kind() == {"checkpoint": (), "deleted": (10,)}
    assert "1 more record(s) than the log" in "\n".join(report.lines())


def test_a_forged_row_is_found(setup: tuple[str, str, Rows]) -> None:
    url, note, rows = setup
    _, _, topic, state = rows.record(5)
    position = rows.insert((uuid.uuid4().hex, 1, topic, flip(state)))
    assert position == 27
    # Appended after the checkpoint, it matches it: only the leaf cache knows.
    report = verify(url, note)
    assert report.by_kind() == {"inserted": (27,)}
    assert report.checkpoints[0].matches
    assert "never recorded through the ledger" in report.findings[0].message


def test_two_swapped_rows_are_found(setup: tuple[str, str, Rows]) -> None:
    url, note, rows = setup
    first, second = rows.record(8), rows.record(15)
    rows.put(8, (uuid.uuid4().hex, 1, "placeholder", b""))  # the key must stay unique
    rows.put(15, first)
    rows.put(8, second)
    assert verify(url).by_kind() == {"reordered": (8, 15)}
    report = verify(url, note)
    assert report.by_kind() == {"checkpoint": (), "reordered": (8, 15)}
    assert "positions 8 and 15 were swapped" in report.findings[0].message


def test_a_cut_off_tail_is_found(setup: tuple[str, str, Rows]) -> None:
    url, note, rows = setup
    for position in (24, 25, 26):
        rows.delete(position)
    assert verify(url).by_kind() == {"truncated": (24, 25, 26)}
    report = verify(url, note)
    assert report.by_kind() == {"checkpoint": (), "truncated": (24, 25, 26)}
    assert "3 more record(s) than the log" in "\n".join(report.lines())


def test_several_changes_are_each_found(setup: tuple[str, str, Rows]) -> None:
    url, note, rows = setup
    aggregate, version, topic, state = rows.record(2)
    rows.put(2, (aggregate, version, topic, flip(state, 0)))
    rows.delete(6)
    rows.delete(7)
    rows.delete(26)
    assert verify(url, note).by_kind() == {
        "checkpoint": (),
        "deleted": (6, 7),
        "modified": (2,),
        "truncated": (26,),
    }


def test_damage_to_the_leaf_cache_alone_is_blamed_on_the_cache(
    setup: tuple[str, str, Rows],
) -> None:
    url, note, rows = setup
    rows.run("UPDATE caseledger_leaves SET leaf_hash = ? WHERE position = 9", (b"\x00" * 32,))
    # Without a checkpoint the record and its cached hash simply disagree ...
    assert verify(url).by_kind() == {"cache": (), "modified": (9,)}
    # ... with one, the signed root shows the record is the one recorded.
    report = verify(url, note)
    assert report.by_kind() == {"cache": (9,)}
    assert report.checkpoints[0].matches


def test_a_rewritten_leaf_cache_does_not_hide_a_change_from_a_checkpoint(
    setup: tuple[str, str, Rows],
) -> None:
    url, note, rows = setup
    aggregate, version, topic, state = rows.record(20)
    rows.put(20, (aggregate, version, topic, flip(state)))
    with Ledger.open(url, master_key=MASTER_KEY, projections="off") as ledger:
        ledger.merkle.rebuild()  # the operator makes the cache agree with the records
    assert verify(url).ok
    report = verify(url, note)
    assert report.by_kind() == {"checkpoint": ()}
    assert "the leaf cache was rewritten as well" in report.findings[0].message


def test_a_row_that_cannot_be_a_leaf_is_reported_not_crashed_on(
    setup: tuple[str, str, Rows],
) -> None:
    url, note, rows = setup
    if "postgresql" in url:
        rows.run("UPDATE stored_events SET originator_version = 0 WHERE rowid = 11")
        rows.run("UPDATE stored_events SET state = NULL WHERE rowid = 13")
        first = "its version is not a positive whole number"
        second = "its state is not bytes"
    else:
        # SQLite's || makes text; these bytes are not even valid UTF-8.
        rows.run("UPDATE stored_events SET state = state || x'ff' WHERE rowid = 11")
        rows.run("UPDATE stored_events SET originator_id = upper(originator_id) WHERE rowid = 13")
        first = "its state is not bytes"
        second = "its aggregate id is not a canonical UUID"
    report = verify(url, note)
    assert report.by_kind() == {"checkpoint": (), "modified": (11, 13)}
    text = "\n".join(report.lines())
    assert f"position 11: the stored record is malformed: {first}" in text
    assert f"position 13: the stored record is malformed: {second}" in text
