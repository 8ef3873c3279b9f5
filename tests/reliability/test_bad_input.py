"""Bad input: every command-line command and every file loader, fed hostile input.

Malformed, truncated, oversized, wrongly typed and hostile input (non-UTF-8 bytes, NUL
and control characters, spreadsheet formulas, huge numbers, deeply nested JSON, paths
that are directories, sockets or missing) must end in a clear one-line error
(``caseledger: error: …``, exit 1; argparse's usage errors exit 2 with the error as the
last line), never a traceback, and never a partial write: the log does not grow and no
half-written output file is left behind.

The command line runs in-process (``caseledger.cli.main``) so Hypothesis can try many
inputs; a few cases run as real subprocesses too. The argument lists are built from the
parser itself, so a subcommand added later is fuzzed without touching this file.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import chdir, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from caseledger import CaseLedgerError, Ledger, cli
from caseledger.integrity import generate_key
from caseledger.keystore import master_key_text
from caseledger.merkle_log import (
    ProofBundle,
    read_bundle,
    read_checkpoint,
    read_signer_key,
    read_verifier_key,
    verify_bundle,
)
from caseledger.policy import load_policy
from tests.reliability.children import MASTER_KEY
from tests.reliability.harness import ROOT, examples, record_figures
from tests.scenarios import scenario_1

SIGNER, VERIFIER = generate_key("example.org/caseledger/fuzz")
PREFIX = "caseledger: error: "

#: Flags that make a command run until interrupted: never given here.
_ENDLESS = {"--follow"}
#: Values of these options name files or folders.
_PATH_OPTIONS = {
    "--db",
    "--policy",
    "--key",
    "--out",
    "--file",
    "--public-key",
    "--checkpoint",
    "--secret-file",
    "file",
    "bundle",
}


# ---------------------------------------------------------------------------
# Running the command line


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


def run_cli(argv: list[str], stdin: bytes = b"") -> Outcome:
    """``caseledger argv`` in this process; an exception escaping ``main`` fails the test."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main(argv)
    except BaseException as e:
        msg = f"caseledger {argv!r} would print a traceback: {type(e).__name__}: {e}"
        raise AssertionError(msg) from e
    finally:
        sys.stdin = saved
    return Outcome(code, out.getvalue(), err.getvalue())


def assert_clean_refusal(outcome: Outcome, argv: list[str]) -> None:
    """A non-zero exit with one clear error line and no traceback."""
    where = f"caseledger {argv!r}: exit {outcome.code}, stderr {outcome.err!r}"
    assert "Traceback" not in outcome.err, where
    assert outcome.code != 0, where
    lines = outcome.err.splitlines()
    assert lines, where
    if outcome.code == 2:  # argparse: usage, then "caseledger ...: error: ..."
        assert lines[-1].startswith("caseledger"), where
        assert ": error: " in lines[-1], where
    else:
        assert len(lines) == 1, where
        assert lines[0].startswith(PREFIX), where
        assert len(lines[0]) > len(PREFIX) + 10, where


def _count(db: Path) -> int:
    if not db.is_file():
        return 0
    with sqlite3.connect(db) as con:
        try:
            return int(con.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])
        except sqlite3.DatabaseError:
            return 0


# ---------------------------------------------------------------------------
# Files: a small ledger, valid files of each kind, and hostile ones


