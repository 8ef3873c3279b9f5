"""The read models through the command line: the seed scenarios' figures, every format.

The ledgers are recorded through the API (``tests/scenarios.py``), then read with
``caseledger caseload | kpi | meetings | due | history | rebuild | project``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from caseledger import Ledger
from caseledger.cli import main
from caseledger.keystore import master_key_text
from tests.conftest import MASTER_KEY, FixedClock
from tests.scenarios import kst, scenario_1, scenario_2, scenario_3


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def ok(*argv: str) -> str:
    code, out, err = cli(*argv)
    assert code == 0, err
    return out


@pytest.fixture(autouse=True)
def _master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASELEDGER_MASTER_KEY", master_key_text(MASTER_KEY))
    monkeypatch.delenv("CASELEDGER_DB", raising=False)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.db")
    else:
        yield request.getfixturevalue("pg_schema_url")


Builder = Callable[[Ledger], Any]


def record(db: str, build: Builder, projections: str = "inline") -> Any:
    clock = FixedClock(kst(2023, 3, 1, 9))
    with Ledger.open(db, clock=clock, master_key=MASTER_KEY, projections=projections) as ledger:
        return build(ledger)


def test_caseload_and_history_of_scenario_1(db: str) -> None:
    s = record(db, scenario_1)
    [row] = json.loads(ok("--db", db, "--format", "json", "caseload", "--today", "2023-03-01"))
    assert row["case_id"] == str(s.medical_case)
    assert (row["stage"], row["track"], row["level"]) == ("in_service", "case_managed", "general")
    assert (row["dong"], row["worker"]) == ("중앙동", "jungang-officer")
    assert (row["days_in_stage"], row["next_due"], row["next_due_kind"]) == (
        19,
        "2023-03-10",
        "service_check",
    )
    assert row["stage_since"] == "2023-02-10T10:00:00+09:00"

    table = ok("--db", db, "caseload", "--closed", "--today", "2023-03-01")
    lines = table.splitlines()
    assert lines[0].split() == ["case", "동", "worker", "단계", "구분", "수준", "days",
                                "last", "check", "next", "due", "due"]  # fmt: skip
    assert len(lines) == 4
    assert "종결" in table
    assert "서비스 제공" in table
    assert "2023-05-09  follow_up" in table

    past = json.loads(ok("--db", db, "--format", "json", "caseload", "--as-of", "2023-02-01"))
    assert [(r["stage"], r["days_in_stage"]) for r in past] == [("planned", 104), ("planned", 13)]
    before = ok("--db", db, "--format", "json", "caseload", "--as-recorded",
                "2023-02-28T23:00+09:00")  # fmt: skip
    assert json.loads(before) == []

    history = json.loads(ok("--db", db, "--format", "json", "history", str(s.resolved_case)))
    assert [(r["version"], r["type"]) for r in history] == [
        (1, "CaseOpened"),
        (2, "NeedsAssessed"),
        (3, "CaseClassified"),
        (4, "ServicePlanAgreed"),
        (5, "CaseClosed"),
    ]
    assert history[-1]["fields"]["meeting_id"] == str(s.meeting)
    assert history[-1]["occurred_at"] == "2023-02-09T15:00:00+09:00"
    text = ok("--db", db, "history", str(s.resolved_case))
    assert "종결 · Case closed" in text
    assert "reason: 목표달성 (goal achieved)" in text


def test_meeting_register_of_scenario_2(tmp_path: Path) -> None:
    db = str(tmp_path / "s2.db")
    s = record(db, scenario_2)
    meetings = json.loads(ok("--db", db, "--format", "json", "meetings", "--period", "2021"))
    assert [m["kind"] for m in meetings] == ["integrated"] * 4
    fourth = meetings[-1]
    assert fourth["meeting_id"] == str(s.fourth_meeting)
    assert fourth["title"] == "2021년 제4회 통합사례회의"
    assert [a["organisation"] for a in fourth["attendees"]] == [
        "dongducheon-mhwc",
        "dongducheon-senior",
        "dongducheon-hwst",
    ]
    assert fourth["cases"] == [
        {
            "case_id": str(s.case),
            "decision": "select",
            "actions": [
                "classified:case_managed/complex",
                "linked:private:dongducheon-mhwc",
                "linked:private:dongducheon-senior",
                "linked:public:jungang-dong",
            ],
        }
    ]
    table = ok("--db", db, "meetings", "--period", "2021Q2")
    assert "통합사례회의" in table
    assert "dongducheon-mhwc, dongducheon-senior, dongducheon-hwst" in table
    assert len(table.splitlines()) == 3
    assert ok("--db", db, "--format", "json", "meetings", "--period", "2022") == "[]\n"


def test_kpis_of_scenario_3_per_dong(db: str) -> None:
    record(db, scenario_3)
    out = ok("--db", db, "--format", "csv", "kpi", "--period", "2020", "--by", "dong",
             "--district", "의정부시")  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert {r["period"] for r in rows} == {"2020"}
    assert {r["previous_period"] for r in rows} == {"2019"}
    figures = {(r["group"], r["metric"]): (r["value"], r["previous"], r["change"]) for r in rows}
    assert figures["의정부2동", "discoveries"] == ("5", "3", "2")
    assert figures["호원1동", "meetings"] == ("3", "0", "3")
    assert figures["신곡2동", "service_links"] == ("1", "1", "0")
    assert figures["송산2동", "service_checks"] == ("0", "1", "-1")
    assert figures["호원1동", "overdue_checks"] == ("1", "0", "1")

    table = ok("--db", db, "kpi", "--period", "2020", "--by", "district")
    assert table.splitlines()[0] == "2020 against 2019"
    assert table.splitlines()[1].split() == ["district", "metric", "2020", "2019", "change"]
    assert ["의정부시", "discoveries", "12", "8", "4"] in [
        line.split() for line in table.splitlines()
    ]

    alone = json.loads(ok("--db", db, "--format", "json", "kpi", "--period", "2020Q1",
                          "--compare", "none"))  # fmt: skip
    assert alone["previous_period"] is None
    found = {f["metric"]: f["value"] for f in alone["figures"]}
    # 2020Q1: 의정부2동 3 Feb, 17 Feb; 신곡2동 9 Mar; 호원1동 13 Jan, 16 Mar.
    assert found["discoveries"] == 5


def test_due_rebuild_and_project(tmp_path: Path) -> None:
    db = str(tmp_path / "s1.db")
    s = record(db, scenario_1)
    [late] = json.loads(ok("--db", db, "--format", "json", "due", "--overdue",
                           "--today", "2023-03-11"))  # fmt: skip
    assert (late["case_id"], late["kind"], late["days_overdue"]) == (
        str(s.medical_case),
        "service_check",
        1,
    )
    table = ok("--db", db, "due", "--today", "2023-03-01")
    assert "service_check" in table
    assert "follow_up" in table

    rebuilt = json.loads(ok("--db", db, "--format", "json", "rebuild"))
    assert rebuilt["events"] == 26
    assert set(rebuilt["projections"].values()) == {26}
    assert json.loads(ok("--db", db, "--format", "json", "project", "--once"))["applied"] == 0


def test_rebuild_shows_a_progress_bar_on_stderr_only_when_asked(tmp_path: Path) -> None:
    db = str(tmp_path / "s1.db")
    record(db, scenario_1)
    runs = []
    for flags in ((), ("--no-progress",), ("--progress",)):
        code, out, err = cli("--db", db, "--format", "json", "rebuild", *flags)
        assert code == 0, err
        rebuilt = json.loads(out)
        assert rebuilt["events"] == 26
        del rebuilt["seconds"], rebuilt["events_per_second"]
        runs.append((rebuilt, err))
    (plain, nothing), (hidden, none), (shown, bar) = runs
    assert plain == hidden == shown  # stdout is the same, bar or not
    assert nothing == none == ""
    assert bar.startswith("\r[")
    assert bar.endswith("\n")
    assert "[########################] 100%  26/26 events" in bar.splitlines()[-1]
    code, _, err = cli("--db", db, "rebuild", "--progress", "--no-progress")
    assert code == 2
    assert "not allowed with argument" in err


def test_project_follow_runs_until_interrupted(tmp_path: Path) -> None:
    db = str(tmp_path / "followed.db")
    record(db, scenario_1, projections="follow")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    process = subprocess.Popen(
        [sys.executable, "-m", "caseledger", "--db", db, "project", "--follow", "--poll", "0.05"],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        with Ledger.open(db, master_key=MASTER_KEY, projections="follow") as ledger:
            while len(ledger.caseload()) != 1:
                assert time.monotonic() < deadline, "the follower applied nothing"
                assert process.poll() is None
                time.sleep(0.05)
            assert set(ledger.projections.positions().values()) == {len(ledger)}
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert b"Traceback" not in err


def test_read_model_mistakes_print_one_line(tmp_path: Path) -> None:
    db = str(tmp_path / "s1.db")
    record(db, scenario_1)
    for argv, message in [
        (["kpi", "--period", "2023-13"], "month 13 does not exist"),
        (["kpi", "--period", "soon"], "is not a year (2022), a month (2022-02) or a quarter"),
        (["history", "00000000-0000-4000-8000-000000000000"], "does not exist in this ledger"),
    ]:
        code, out, err = cli("--db", db, *argv)
        assert code == 1
        assert out == ""
        assert err.startswith("caseledger: error: ")
        assert message in err
        assert len(err.splitlines()) == 1
    code, _, err = cli("--db", db, "caseload", "--as-recorded", "2023-02-28T10:00")
    assert code == 2
    assert "has no timezone" in err
