"""Shared fixtures: one ledger per backend (memory, SQLite file, PostgreSQL).

PostgreSQL tests read the server from ``CASELEDGER_TEST_POSTGRES`` (a
``postgresql://`` URL) and skip when it is unset, unless
``CASELEDGER_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), which turns that skip into a
failure so CI really exercises PostgreSQL. Each test gets its own schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from caseledger import Ledger

KST = ZoneInfo("Asia/Seoul")
BACKENDS = ["memory", "sqlite", "postgres"]
#: The master key of test ledgers (file and PostgreSQL ledgers need one for personal data).
MASTER_KEY = bytes(range(32))


def postgres_url() -> str | None:
    """The test server's URL, or None (then the test skips or, in CI, fails)."""
    url = os.environ.get("CASELEDGER_TEST_POSTGRES")
    if url:
        return url
    if os.environ.get("CASELEDGER_REQUIRE_POSTGRES") == "1":
        pytest.fail("CASELEDGER_REQUIRE_POSTGRES=1 but CASELEDGER_TEST_POSTGRES is not set")
    pytest.skip("PostgreSQL tests need CASELEDGER_TEST_POSTGRES=postgresql://... (unset)")
    return None  # pragma: no cover


def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL with a fresh schema, dropped after the test."""
    url = postgres_url()
    assert url is not None
    schema = "t_" + uuid.uuid4().hex[:12]
    sep = "&" if "?" in url else "?"
    yield f"{url}{sep}schema={schema}"
    _drop_schema(url, schema)


@pytest.fixture(params=BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for each backend."""
    if request.param == "memory":
        yield ":memory:"
    elif request.param == "sqlite":
        yield str(tmp_path / "ledger.db")
    else:
        yield request.getfixturevalue("pg_schema_url")


class FixedClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2023, 6, 1, 9, 0, tzinfo=KST))


@pytest.fixture
def ledger(ledger_url: str, clock: FixedClock) -> Iterator[Ledger]:
    with Ledger.open(ledger_url, clock=clock, master_key=MASTER_KEY) as opened:
        yield opened


@pytest.fixture
def memory_ledger(clock: FixedClock) -> Iterator[Ledger]:
    with Ledger.open(":memory:", clock=clock) as opened:
        yield opened
