"""Fixtures of the reliability tests, and their figures printed at the end of the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caseledger import Ledger
from tests.reliability.children import MASTER_KEY
from tests.reliability.harness import FIGURES
from tests.scenarios import register_dongducheon


@pytest.fixture(params=["sqlite", "postgres"])
def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ledger several processes can open (an SQLite file or a PostgreSQL schema),
    with the Dongducheon organisations and workers registered."""
    if request.param == "sqlite":
        url = str(tmp_path / "ledger.db")
    else:
        url = request.getfixturevalue("pg_schema_url")
    with Ledger.open(url, master_key=MASTER_KEY) as ledger:
        register_dongducheon(ledger)
    return url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures the reliability tests recorded (see docs/reliability.md)."""
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for entry in FIGURES:
        terminalreporter.write_line(json.dumps(entry, ensure_ascii=False, sort_keys=True))
