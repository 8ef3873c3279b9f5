"""The command line's privacy commands: erase, access-report, keygen, --policy."""

from __future__ import annotations

import base64
import csv
import io
import json
import stat
from pathlib import Path

import pytest

from caseledger import Ledger
from caseledger.cli import main
from caseledger.keystore import MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, create_key_file
from caseledger.policy import POLICY_ENV, default_policy
from tests.conftest import FixedClock
from tests.scenarios import kst, register_dongducheon

OFFICER = "jungang-officer"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, POLICY_ENV, "CASELEDGER_DB"):
        monkeypatch.delenv(name, raising=False)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def ledger_file(tmp_path: Path, clock: FixedClock) -> tuple[str, str, str]:
    """An SQLite ledger with its key file beside it; a household read twice in Feb 2023."""
    db = tmp_path / "ledger.db"
    create_key_file(Path(f"{db}.key"))
    clock.now = kst(2023, 2, 6, 10)
    with Ledger.open(db, clock=clock) as ledger:
        register_dongducheon(ledger)
        household = ledger.discover_household(
            dong="중앙동", district="동두천시", channel="hotline_129", by=OFFICER,
            at=kst(2023, 2, 6), members=[{"member_no": 1, "personal": {"name": "한OO"}}],
        )  # fmt: skip
        ledger.reader(OFFICER, terminal="pc-1").household_history(household)
        clock.now = kst(2023, 2, 11, 22)  # a Saturday night
        ledger.reader(OFFICER, terminal="pc-1").household_history(
            household, action="download", reason="통합사례회의 자료"
        )
    return str(db), str(household), str(tmp_path)


def test_keygen_prints_or_writes_a_master_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = cli(capsys, "keygen", "--print")
    assert code == 0
    assert len(base64.b64decode(out.strip(), validate=True)) == 32
    db = tmp_path / "new.db"
    code, out, _ = cli(capsys, "--db", str(db), "keygen")
    assert code == 0
    key_file = Path(f"{db}.key")
    assert str(key_file) in out
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not db.exists()
    code, _, err = cli(capsys, "--db", str(db), "keygen")
    assert code == 1
    assert "never overwritten" in err


def test_erase_destroys_a_household_as_the_policy_allows(
    capsys: pytest.CaptureFixture[str], ledger_file: tuple[str, str, str]
) -> None:
    db, household, _ = ledger_file
    at = "2023-02-20T10:00:00+09:00"
    code, _, err = cli(capsys, "--db", db, "erase", household, "--reason", "요청", "--by", OFFICER,
                       "--at", at)  # fmt: skip
    assert code == 1
    assert "rule default-deny" in err
    assert "may not erase_household" in err
    code, out, _ = cli(capsys, "--db", db, "--format", "json", "erase", household, "--reason",
                       "동의 철회", "--by", "jungang-lead", "--at", at)  # fmt: skip
    assert code == 0
    assert json.loads(out) == {
        "household": household, "erased": at, "reason": "동의 철회", "by": "jungang-lead",
        "policy_version": default_policy().version,
    }  # fmt: skip
    with Ledger.open(db) as ledger:
        assert ledger.keys.erased_at(ledger.household(household).id) is not None
    code, _, err = cli(capsys, "--db", db, "erase", household, "--reason", "x", "--by",
                       "jungang-lead", "--at", "2023-02-20T10:00")  # fmt: skip
    assert code == 2  # a naive time is a usage error


def test_the_access_report_in_three_formats(
    capsys: pytest.CaptureFixture[str], ledger_file: tuple[str, str, str]
) -> None:
    db, household, _ = ledger_file
    code, out, _ = cli(capsys, "--db", db, "access-report", "--month", "2023-02", "--format",
                       "json")  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert report["month"] == "2023-02"
    assert report["access_log"]["size"] == 3  # one input, two reads
    checks = [(f["check"], f["action"]) for f in report["findings"]]
    assert checks == [("download", "download"), ("outside_hours", "download")]
    assert report["findings"][0]["reason"] == "통합사례회의 자료"
    assert report["findings"][0]["household"] == household
    code, out, _ = cli(capsys, "--db", db, "access-report", "--month", "2023-02", "--format",
                       "csv")  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["check"] for r in rows] == ["download", "outside_hours"]
    assert rows[1]["note"] == "Sat 22:00 is outside 09:00-18:00"
    code, out, _ = cli(capsys, "--db", db, "access-report", "--month", "2023-02")
    assert code == 0
    assert "chain verified" in out
    assert "통합사례회의 자료" in out
    code, out, _ = cli(capsys, "--db", db, "access-report", "--month", "2023-01", "--format",
                       "csv")  # fmt: skip
    assert list(csv.DictReader(io.StringIO(out))) == []  # nothing to look at in January
    assert out.startswith("check,at,account")
    code, _, err = cli(capsys, "--db", db, "access-report", "--month", "Feb")
    assert code == 1
    assert "not a month" in err


def test_the_policy_option_chooses_the_policy_in_force(
    capsys: pytest.CaptureFixture[str], ledger_file: tuple[str, str, str]
) -> None:
    db, household, folder = ledger_file
    data = json.loads(default_policy().model_dump_json())
    data["version"] = "district-2023.1"
    data["commands"][0]["commands"].append("erase_household")  # officers may erase too
    path = Path(folder) / "policy.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    code, out, _ = cli(capsys, "--db", db, "--format", "json", "erase", household, "--reason",
                       "요청", "--by", OFFICER, "--at", "2023-02-20T10:00:00+09:00",
                       "--policy", str(path))  # fmt: skip
    assert code == 0
    assert json.loads(out)["policy_version"] == "district-2023.1"
    code, _, err = cli(capsys, "--db", db, "--policy", str(Path(folder) / "missing.json"),
                       "access-report", "--month", "2023-02")  # fmt: skip
    assert code == 1
    assert "cannot read the policy file" in err


def test_history_marks_erased_personal_fields(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, clock: FixedClock
) -> None:
    db = tmp_path / "ledger.db"
    create_key_file(Path(f"{db}.key"))
    with Ledger.open(db, clock=clock) as ledger:
        register_dongducheon(ledger)
        household = ledger.discover_household(
            dong="중앙동", district="동두천시", channel="hotline_129", by=OFFICER,
            at=kst(2023, 2, 6), personal={"name": "한OO"},
        )  # fmt: skip
        ledger.record_consultation(household, method="visit", outcome="intake", notes="메모",
                                   by=OFFICER, at=kst(2023, 2, 6))  # fmt: skip
        case = ledger.open_case(household, by=OFFICER, at=kst(2023, 2, 6))
        ledger.assess_needs(case, needs=[{"sub_domain": "economy.debt", "urgency": 3}],
                            notes="부채 상담", by=OFFICER, at=kst(2023, 2, 7))  # fmt: skip
    code, out, _ = cli(capsys, "--db", str(db), "history", str(case), "--as", OFFICER)
    assert code == 0
    assert "부채 상담" in out
    with Ledger.open(db, clock=clock) as ledger:
        meeting = ledger.hold_meeting(kind="internal", host="jungang-dong", agenda=[case],
                                      by="jungang-lead", at=kst(2023, 2, 9))  # fmt: skip
        ledger.close_case(case, meeting=meeting, reason="client_refused", by=OFFICER,
                          at=kst(2023, 2, 9))  # fmt: skip
        ledger.erase_household(household, reason="요청", by="jungang-lead", at=kst(2023, 2, 10))
    code, out, _ = cli(capsys, "--db", str(db), "history", str(case), "--as", OFFICER)
    assert code == 0
    assert "부채 상담" not in out
    assert "(erased)" in out