@dataclass(frozen=True)
class Files:
    """A folder with a ledger and one file of every kind the command line reads."""

    root: Path
    ledger: Path
    case: uuid.UUID
    household: uuid.UUID
    events: int

    def path(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Files]:
    root = tmp_path_factory.mktemp("inputs")
    ledger_path = root / "ledger.db"
    with Ledger.open(ledger_path, master_key=MASTER_KEY) as ledger:
        s = scenario_1(ledger)
        household = ledger.case(s.resolved_case).household_id
        checkpoint = ledger.checkpoint(SIGNER)
        bundle = ledger.prove(s.medical_case, SIGNER).to_json()
        events = len(ledger)
    valid = {
        "signer.key": SIGNER + "\n",
        "verifier.pub": VERIFIER + "\n",
        "checkpoint.txt": checkpoint,
        "bundle.json": bundle,
        "policy.json": (ROOT / "src/caseledger/policies/default.json").read_text("utf-8"),
        "commands.jsonl": json.dumps(_discover(1)) + "\n",
        "master.key": master_key_text(MASTER_KEY) + "\n",
    }
    for name, text in valid.items():
        (root / name).write_text(text, encoding="utf-8")
    hostile = {
        "empty": b"",
        "binary": bytes(range(256)) * 4,
        "latin1.txt": "Überprüfung café".encode("latin-1"),
        "nul.txt": b"abc\x00def\n",
        "formula.csv": b'=HYPERLINK("http://x","y")\n+cmd|\' /C calc\'!A0\n',
        "deep.json": b"[" * 100_000 + b"]" * 100_000,
        "huge-number.json": b'{"size": 1' + b"0" * 5000 + b"}",
        "long-line.txt": b"A" * (2 << 20),
        "not-a-db.db": b"SQLite format 3\x00" + bytes(4000),
    }
    for name, data in hostile.items():
        (root / name).write_bytes(data)
    (root / "a-folder").mkdir()
    (root / "unreadable").write_text("secret\n")
    (root / "unreadable").chmod(0)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "a-socket"))  # open() on it fails with ENXIO: unreadable
    truncated = root / "truncated.db"
    data = ledger_path.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    with (root / "sparse-70MB").open("wb") as f:  # larger than any file caseledger reads
        f.truncate(70 << 20)
    yield Files(root, ledger_path, s.medical_case, household, events)
    sock.close()


def _discover(n: int, **changes: Any) -> dict[str, Any]:
    command = {
        "command": "discover_household",
        "dong": "중앙동",
        "district": "동두천시",
        "channel": "outreach_visit",
        "by": "jungang-officer",
        "at": "2023-03-02T10:00:00+09:00",
        "household_id": str(uuid.UUID(int=n + 1000)),
        "idempotency_key": f"fuzz-{n}",
    }
    command.update(changes)
    return command


