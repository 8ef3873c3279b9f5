"""The JSON-lines import: batches, line-numbered errors, idempotent re-imports, fuzzing."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from caseledger import (
    AlreadyExists,
    IdempotencyConflict,
    ImportLineError,
    Ledger,
    Stage,
    StageError,
)
from caseledger.cli import main
from caseledger.demo import commands
from caseledger.events import CaseClosed, ServiceLinked
from caseledger.importer import import_lines, parse_line
from caseledger.keystore import master_key_text
from tests.conftest import MASTER_KEY, FixedClock

RESOLVED = UUID("00000000-0000-4000-8000-000000000001")
MEDICAL = UUID("00000000-0000-4000-8000-000000000002")
MEETING = UUID("00000000-0000-4000-8000-0000000000aa")
LINK = UUID("00000000-0000-4000-8000-0000000000bb")
BY = "jungang-officer"


def _at(day: str, hour: int = 10) -> str:
    return f"{day}T{hour:02d}:00:00+09:00"


def scenario_lines() -> list[dict[str, Any]]:
    """Seed scenario 1 (Dongducheon Jungang-dong) as import lines, ids given."""
    lines: list[dict[str, Any]] = [
        {"command": "register_organisation", "code": "jungang-dong", "name": "중앙동 행정복지센터",
         "sector": "public", "kind": "dong_centre", "dong": "중앙동", "district": "동두천시",
         "at": _at("2022-01-03", 9)},
        {"command": "register_worker", "code": BY, "organisation": "jungang-dong",
         "role": "dong_officer", "at": _at("2022-01-03", 9)},
        {"command": "register_worker", "code": "jungang-lead", "organisation": "jungang-dong",
         "role": "supervisor", "at": _at("2022-01-03", 9)},
    ]  # fmt: skip
    for n, (case, found, selected) in enumerate(
        [(RESOLVED, "2022-10-04", "2022-10-20"), (MEDICAL, "2023-01-05", "2023-01-19")]
    ):
        household = str(UUID(int=100 + n))
        meeting = str(UUID(int=200 + n))
        lines += [
            {"command": "discover_household", "dong": "중앙동", "district": "동두천시",
             "channel": "outreach_visit", "by": BY, "at": _at(found), "household_id": household},
            {"command": "record_consultation", "household_id": household, "method": "visit",
             "outcome": "intake", "problems": ["health", "economy"], "by": BY, "at": _at(found)},
            {"command": "open_case", "household_id": household, "case_id": str(case), "by": BY,
             "at": _at(found)},
            {"command": "assess_needs", "case_id": str(case), "by": BY, "at": _at(found),
             "needs": [{"sub_domain": "health.physical", "urgency": 4}]},
            {"command": "hold_meeting", "kind": "internal", "host": "jungang-dong",
             "agenda": [str(case)], "decisions": {str(case): "select"}, "meeting_id": meeting,
             "by": "jungang-lead", "at": _at(selected)},
            {"command": "classify", "case_id": str(case), "meeting_id": meeting,
             "track": "case_managed", "criteria_version": "dongducheon-2022", "by": BY,
             "at": _at(selected)},
        ]  # fmt: skip
    lines += [
        {"command": "hold_meeting", "kind": "internal", "host": "jungang-dong",
         "agenda": [str(RESOLVED), str(MEDICAL)], "meeting_id": str(MEETING),
         "decisions": {str(RESOLVED): "close", str(MEDICAL): "link_service"},
         "title": "2월 내부사례회의", "by": "jungang-lead", "at": _at("2023-02-09", 14)},
        {"command": "close_case", "case_id": str(RESOLVED), "meeting_id": str(MEETING),
         "reason": "goal_achieved", "by": BY, "at": _at("2023-02-09", 15)},
        {"command": "link_service", "case_id": str(MEDICAL), "service": "긴급지원 의료비",
         "provider": "jungang-dong", "domain": "health", "kind": "cash", "amount": "3000000",
         "meeting_id": str(MEETING), "link_id": str(LINK), "by": BY, "at": _at("2023-02-10")},
    ]  # fmt: skip
    return lines


def jsonl(lines: list[dict[str, Any]], *, keys: bool = False) -> bytes:
    out = []
    for i, line in enumerate(lines):
        data = {**line, "idempotency_key": f"scenario-1/{i}"} if keys else line
        out.append(json.dumps(data, ensure_ascii=False))
    return ("\n".join(out) + "\n").encode()


def test_a_scenario_round_trips_through_json_lines(ledger: Ledger) -> None:
    result = import_lines(ledger, io.BytesIO(jsonl(scenario_lines())), batch_size=4)
    assert result.commands == result.events == len(ledger) == len(scenario_lines())
    assert result.batches == 5
    resolved, medical = ledger.case(RESOLVED), ledger.case(MEDICAL)
    assert resolved.stage is Stage.CLOSED
    closing = ledger.history(RESOLVED)[-1]
    assert isinstance(closing, CaseClosed)
    assert closing.meeting_id == MEETING
    assert medical.stage is Stage.IN_SERVICE
    link = ledger.history(MEDICAL)[-1]
    assert isinstance(link, ServiceLinked)
    assert (link.link_id, str(link.amount)) == (LINK, "3000000")


def test_demo_commands_round_trip_through_json_lines(clock: FixedClock) -> None:
    # The same commands, executed directly and imported as JSON lines, record the same log.
    chosen = [cmd for _, cmd in islice(commands(dongs=1, seed=11), 600)]
    text = "".join(cmd.model_dump_json(exclude_none=True) + "\n" for cmd in chosen)
    with (
        Ledger.open(":memory:", clock=clock) as direct,
        Ledger.open(":memory:", clock=clock) as imported,
    ):
        with direct.batch():
            for cmd in chosen:
                direct.execute(cmd)
        import_lines(imported, io.BytesIO(text.encode()), batch_size=128)
        assert [e.event.model_dump() for e in direct.events()] == [
            e.event.model_dump() for e in imported.events()
        ]


def test_idempotency_keys_make_a_re_import_record_nothing_twice(ledger: Ledger) -> None:
    data = jsonl(scenario_lines(), keys=True)
    first = import_lines(ledger, io.BytesIO(data), batch_size=5)
    again = import_lines(ledger, io.BytesIO(data), batch_size=5)
    assert first.events == len(scenario_lines())
    assert (again.commands, again.events) == (first.commands, 0)
    assert len(ledger) == first.events
    # A key used again for another command is refused, naming the line.
    changed = scenario_lines()
    changed[-1]["amount"] = "10"
    with pytest.raises(ImportLineError, match=r"^line 18: .*idempotency key") as caught:
        import_lines(ledger, io.BytesIO(jsonl(changed, keys=True)))
    assert isinstance(caught.value.__cause__, IdempotencyConflict)
    assert len(ledger) == first.events


def test_a_refused_line_writes_nothing_of_its_batch(ledger: Ledger) -> None:
    lines = scenario_lines()
    lines.insert(10, {**lines[6], "at": _at("2022-10-21")})  # assess_needs again: refused
    with pytest.raises(ImportLineError) as caught:
        import_lines(ledger, io.BytesIO(jsonl(lines)), batch_size=4)
    error = caught.value
    assert (error.line, error.applied, error.resume_at) == (11, 8, 9)
    assert isinstance(error.__cause__, StageError)
    message = str(error)
    assert message.startswith("line 11: case 00000000-0000-4000-8000-000000000001 is already")
    assert "nothing from lines 9-11 was written" in message
    assert "the 8 commands before line 9 were applied" in message
    assert "\n" not in message
    assert len(ledger) == 8  # the first two batches
    # Fixed, the import resumes at the batch that was not written.
    del lines[10]
    rest = import_lines(ledger, io.BytesIO(jsonl(lines)), first_line=error.resume_at)
    assert rest.commands == len(lines) - 8
    assert len(ledger) == len(lines)
    assert ledger.case(RESOLVED).stage is Stage.CLOSED


def test_blank_lines_crlf_and_a_byte_order_mark_are_accepted(memory_ledger: Ledger) -> None:
    body = jsonl(scenario_lines()[:3]).replace(b"\n", b"\r\n")
    data = b"\xef\xbb\xbf" + b"\n  \n" + body + b"\n\t\n"
    result = import_lines(memory_ledger, io.BytesIO(data))
    assert (result.lines, result.commands, result.events) == (7, 3, 3)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"\xff\xfe{}", r"^line 2: not valid UTF-8 \(byte 0xff at byte 1\)"),
        (b'{"command": "register_worker"', r"^line 2: not valid JSON"),
        (b"[1, 2]", r"^line 2: Input should be"),
        (b'{"code": "x"}', r'^line 2: no "command" field; expected one of: register_organisation'),
        (b'{"command": "fly"}', r"^line 2: unknown command 'fly'"),
        (
            b'{"command": "register_worker", "code": "w", "organisation": "o", "role": "boss", '
            b'"at": "2022-01-03T09:00:00+09:00"}',
            r"^line 2: register_worker: role: Input should be 'dong_officer'",
        ),
        (
            b'{"command": "register_worker", "code": "w", "organisation": "o", '
            b'"role": "dong_officer", "at": "2022-01-03T09:00:00"}',
            r"^line 2: register_worker: at: Input should have timezone info",
        ),
    ],
)
def test_a_malformed_line_is_named_with_its_reason(line: bytes, reason: str) -> None:
    first = jsonl(scenario_lines()[:1])
    with Ledger.open(":memory:") as ledger:
        with pytest.raises(ImportLineError, match=reason) as e:
            import_lines(ledger, io.BytesIO(first + line + b"\n"))
        assert len(ledger) == 0
    assert e.value.line == 2
    assert "nothing from lines 1-2 was written (no command was applied)" in str(e.value)


def test_an_oversized_line_is_refused_without_reading_it_whole() -> None:
    huge = b'{"command": "register_worker", "name": "' + b"x" * 5000 + b'"}\n'
    data = jsonl(scenario_lines()[:1]) + huge + jsonl(scenario_lines()[1:2])
    with Ledger.open(":memory:") as ledger:
        with pytest.raises(ImportLineError, match=r"^line 2: longer than 1,000 bytes"):
            import_lines(ledger, io.BytesIO(data), max_line_bytes=1000, batch_size=1)
        assert len(ledger) == 1


def test_parse_line_returns_the_command_model() -> None:
    command = parse_line(json.dumps(scenario_lines()[0]))
    assert command.command == "register_organisation"
    assert command.code == "jungang-dong"


# ---------------------------------------------------------------------------
# Fuzzing: any malformed line gives one clean error and never a partial batch

VALID = [
    json.dumps(
        {"command": "register_organisation", "code": f"org-{i}", "name": f"기관 {i}",
         "sector": "private", "at": "2022-01-03T09:00:00+09:00"},
        ensure_ascii=False,
    ).encode()
    for i in range(12)
]  # fmt: skip


def _wrong_types() -> st.SearchStrategy[bytes]:
    base = json.loads(VALID[0])
    wrong = st.sampled_from(
        [
            ("sector", "somewhere"), ("sector", 3), ("name", 5), ("name", ["a"]), ("name", ""),
            ("code", "has space"), ("code", None), ("at", "yesterday"), ("at", 20220103),
            ("at", "2022-01-03T09:00:00"), ("at", "2099-01-01T09:00:00+09:00"),
            ("code", "org-0"), ("by", "nobody"), ("command", "register_everything"),
            ("extra", 1), ("dong", {"a": 1}),
        ]
    )  # fmt: skip
    return wrong.map(lambda kv: json.dumps({**base, kv[0]: kv[1]}).encode())


malformed = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.tuples(st.sampled_from(VALID), st.integers(1, 200)).map(
        lambda v: v[0][: min(v[1], len(v[0]) - 1)]
    ),
    _wrong_types(),
    st.sampled_from([b"null", b"1", b'"text"', b"[]", b"{}", b'{"command": null}', b"{,}"]),
).map(lambda b: b.replace(b"\n", b" "))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=st.integers(0, 11), line=malformed, batch_size=st.integers(1, 5))
def test_fuzzed_malformed_lines_fail_cleanly_and_never_leave_a_partial_batch(
    before: int, line: bytes, batch_size: int
) -> None:
    assume(line.strip())
    # If the fuzzed line is accepted, registering org-0 twice after it is refused.
    data = b"\n".join([*VALID[1 : before + 1], line, VALID[0], VALID[0]]) + b"\n"
    with Ledger.open(":memory:") as ledger:
        with pytest.raises(ImportLineError) as caught:
            import_lines(ledger, io.BytesIO(data), batch_size=batch_size)
        error = caught.value
        message = str(error)
        assert "\n" not in message
        assert message.startswith(f"line {error.line}: ")
        written = before // batch_size * batch_size
        if error.line == before + 1:  # the fuzzed line itself was refused
            assert len(ledger) == error.applied == written
        else:  # it parsed and was accepted (e.g. org-0 registered): org-0 again is refused
            assert isinstance(error.__cause__, AlreadyExists)
            assert len(ledger) == error.applied
            assert error.applied % batch_size == 0


@contextlib.contextmanager
def _keyed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        monkeypatch.setenv("CASELEDGER_MASTER_KEY", master_key_text(MASTER_KEY))
        yield Path(folder)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(line=malformed)
def test_fuzzed_malformed_lines_print_one_error_line_from_the_cli(
    line: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    assume(line.strip())
    with _keyed(monkeypatch) as folder:
        source = folder / "lines.jsonl"
        # Line 1 registers org-0, so a fuzzed line registering it again is refused too.
        source.write_bytes(b"\n".join([VALID[0], line, VALID[2]]) + b"\n")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--db", str(folder / "l.db"), "import", str(source), "--batch-size", "1"])
        assert code == 1
        lines = err.getvalue().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("caseledger: error: line 2: ")
        assert "Traceback" not in err.getvalue()
        assert out.getvalue() == ""
