"""The command line, run for real: subcommands, output formats, one-line errors."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

import caseledger
from caseledger import Channel, Ledger, Stage
from caseledger._format import Column, display_width, fit, plain, write_record, write_rows
from caseledger.cli import main
from caseledger.keystore import master_key_text
from tests.conftest import MASTER_KEY, postgres_url
from tests.test_import import MEDICAL, RESOLVED, jsonl, scenario_lines

ERROR = "caseledger: error: "


def cli(*argv: str) -> tuple[int, str, str]:
    """Run the command line in this process; return its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def run(*argv: str, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m caseledger`` in a subprocess."""
    environment = {**os.environ, **env}
    environment.pop("CASELEDGER_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "caseledger", *argv],
        input=stdin,
        capture_output=True,
        env=environment,
        check=False,
        timeout=120,
    )


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(ERROR), err
    assert "Traceback" not in err
    return lines[0][len(ERROR) :]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """A one-dong demo ledger made by the command line, and its JSON summary."""
    db = str(tmp_path_factory.mktemp("demo") / "demo.db")
    code, out, err = cli("--db", db, "demo", "--dongs", "1", "--seed", "3", "--format", "json")
    assert code == 0, err
    if not os.environ.get("CASELEDGER_MASTER_KEY"):
        assert "created the master key file" in err
    return db, json.loads(out)


@pytest.fixture(scope="module")
def events(demo: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    code, out, _ = cli("--db", demo[0], "events")
    assert code == 0
    return [json.loads(line) for line in out.splitlines()]


def a_case(events: list[dict[str, Any]], reason: str) -> tuple[str, str]:
    """A case closed for ``reason``, and the worker who closed it."""
    for row in events:
        if row["type"] == "CaseClosed" and row["reason"] == reason:
            return row["originator_id"], row["actor"]
    raise AssertionError(f"no case closed for {reason}")  # pragma: no cover


# ---------------------------------------------------------------------------
# Subcommands


def test_version_and_help() -> None:
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.decode().strip() == f"caseledger {caseledger.__version__}"
    code, out, _ = cli("--help")
    assert code == 0
    for name in ("demo", "history", "events", "import", "schema"):
        assert name in out


def test_demo_prints_a_summary_and_refuses_a_ledger_with_events(
    demo: tuple[str, dict[str, Any]],
) -> None:
    db, summary = demo
    assert summary["events"] == sum(summary["events_by_type"].values()) > 1000
    assert summary["households"] > 4 * summary["cases"] > 0
    assert summary["cases"] == sum(summary["cases_by_stage"].values())
    code, out, err = cli("--db", db, "demo", "--dongs", "1")
    assert code == 1
    assert out == ""
    assert f"{db} already holds {summary['events']:,} events" in one_error_line(err)


def test_demo_table_summary_and_refusal_of_recent_years(tmp_path: Path) -> None:
    db = str(tmp_path / "small.db")
    code, out, _ = cli("--db", db, "demo", "--dongs", "1", "--start-year", "2020")
    assert code == 0
    assert "한빛구 (fictional), 1 dongs" in out
    assert "2020-01-01 – 2020-12-31" in out
    assert "cases by stage" in out
    assert "종결" in out
    code, _, err = cli("--db", str(tmp_path / "new.db"), "demo", "--start-year",
                       str(date.today().year))  # fmt: skip
    assert code == 1
    assert "choose an earlier --start-year" in one_error_line(err)


def test_events_stream_the_log_as_json_lines_without_personal_fields(
    demo: tuple[str, dict[str, Any]], events: list[dict[str, Any]]
) -> None:
    _, summary = demo
    assert [row["position"] for row in events] == list(range(1, summary["events"] + 1))
    assert {"type", "originator_id", "originator_version", "occurred_at", "recorded_at",
            "actor", "organisation"} <= set(events[0])  # fmt: skip
    text = json.dumps(events, ensure_ascii=False)
    assert '"personal"' not in text
    assert "가상인물" not in text
    discovered = next(row for row in events if row["type"] == "HouseholdDiscovered")
    assert discovered["channel"] in {c.value for c in Channel}
    assert all("personal" not in member for member in discovered["members"])
    datetime.fromisoformat(discovered["occurred_at"])
    code, out, _ = cli("--db", demo[0], "events", "--since", "10", "--limit", "5")
    assert code == 0
    assert [json.loads(line)["position"] for line in out.splitlines()] == [11, 12, 13, 14, 15]


def test_events_as_csv_and_as_a_limited_table(demo: tuple[str, dict[str, Any]]) -> None:
    db, summary = demo
    code, out, _ = cli("--db", db, "events", "--format", "csv", "--limit", "3")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out, newline="")))
    assert rows[0][:3] == ["position", "type", "originator_id"]
    assert rows[0][-1] == "fields"
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"]
    assert json.loads(rows[1][-1])["code"] == "hb-office"
    code, out, _ = cli("--db", db, "--format", "table", "events")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 + 100 + 1
    assert lines[-1] == f"… {summary['events'] - 100} more rows (use --limit 0 for all)"


def test_history_reads_a_case_with_korean_and_english_labels(
    demo: tuple[str, dict[str, Any]], events: list[dict[str, Any]]
) -> None:
    case_id, _ = a_case(events, "not_selected")
    code, out, _ = cli("--db", demo[0], "history", case_id)
    assert code == 0
    assert "접수 · Case opened" in out
    assert "대상자 선정 · Case classified" in out
    assert "종결 · Case closed" in out
    assert "reason: 미선정 종결 (not selected)" in out
    assert "track: 미선정 (not selected)" in out
    assert "합성" not in out  # structural fields only
    code, out, _ = cli("--db", demo[0], "history", case_id, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [r["version"] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0]["type"] == "CaseOpened"
    assert rows[0]["label_ko"] == "접수"
    closed = next(r for r in rows if r["type"] == "CaseClosed")
    assert closed["fields"]["reason"] == "not_selected"
    assert '"personal"' not in out
    code, out, _ = cli("--db", demo[0], "--format", "csv", "history", case_id)
    assert code == 0
    assert next(csv.reader(io.StringIO(out, newline="")))[:3] == ["version", "type", "label_ko"]


def test_history_as_a_worker_shows_personal_fields_under_the_policy(
    demo: tuple[str, dict[str, Any]], events: list[dict[str, Any]]
) -> None:
    db = demo[0]
    case_id, worker = a_case(events, "not_selected")
    code, out, _ = cli("--db", db, "history", case_id, "--as", worker)
    assert code == 0
    assert "합성 사정기록" in out  # the assessment's notes, opened with the key
    code, _, err = cli("--db", db, "history", case_id, "--as", worker, "--format", "json")
    assert code == 1
    assert "needs a stated reason" in one_error_line(err)
    code, out, _ = cli("--db", db, "history", case_id, "--as", worker, "--format", "json",
                       "--reason", "사례 점검")  # fmt: skip
    assert code == 0
    assert "합성 사정기록" in out
    code, _, err = cli("--db", db, "history", case_id, "--as", "hb-food-worker-1")
    assert code == 1
    assert "may not read" in one_error_line(err)


def test_schema_prints_the_json_schema_of_an_import_line() -> None:
    code, out, _ = cli("schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "caseledger command"
    names = set(schema["discriminator"]["mapping"])
    assert {"discover_household", "link_service", "close_case"} <= names


# ---------------------------------------------------------------------------
# Errors: one line, exit 1; usage errors exit 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["history", "00000000-0000-4000-8000-000000000000"], "does not exist in this ledger"),
        (["history", "not-a-uuid"], "case_id: 'not-a-uuid' is not a valid id (expected a UUID)"),
        (["import", "{tmp}/missing.jsonl"], "{tmp}/missing.jsonl: no such file"),
        (["import", "{tmp}"], "{tmp} is a directory, not a JSON-lines file"),
        (["--db", "{tmp}", "events"], "{tmp} is a directory, not a database file"),
        (["--db", "{tmp}/absent.db", "events"], "no ledger at {tmp}/absent.db"),
        (["--db", "{tmp}/no/such/folder.db", "import", "-"], "does not exist: create it first"),
        (["--db", "mysql://localhost/x", "events"], "unknown database scheme 'mysql'"),
        (["--db", "postgresql://localhost", "events"], "the PostgreSQL URL names no database"),
    ],
)
def test_user_mistakes_print_one_error_line(
    demo: tuple[str, dict[str, Any]], tmp_path: Path, argv: list[str], message: str
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = cli("--db", demo[0], *args)
    assert code == 1
    assert out == ""
    assert message.replace("{tmp}", str(tmp_path)) in one_error_line(err)


def test_errors_in_a_subprocess_have_no_traceback(tmp_path: Path) -> None:
    for argv in (["--db", str(tmp_path), "events"], ["import", str(tmp_path / "x.jsonl")]):
        done = run(*argv)
        assert done.returncode == 1
        assert done.stdout == b""
        one_error_line(done.stderr.decode())


@pytest.mark.parametrize(
    "argv",
    [["history"], ["--format", "xml", "events"], ["demo", "--dongs", "0"], ["frobnicate"], []],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    code, out, err = cli(*argv)
    assert code == 2
    assert out == ""
    assert "usage: caseledger" in err


def test_ctrl_c_exits_130_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted() -> dict[str, Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr("caseledger.cli.command_json_schema", interrupted)
    assert cli("schema") == (130, "", "")


def test_a_closed_pipe_stops_the_stream_quietly(demo: tuple[str, dict[str, Any]]) -> None:
    env = {**os.environ}
    env.pop("CASELEDGER_DB", None)
    with subprocess.Popen(
        [sys.executable, "-m", "caseledger", "--db", demo[0], "events"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert json.loads(process.stdout.readline())["position"] == 1
        process.stdout.close()
        assert process.wait(timeout=60) == 141
        assert process.stderr.read() == b""


# ---------------------------------------------------------------------------
# import


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A ledger for the command line on each backend that outlives one process."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.db")
    else:
        assert postgres_url()
        yield request.getfixturevalue("pg_schema_url")


KEY = {"CASELEDGER_MASTER_KEY": master_key_text(MASTER_KEY)}


def test_import_applies_json_lines_from_stdin(db_url: str) -> None:
    done = run("--db", db_url, "--format", "json", "import", "-",
               stdin=jsonl(scenario_lines()), **KEY)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["file"] == "stdin"
    assert result["commands"] == result["events"] == len(scenario_lines())
    with Ledger.open(db_url, master_key=MASTER_KEY) as ledger:
        assert ledger.case(RESOLVED).stage is Stage.CLOSED
    done = run("--db", db_url, "history", str(MEDICAL), **KEY)
    assert done.returncode == 0
    assert "서비스 연계 · Service linked" in done.stdout.decode()


def test_a_rule_violation_names_its_line_and_writes_nothing_of_its_batch(db_url: str) -> None:
    lines = scenario_lines()
    lines.insert(10, {**lines[5]})  # open the same case again: refused by the ledger
    source = jsonl(lines)
    done = run("--db", db_url, "import", "-", "--batch-size", "4", stdin=source, **KEY)
    assert done.returncode == 1
    message = one_error_line(done.stderr.decode())
    assert message.startswith("line 11: case 00000000-0000-4000-8000-000000000001 exists already")
    assert "nothing from lines 9-11 was written" in message
    assert "the 8 commands before line 9 were applied" in message
    with Ledger.open(db_url, master_key=MASTER_KEY) as ledger:
        assert len(ledger) == 8


@pytest.mark.parametrize(
    ("bad", "reason"), [(b'{"command": ', "not valid JSON"), (b"\xc3\x28", "not valid UTF-8")]
)
def test_bad_json_and_non_utf8_lines_name_their_line(
    tmp_path: Path, bad: bytes, reason: str
) -> None:
    db = str(tmp_path / "l.db")
    source = tmp_path / "lines.jsonl"
    good = jsonl(scenario_lines()[:3])
    source.write_bytes(good + bad + b"\n" + good)
    done = run("--db", db, "import", str(source), "--batch-size", "2", **KEY)
    assert done.returncode == 1
    message = one_error_line(done.stderr.decode())
    assert message.startswith(f"line 4: {reason}")
    assert "nothing from lines 3-4 was written" in message
    with Ledger.open(db, master_key=MASTER_KEY) as ledger:
        assert len(ledger) == 2


# ---------------------------------------------------------------------------
# Output formatting


def test_table_columns_align_by_display_width() -> None:
    out = io.StringIO()
    rows = [{"dong": "중앙동", "cases": 12}, {"dong": "Jungang-dong", "cases": 3}]
    write_rows(out, rows, [("dong", "동"), ("cases", "사례 수")], "table")
    lines = out.getvalue().splitlines()
    assert [display_width(line) for line in lines] == [display_width(lines[1])] * 4
    assert lines[2] == "중앙동             12"
    assert lines[3] == "Jungang-dong        3"  # numbers align right


@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), min_size=1, max_size=6))
def test_every_table_column_starts_at_the_same_display_column(
    cells: list[tuple[str, str]],
) -> None:
    rows = [{"a": a, "b": b, "c": "x"} for a, b in cells]
    out = io.StringIO()
    write_rows(out, rows, ["a", "b", "c"], "table")
    lines = out.getvalue().splitlines()
    assert len(lines) == len(rows) + 2
    # The last column ("x" under "c") starts at the same display column on every line.
    starts = {display_width(line[:-1]) for line in lines[2:]}
    assert len(starts) == 1


def test_long_lists_are_cut_with_a_note_and_long_cells_shortened() -> None:
    out = io.StringIO()
    written = write_rows(out, ({"n": i} for i in range(30)), ["n"], "table", limit=10)
    assert written == 10
    assert out.getvalue().splitlines()[-1] == "… 20 more rows (use --limit 0 for all)"
    assert fit("가나다라마", 7) == "가나다…"
    assert display_width(fit("가나다라마", 7)) <= 7


def test_json_and_csv_write_codes_iso_times_and_spreadsheet_safe_cells() -> None:
    row = {
        "when": datetime(2023, 2, 9, 14, 0, tzinfo=UTC),
        "id": UUID(int=5),
        "stage": Stage.CLOSED,
        "amount": Decimal("3000000.00"),
        "note": '=HYPERLINK("http://x")',
        "neg": -3,
        "tags": ("a", "b"),
    }
    out = io.StringIO()
    write_rows(out, [row], list(row), "json")
    assert json.loads(out.getvalue()) == [
        {"amount": "3000000.00", "id": str(UUID(int=5)), "neg": -3,
         "note": '=HYPERLINK("http://x")', "stage": "closed", "tags": ["a", "b"],
         "when": "2023-02-09T14:00:00+00:00"},
    ]  # fmt: skip
    assert out.getvalue().index('"amount"') < out.getvalue().index('"when"')  # sorted keys
    out = io.StringIO()
    write_rows(out, [row], list(row), "csv")
    header, values = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert header == list(row)
    assert values[4] == '\'=HYPERLINK("http://x")'
    assert values[5] == "-3"  # a number is not a formula
    assert values[2] == "closed"
    for dangerous in ("+1", "-x", "@SUM(A1)", "\tx", "\rx"):
        out = io.StringIO()
        write_rows(out, [{"v": dangerous}], ["v"], "csv")
        rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
        assert rows == [["v"], ["'" + dangerous]]
    assert plain({"k": (Stage.OPENED, date(2023, 1, 2))}) == {"k": ["opened", "2023-01-02"]}


def test_a_record_as_a_table_shows_labels_and_nested_keys() -> None:
    out = io.StringIO()
    write_record(out, {"stage": Stage.CLOSED, "by": {"a": 1}}, "table", headers={"stage": "단계"})
    assert out.getvalue().splitlines() == ["단계  종결", "by.a  1"]
    out = io.StringIO()
    write_rows(out, [], [Column("x", "엑스")], "table")
    assert out.getvalue().splitlines() == ["엑스", "----"]