@pytest.fixture
def workdir(files: Files, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in the inputs folder (relative paths stay there) with the test master key."""
    monkeypatch.chdir(files.root)
    for name in ("CASELEDGER_DB", "CASELEDGER_POLICY", "CASELEDGER_MASTER_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CASELEDGER_MASTER_KEY", master_key_text(MASTER_KEY))
    return files.root


# ---------------------------------------------------------------------------
# Hostile values

FORMULAS = [
    "=1+1",
    '=HYPERLINK("http://x","y")',
    "+cmd|' /C calc'!A0",
    "@SUM(A1)",
    "-2+3",
    "\t=1",
    "\r=1",
]
NUMBERS = ["0", "-1", "1e999", "9" * 400, "nan", "inf", "-0", "0x10", "1_000", "١٢٣"]
MOMENTS = [
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00+14:00",
    "9999-12-31T23:59-14:00",
    "2023-02-30",
    "2023-13-01T00:00+09:00",
    "2023-03-01T10:00",
    "2023-03-01T25:00+09:00",
    "2023-03-01T10:00+09:00",
]
PERIODS = [
    "2023",
    "2023-02",
    "2023Q1",
    "0000",
    "9999",
    "9999Q4",
    "0001Q1",
    "2023Q5",
    "2023-00",
    "10000",
    "2023-W01",
    "0001-01",
    "9999-12",
]
NON_UTF8 = [os.fsdecode(b"\xff\xfe"), os.fsdecode(b"caf\xe9"), os.fsdecode(b"\xed\xa0\x80")]


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(FORMULAS + NUMBERS + MOMENTS + PERIODS + NON_UTF8),
        st.sampled_from(["", " ", "\n", "x\ny", "\x1b[31m", "‮rtl", "가" * 300]),
        # No NUL: the arguments of a process cannot hold one.
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40),
        st.text(
            st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8
        ).map(lambda s: s * 500),
    )


def path_values(files: Files, *, fresh_ledger: bool) -> st.SearchStrategy[str]:
    names = [
        "empty",
        "binary",
        "latin1.txt",
        "nul.txt",
        "formula.csv",
        "deep.json",
        "huge-number.json",
        "long-line.txt",
        "not-a-db.db",
        "a-folder",
        "unreadable",
        "a-socket",
        "truncated.db",
        "sparse-70MB",
        "signer.key",
        "verifier.pub",
        "checkpoint.txt",
        "bundle.json",
        "policy.json",
        "commands.jsonl",
        "master.key",
        "missing-file",
        "missing-folder/file",
        "a-folder/",
        "empty/child",
        NON_UTF8[0],
        "",
    ]
    if fresh_ledger:
        names.append("new-ledger.db")
    return st.sampled_from(names)


#: An argument naming a file: ``(prefix, name)``, resolved in each run's own folder.
PathArg = tuple[str, str]
LEDGER = "<the ledger>"


def option_value(
    action: argparse.Action, files: Files, subcommand: str
) -> st.SearchStrategy[str | PathArg]:
    name = action.option_strings[0] if action.option_strings else action.dest
    prefix = f"{name}=" if action.option_strings else ""
    if name in _PATH_OPTIONS:
        # The demo fills an empty ledger for a minute: give it only ledgers it refuses.
        names = path_values(files, fresh_ledger=subcommand != "demo")
        if name == "--db":
            names = st.one_of(st.just(LEDGER), names)
        return names.map(lambda n: (prefix, n))
    plausible: list[str] = []
    if action.choices:
        plausible += [str(c) for c in action.choices]
    if name in ("case_id", "household_id"):
        plausible += [str(files.case), str(files.household), str(uuid.uuid4())]
    if name in ("--by", "--as", "--worker"):
        plausible += ["jungang-officer", "jungang-lead", "mhwc-worker", "nobody"]
    if name in ("--month", "--period"):
        plausible += PERIODS
    # "--opt=value", so that a value starting with "-" is not read as an option.
    return st.one_of(st.sampled_from(plausible or ["1"]), hostile_text()).map(lambda v: prefix + v)


@st.composite
def argv_for(draw: st.DrawFn, files: Files, subcommand: str) -> list[str | PathArg]:
    """A subcommand's arguments, each present or not, each value hostile or not."""
    parser = _subparsers()[subcommand]
    argv: list[str | PathArg] = [subcommand]
    has_db = False
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        option = action.option_strings[0] if action.option_strings else None
        if option in _ENDLESS:
            continue
        if option is None:
            argv.append(draw(option_value(action, files, subcommand)))
        elif action.required or draw(st.booleans()):
            if action.nargs == 0:
                argv.append(option)
            else:
                argv.append(draw(option_value(action, files, subcommand)))
                has_db = has_db or option == "--db"
    if not has_db:
        argv.append(("--db=", LEDGER))
    return argv


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


# ---------------------------------------------------------------------------
# Every command


def _ledger_copy(files: Files, folder: Path) -> Path:
    target = folder / files.ledger.name
    shutil.copyfile(files.ledger, target)
    return target


def _resolve(arg: str | PathArg, folder: Path, files: Files) -> tuple[str, Path | None]:
    """The argument for this run, and the file it names if that did not exist before.

    Named inputs are copied into the run's folder (so no run changes another's inputs);
    folders are made there empty; a socket, an unreadable or a sparse file stay shared
    (no command can write them); a name that names nothing is a new path in the folder.
    """
    if isinstance(arg, str):
        return arg, None
    prefix, name = arg
    if name == LEDGER:
        return prefix + str(_ledger_copy(files, folder)), None
    if not name or name.endswith("/"):
        return prefix + name, None
    shared = files.root / name
    target = folder / name
    if shared.is_dir():
        target.mkdir(parents=True, exist_ok=True)
    elif shared.is_file() and shared.stat().st_size < (4 << 20) and os.access(shared, os.R_OK):
        shutil.copyfile(shared, target)
    elif shared.exists():
        return prefix + str(shared), None
    else:
        return prefix + str(target), target
    return prefix + str(target), None


@pytest.mark.usefixtures("workdir")
@pytest.mark.parametrize("subcommand", sorted(_subparsers()))
def test_no_command_prints_a_traceback_or_writes_half(files: Files, subcommand: str) -> None:
    started = time.perf_counter()
    runs = refused = 0

    @settings(
        max_examples=examples(ci=8, per_trial=1.5),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        nonlocal runs, refused
        drawn = data.draw(argv_for(files, subcommand))
        # Each run in its own folder: relative paths ("", "a-folder/") land there too.
        with tempfile.TemporaryDirectory(dir=files.root) as scratch, chdir(scratch):
            folder = Path(scratch)
            resolved = [_resolve(a, folder, files) for a in drawn]
            argv = [a for a, _ in resolved]
            # Output files (--out, --file) must not be left behind by a refusal. (The
            # export makes its --secret-file before it checks the rest: not an output.)
            secrets = {p for a, p in resolved if a.startswith("--secret-file=")}
            created = [
                p
                for a, p in resolved
                if p is not None and a.startswith(("--out=", "--file=")) and p not in secrets
            ]
            ledger = folder / files.ledger.name
            before = _count(ledger)
            outcome = run_cli(argv)
            runs += 1
            assert "Traceback" not in outcome.err
            if outcome.code in (0, 3):  # done; or `verify`: the log is not intact
                return
            refused += 1
            assert_clean_refusal(outcome, argv)
            assert _count(ledger) == before, f"{argv!r} failed but wrote to the log"
            for path in created:
                assert not _exists(path), f"{argv!r} failed but left {path} behind"

    run()
    record_figures(
        "bad input: every command",
        command=subcommand,
        trials=runs,
        refused=refused,
        tracebacks=0,
        partial_writes=0,
        seconds=round(time.perf_counter() - started, 2),
    )


def _exists(path: Path) -> bool:
    try:
        return path.exists() or path.is_symlink()
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------------------
# The JSON-lines import


def _mutations(n: int) -> st.SearchStrategy[bytes]:
    """One line that is not a valid command (or, rarely, still is one)."""
    base = _discover(n)
    fields = sorted(base)
    wrong_values = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.just(10**400),
        st.floats(allow_nan=False),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        hostile_text(),
    )

    def dumps(command: dict[str, Any]) -> bytes:
        # Text from undecodable bytes (surrogate escapes) goes back to those bytes.
        return json.dumps(command, ensure_ascii=False).encode("utf-8", "surrogateescape")

    return st.one_of(
        st.builds(lambda f, v: dumps({**base, f: v}), st.sampled_from(fields), wrong_values),
        st.builds(
            lambda f: dumps({k: v for k, v in base.items() if k != f}), st.sampled_from(fields)
        ),
        st.builds(lambda v: dumps({**base, "command": v}), hostile_text()),
        st.builds(lambda k: dumps({**base, k: 1}), st.text(min_size=1, max_size=10)),
        st.builds(lambda cut: dumps(base)[:cut], st.integers(1, 60)),
        st.builds(lambda at: dumps(base)[:at] + b"\xff\xfe" + dumps(base)[at:], st.integers(0, 60)),
        st.sampled_from(
            [
                b"[" * 50_000 + b"]" * 50_000,
                b'{"command": "discover_household", "members": '
                + b"[" * 20_000
                + b"]" * 20_000
                + b"}",
                b"null",
                b"[]",
                b"42",
                b'"text"',
                b"{",
                b"}",
                b"\x00",
                b"NaN",
                b"\xef\xbb\xbf{}",
                json.dumps({**base, "members": [{"member_no": 10**30}]}).encode(),
                json.dumps({**base, "at": "9999-12-31T23:59:59+09:00"}).encode(),
                json.dumps({**base, "at": "0001-01-01T00:00:00+14:00"}).encode(),
                json.dumps({**base, "at": "2023-03-02T10:00:00"}).encode(),
                json.dumps({**base, "by": "=cmd|' /C calc'!A0"}).encode(),
                json.dumps({**base, "household_id": "=1+1"}).encode(),
            ]
        ),
    )


@pytest.mark.usefixtures("workdir")
def test_a_bad_import_line_is_one_clear_error_and_writes_nothing(files: Files) -> None:
    started = time.perf_counter()
    seen = Counter[str]()

    @settings(
        max_examples=examples(ci=150, per_trial=15),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        good_before=st.integers(0, 3),
        good_after=st.integers(0, 3),
        bad=_mutations(0),
        stdin=st.booleans(),
        crlf=st.booleans(),
    )
    def run(good_before: int, good_after: int, bad: bytes, stdin: bool, crlf: bool) -> None:
        end = b"\r\n" if crlf else b"\n"
        lines = [json.dumps(_discover(i + 1)).encode() for i in range(good_before)]
        lines.append(bad)
        lines += [json.dumps(_discover(i + 10)).encode() for i in range(good_after)]
        data = end.join(lines) + end
        with tempfile.TemporaryDirectory(dir=files.root) as scratch:
            ledger = _ledger_copy(files, Path(scratch))
            source = Path(scratch) / "lines.jsonl"
            source.write_bytes(data)
            argv = [f"--db={ledger}", "import", "-" if stdin else str(source)]
            outcome = run_cli(argv, stdin=data)
            if outcome.code == 0:  # the mutation left a valid command
                seen["still valid"] += 1
                return
            seen["refused"] += 1
            assert_clean_refusal(outcome, argv)
            assert f"line {good_before + 1}" in outcome.err, outcome.err
            assert _count(ledger) == files.events  # one batch: nothing of it written

    run()
    record_figures(
        "bad input: JSON-lines import",
        trials=sum(seen.values()),
        refused=seen["refused"],
        still_valid=seen["still valid"],
        tracebacks=0,
        partial_writes=0,
        seconds=round(time.perf_counter() - started, 1),
    )
    assert seen["refused"] > seen["still valid"]


@pytest.mark.usefixtures("workdir")
def test_formula_strings_are_data_and_csv_output_neutralises_them(files: Files) -> None:
    @settings(
        max_examples=examples(ci=10, per_trial=1),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(formula=st.sampled_from(FORMULAS))
    def run(formula: str) -> None:
        with tempfile.TemporaryDirectory(dir=files.root) as scratch:
            ledger = _ledger_copy(files, Path(scratch))
            line = {
                "command": "hold_meeting",
                "kind": "internal",
                "host": "jungang-dong",
                "agenda": [str(files.case)],
                "title": formula,
                "by": "jungang-lead",
                "at": "2023-03-02T10:00:00+09:00",
            }
            source = Path(scratch) / "lines.jsonl"
            source.write_text(json.dumps(line) + "\n", encoding="utf-8")
            assert run_cli([f"--db={ledger}", "import", str(source)]).code == 0
            for argv in (["events", "--since", str(files.events)], ["meetings"]):
                outcome = run_cli([f"--db={ledger}", "--format=csv", *argv])
                assert outcome.code == 0, outcome.err
                cells = [cell for row in _csv(outcome.out) for cell in row]
                assert not [
                    c
                    for c in cells
                    if c[:1] in ("=", "+", "@", "\t", "\r") or (c[:1] == "-" and not _number(c))
                ]
                if argv == ["meetings"]:  # the title is a cell of its own: kept, made inert
                    assert {"'" + formula, "'" + formula.strip()} & set(cells)

    run()


def _csv(text: str) -> list[list[str]]:
    import csv

    return list(csv.reader(io.StringIO(text)))


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_an_oversized_import_line_is_refused_without_reading_it_whole(
    files: Files, workdir: Path
) -> None:
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        ledger = _ledger_copy(files, Path(scratch))
        argv = [f"--db={ledger}", "import", "long-line.txt"]
        outcome = run_cli(argv)
        assert_clean_refusal(outcome, argv)
        assert "longer than" in outcome.err
        assert _count(ledger) == files.events


# ---------------------------------------------------------------------------
# The loaders of checkpoints, keys, proof bundles, policies and master keys


def _loaders(files: Files) -> dict[str, Any]:
    return {
        "checkpoint": read_checkpoint,
        "signer key": read_signer_key,
        "verifier key": read_verifier_key,
        "proof bundle": read_bundle,
        "policy": load_policy,
        "master key": lambda p: Ledger.open(":memory:", master_key=Path(p)).close(),
    }


def _mutated(data: bytes, source: st.DataObject) -> bytes:
    draw = source.draw
    kind = draw(st.sampled_from(["flip", "cut", "insert", "duplicate", "json"]))
    if not data:
        return draw(st.binary(max_size=64))
    at = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1 :]
    if kind == "cut":
        return data[:at]
    if kind == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    if kind == "duplicate":
        return data + data
    try:
        document = json.loads(data)
    except ValueError:
        return data[::-1]
    replacement: object = draw(
        st.sampled_from([None, 10**400, -1, "", [], {}, "x" * 10_000, [[[[]]]]])
    )
    if isinstance(document, dict) and document:
        key = draw(st.sampled_from(sorted(document)))
        document[key] = replacement
    return json.dumps(document).encode()


@pytest.mark.usefixtures("workdir")
def test_every_loader_refuses_damaged_files_with_a_typed_error(files: Files) -> None:
    started = time.perf_counter()
    loaders = _loaders(files)
    valid = {
        "checkpoint": "checkpoint.txt",
        "signer key": "signer.key",
        "verifier key": "verifier.pub",
        "proof bundle": "bundle.json",
        "policy": "policy.json",
        "master key": "master.key",
    }
    tried: Counter[str] = Counter()

    @settings(
        max_examples=examples(ci=200, per_trial=20),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        what = data.draw(st.sampled_from(sorted(loaders)))
        source = data.draw(st.sampled_from(["mutated", "hostile"]))
        with tempfile.TemporaryDirectory(dir=files.root) as scratch:
            if source == "mutated":
                original = (files.root / valid[what]).read_bytes()
                content = _mutated(original, data)
                assume(content != original)
                path = Path(scratch) / "input"
                path.write_bytes(content)
            else:
                path = files.root / data.draw(path_values(files, fresh_ledger=False))
            tried[what] += 1
            try:
                loaders[what](path)
            except CaseLedgerError:
                return
            except Exception as e:
                msg = f"{what} loader on {path}: {type(e).__name__}: {e}"
                raise AssertionError(msg) from e

    run()
    record_figures(
        "bad input: file loaders",
        trials=sum(tried.values()),
        per_loader=dict(sorted(tried.items())),
        untyped_errors=0,
        seconds=round(time.perf_counter() - started, 1),
    )


def test_a_damaged_bundle_fails_verification_with_a_typed_error(files: Files) -> None:
    original = (files.root / "bundle.json").read_bytes()

    @settings(
        max_examples=examples(ci=100, per_trial=10),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        content = _mutated(original, data)
        assume(content != original)
        try:
            report = verify_bundle(content, VERIFIER)
        except CaseLedgerError:
            return
        # Damage that verification tolerates must not change what the bundle says.
        assert ProofBundle.from_json(content) == ProofBundle.from_json(original), report

    run()


# ---------------------------------------------------------------------------
# A few real processes


@pytest.mark.parametrize(
    ("argv", "stdin"),
    [
        (["import", "-"], b"\xff\xfe not utf-8\n"),
        (["import", "-"], b'{"command": "discover_household", "members": ' + b"[" * 30_000),
        (["verify-bundle", "deep.json", "--public-key", "verifier.pub"], b""),
        (["history", os.fsdecode(b"\xff\xfe")], b""),
        (["--db", "truncated.db", "events"], b""),
        (["--db", "a-folder", "verify"], b""),
        (["kpi", "--period", "=1+1"], b""),
    ],
)
def test_real_processes_print_one_line_and_no_traceback(
    files: Files, argv: list[str], stdin: bytes
) -> None:
    with tempfile.TemporaryDirectory(dir=files.root) as scratch:
        ledger = _ledger_copy(files, Path(scratch))
        full = argv if "--db" in argv else ["--db", str(ledger), *argv]
        env = {
            **os.environ,
            "CASELEDGER_MASTER_KEY": master_key_text(MASTER_KEY),
            "PYTHONPATH": str(ROOT),
        }
        env.pop("CASELEDGER_DB", None)
        done = subprocess.run(
            [sys.executable, "-m", "caseledger", *full],
            input=stdin,
            capture_output=True,
            cwd=files.root,
            env=env,
            timeout=60,
            check=False,
        )
        err = done.stderr.decode("utf-8", errors="replace")
        assert_clean_refusal(Outcome(done.returncode, "", err), full)
        assert _count(ledger) == files.events
