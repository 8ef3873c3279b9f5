"""`caseledger keygen --name`, `checkpoint`, `verify`, `prove` and `verify-bundle`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from caseledger import Ledger
from caseledger.cli import EXIT_NOT_INTACT, main
from caseledger.integrity import generate_key, verify_checkpoint
from tests.conftest import MASTER_KEY, FixedClock
from tests.scenarios import scenario_1

ORIGIN = "example.org/caseledger/cli"


@pytest.fixture
def workdir(tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a ledger (scenario 1), a key pair ``k.key``/``k.pub``, as the cwd."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CASELEDGER_DB", raising=False)
    with Ledger.open(tmp_path / "ledger.db", clock=clock, master_key=MASTER_KEY) as ledger:
        s = scenario_1(ledger)
    (tmp_path / "case.txt").write_text(str(s.medical_case))
    assert main(["keygen", "--name", ORIGIN, "--out", "k"]) == 0
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args])
    out, err = capsys.readouterr()
    return code, out, err


def test_keygen_writes_a_signing_key_pair(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert (workdir / "k.key").stat().st_mode & 0o777 == 0o600
    signer = (workdir / "k.key").read_text().strip()
    verifier = (workdir / "k.pub").read_text().strip()
    assert signer.startswith(f"PRIVATE+KEY+{ORIGIN}+")
    assert verifier.startswith(f"{ORIGIN}+")
    code, _, err = run(capsys, "keygen", "--name", ORIGIN, "--out", "k")
    assert code == 1
    assert err == "caseledger: error: k.key exists already: choose another prefix\n"
    code, _, err = run(capsys, "keygen", "--name", ORIGIN)
    assert (code, err) == (
        1,
        "caseledger: error: a checkpoint signing key pair needs both --name and --out\n",
    )
    code, _, err = run(capsys, "keygen", "--name", ORIGIN, "--out", "x", "--print")
    assert code == 1
    assert "--file and --print do not apply" in err
    code, _, err = run(capsys, "keygen", "--name", "two words", "--out", "x")
    assert code == 1
    assert err.startswith("caseledger: error: key name must be non-empty")


def test_checkpoint_then_verify_it(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, note, _ = run(capsys, "checkpoint", "--db", "ledger.db", "--key", "k.key")
    assert code == 0
    verifier = (workdir / "k.pub").read_text().strip()
    assert verify_checkpoint(note, verifier, origin=ORIGIN).size == 26
    assert (
        run(capsys, "checkpoint", "--db", "ledger.db", "--key", "k.key", "--out", "cp.txt")[0] == 0
    )
    code, _, err = run(
        capsys, "checkpoint", "--db", "ledger.db", "--key", "k.key", "--out", "cp.txt"
    )
    assert (code, err) == (1, "caseledger: error: cp.txt exists already: choose another --out\n")
    code, out, _ = run(
        capsys, "verify", "--db", "ledger.db", "--checkpoint", "cp.txt", "--public-key", "k.pub"
    )
    assert code == 0
    assert out.startswith("intact: 26 records")
    assert out.count("\n") == 1
    assert "1 signed checkpoint(s) match (sizes 26)" in out


def test_verify_shows_a_progress_bar_on_stderr_only_when_asked(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code, out, err = run(capsys, "verify", "--db", "ledger.db")
    assert (code, err) == (0, "")
    assert run(capsys, "verify", "--db", "ledger.db", "--no-progress") == (0, out, "")
    code, shown, bar = run(capsys, "verify", "--db", "ledger.db", "--progress")
    assert (code, shown) == (0, out)  # stdout is the same
    assert bar.startswith("\r[")
    assert bar.endswith("\n")
    assert "[########################] 100%  26/26 events" in bar.splitlines()[-1]
    code, _, err = run(capsys, "verify", "--db", "ledger.db", "--progress", "--no-progress")
    assert code == 2
    assert "not allowed with argument" in err


def test_verify_reports_tampering_precisely(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "checkpoint", "--db", "ledger.db", "--key", "k.key", "--out", "cp.txt")
    with sqlite3.connect(workdir / "ledger.db") as con:
        con.execute("UPDATE stored_events SET state = CAST(state || x'00' AS BLOB) WHERE rowid = 5")
        con.execute("DELETE FROM stored_events WHERE rowid = 9")
    args = ["verify", "--db", "ledger.db", "--checkpoint", "cp.txt", "--public-key", "k.pub"]
    code, out, _ = run(capsys, *args)
    assert code == EXIT_NOT_INTACT
    lines = out.splitlines()
    assert lines[0].startswith("NOT INTACT: 3 problem(s) in 25 records")
    assert lines[1].split() == ["modified", "position", "5:", *lines[1].split()[3:]]
    assert lines[2].split()[:3] == ["deleted", "position", "9:"]
    assert "does NOT match" in lines[-1]
    code, out, _ = run(capsys, *args, "--format", "json")
    assert code == EXIT_NOT_INTACT
    report = json.loads(out)
    assert report["intact"] is False
    assert [(f["kind"], f["positions"]) for f in report["findings"]] == [
        ("modified", [5]),
        ("deleted", [9]),
        ("checkpoint", []),
    ]
    assert report["checkpoints"] == [
        {"origin": ORIGIN, "size": 26, "matches": False, "consistent_with_previous": None}
    ]


def test_rebuilding_the_leaf_cache_does_not_fool_a_checkpoint(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "checkpoint", "--db", "ledger.db", "--key", "k.key", "--out", "cp.txt")
    with sqlite3.connect(workdir / "ledger.db") as con:
        con.execute("UPDATE stored_events SET state = CAST(state || x'00' AS BLOB) WHERE rowid = 5")
    code, out, err = run(capsys, "verify", "--db", "ledger.db", "--rebuild-leaves")
    assert code == 0
    assert err == "caseledger: rebuilt the leaf cache from 26 records\n"
    assert out.startswith("intact: 26 records")
    code, out, _ = run(
        capsys, "verify", "--db", "ledger.db", "--checkpoint", "cp.txt", "--public-key", "k.pub"
    )
    assert code == EXIT_NOT_INTACT
    assert "the leaf cache was rewritten as well" in out


def test_bad_checkpoints_and_keys_are_one_line_errors(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_signer, _ = generate_key(ORIGIN)
    (workdir / "other.key").write_text(other_signer + "\n")
    run(capsys, "checkpoint", "--db", "ledger.db", "--key", "other.key", "--out", "other.txt")
    (workdir / "garbage.txt").write_bytes(b"\x00\xffnot a checkpoint")
    verify = ["verify", "--db", "ledger.db"]
    cases = [
        (["--checkpoint", "other.txt", "--public-key", "k.pub"], "checkpoint 1: checkpoint has "
         "no signature by key"),
        (["--checkpoint", "other.txt"], "--checkpoint needs --public-key"),
        (["--checkpoint", "garbage.txt", "--public-key", "k.pub"], "checkpoint file garbage.txt"),
        (["--checkpoint", "missing.txt", "--public-key", "k.pub"], "missing.txt: no such file"),
        (["--checkpoint", "other.txt", "--public-key", "k.key"], "holds a signer key"),
    ]  # fmt: skip
    for extra, message in cases:
        code, out, err = run(capsys, *verify, *extra)
        assert code == 1, extra
        assert out == ""
        assert err.startswith("caseledger: error: ")
        assert message in err, (extra, err)
        assert err.count("\n") == 1
    code, _, err = run(capsys, "checkpoint", "--db", "ledger.db", "--key", "k.pub")
    assert code == 1
    assert "give the .key file" in err


def test_prove_then_verify_the_bundle_offline(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = (workdir / "case.txt").read_text()
    code, out, _ = run(
        capsys, "prove", case, "--db", "ledger.db", "--key", "k.key", "--out", "b.json"
    )
    assert code == 0
    assert out.startswith(f"wrote b.json: 5 record(s) of case {case}")
    (workdir / "ledger.db").rename(workdir / "elsewhere.db")  # no database from here on
    code, out, _ = run(capsys, "verify-bundle", "b.json", "--public-key", "k.pub")
    assert code == 0
    assert out.startswith(f"valid: 5 record(s) of case {case} (versions 1–5) are in log {ORIGIN}")
    assert not (workdir / "caseledger.db").exists()

    bundle = json.loads((workdir / "b.json").read_text())
    bundle["records"][3]["version"] = 5
    (workdir / "bad.json").write_text(json.dumps(bundle))
    code, out, err = run(capsys, "verify-bundle", "bad.json", "--public-key", "k.pub")
    assert (code, out) == (1, "")
    assert err == (
        "caseledger: error: record 4 (log position "
        f"{bundle['records'][3]['position']}) is version 5, expected 4: a record of the case "
        "is missing from the bundle or out of order\n"
    )
    (workdir / "junk.json").write_text("{not json")
    code, _, err = run(capsys, "verify-bundle", "junk.json", "--public-key", "k.pub")
    assert code == 1
    assert err.startswith("caseledger: error: junk.json: proof bundle is not valid JSON")


def test_prove_refuses_what_is_not_a_case(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prove = ["--db", "ledger.db", "--key", "k.key", "--out", "b.json"]
    code, _, err = run(capsys, "prove", "not-a-uuid", *prove)
    assert (code, err) == (1, "caseledger: error: 'not-a-uuid' is not a case id (a UUID)\n")
    code, _, err = run(capsys, "prove", "00000000-0000-0000-0000-000000000001", *prove)
    assert code == 1
    assert "does not exist in this ledger" in err
    assert not (workdir / "b.json").exists()
