"""Schema evolution: ledgers written by earlier releases open, upcast, rebuild and verify.

``tests/fixtures/ledger-VERSION.sqlite`` is a small ledger written by release VERSION
(with ``tests/fixtures/make_ledger_fixture.py``), its master key beside it and, in
``ledger-VERSION.json``, what it showed then. Every later version must open a copy,
decode (and so upcast) every stored event, rebuild the read models to the same figures,
verify the Merkle log against the signed checkpoint taken then, and still open the
sealed personal data. Add a fixture whenever an event class changes version.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from caseledger import Ledger
from caseledger.codec import unpack
from caseledger.events import EVENT_CLASSES, topic_of
from tests.fixtures.make_ledger_fixture import PERIODS, figures
from tests.scenarios import kst

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
VERSIONS = sorted(p.stem.removeprefix("ledger-") for p in FIXTURES.glob("ledger-*.sqlite"))


def test_there_is_a_fixture_for_every_stored_event_version() -> None:
    """A class whose version no fixture holds needs a new fixture (see docs/reliability.md)."""
    held: dict[str, set[int]] = {}
    for version in VERSIONS:
        expected = json.loads((FIXTURES / f"ledger-{version}.json").read_text("utf-8"))
        for topic, versions in expected["stored_versions"].items():
            held.setdefault(topic, set()).update(versions)
    missing = {
        cls.__name__: cls.class_version
        for cls in EVENT_CLASSES
        if cls.class_version not in held.get(topic_of(cls), set())
    }
    assert missing == {}, (
        "these event classes have a version no fixture holds: write one with "
        "`python -m tests.fixtures.make_ledger_fixture VERSION`"
    )


@pytest.fixture(params=VERSIONS)
def old(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    """A copy of one fixture ledger (opening writes to it), its key, and its figures."""
    version = request.param
    db = tmp_path / f"ledger-{version}.sqlite"
    shutil.copyfile(FIXTURES / f"ledger-{version}.sqlite", db)
    expected = json.loads((FIXTURES / f"ledger-{version}.json").read_text("utf-8"))
    return db, FIXTURES / f"ledger-{version}.key", expected


def test_an_old_ledger_opens_upcasts_rebuilds_and_verifies(
    old: tuple[Path, Path, dict[str, Any]],
) -> None:
    db, key, expected = old
    with Ledger.open(db, master_key=key) as ledger:
        # Every stored event decodes, validated and upcast to its class's current version.
        events = list(ledger.events())
        assert len(events) == expected["events"]
        assert all(type(e.event).class_version >= 1 for e in events)
        # The stored bytes are the ones written then: same versions, same Merkle root.
        stored: dict[str, set[int]] = {}
        for record in ledger.records():
            stored.setdefault(record.topic, set()).add(unpack(record.state).get("_v", 1))
        assert {t: sorted(v) for t, v in stored.items()} == expected["stored_versions"]
        report = ledger.verify([expected["checkpoint"]], expected["verifier_key"])
        assert report.ok, report.lines()
        assert report.root.hex() == expected["merkle_root"]
        # The read models, rebuilt from the log, show what they showed then (metrics
        # added since are new, not compared; a metric that changed meaning fails here).
        assert ledger.rebuild() == expected["events"]
        now = figures(ledger)
        for name in ("events", "events_per_topic", "cases_by_stage", "meetings_by_kind"):
            assert now[name] == expected[name], name
        for period in PERIODS:
            for metric, value in expected["kpis"][period].items():
                assert now["kpis"][period].get(metric) == value, (period, metric)
        # The sealed personal data still opens with the master key of then.
        case = UUID(expected["medical_case"])
        household = ledger.case(case).household_id
        [discovered, *_] = ledger.reader("jungang-officer").household_history(household)
        assert discovered.members[0].personal.name == expected["member_name"]  # type: ignore[attr-defined]


def test_an_old_ledger_keeps_working(old: tuple[Path, Path, dict[str, Any]]) -> None:
    """New entries go on from the old state, and the log stays consistent with then."""
    db, key, expected = old
    with Ledger.open(db, master_key=key) as ledger:
        case = UUID(expected["medical_case"])
        ledger.record_supervision(case, by="jungang-lead", at=kst(2023, 12, 1))
        assert ledger.case(case).version == len(ledger.history(case))
        report = ledger.verify([expected["checkpoint"]], expected["verifier_key"])
        assert report.ok, report.lines()
        assert len(ledger) == expected["events"] + 1
