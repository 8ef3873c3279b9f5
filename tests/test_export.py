"""Exports: the events, cases and kpis tables, de-identification, access records, CLI.

The read-only tests share one recorded ledger per backend (memory, SQLite, PostgreSQL);
tests that write (access records) record their own.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseledger import Ledger
from caseledger.access import AccessAction
from caseledger.cli import main
from caseledger.errors import AuthorityError, ConfigurationError, InvalidInput
from caseledger.events import (
    EVENT_CLASSES,
    ReferralSent,
    ServiceChecked,
    ServiceLinked,
)
from caseledger.export import (
    CASE_COLUMNS,
    EVENT_COLUMNS,
    KPI_COLUMNS,
    Deidentifier,
    columns_of,
    export,
    load_secret,
    to_arrow,
)
from caseledger.export.columns import Column
from caseledger.export.log import (
    ENVELOPE_FIELDS,
    EVENT_TYPE_COLUMNS,
    FIELD_COLUMNS,
    PERSONAL_FIELDS,
    Places,
    event_row,
    read_log,
)
from caseledger.export.sinks import write_csv
from tests.conftest import KST, MASTER_KEY, FixedClock, _drop_schema, postgres_url
from tests.scenarios import every_event, kst

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Personal values every_event records (sealed in the store: never in an export).
PERSONAL = ("김OO", "이OO", "박OO", "의료비 지원 진행 중", "홍길동")
#: Free text every_event records (only in identified exports).
FREE_TEXT = ("정원 초과", "중복 의뢰", "재위기", "상담 종료, 보존 불필요", "2월 내부사례회의",
             "방문간호", "긴급지원 의료비")  # fmt: skip
WORKERS = ("jungang-officer", "jungang-lead", "hwst-manager", "mhwc-worker", "senior-worker")


def record(ledger: Ledger) -> None:
    """every_event, plus a researcher (with a personal name) and formula-like free text."""
    every_event(ledger)
    ledger.register_worker(
        "researcher-1", organisation="dongducheon-hwst", role="researcher", name="홍길동",
        at=kst(2023, 4, 3),
    )  # fmt: skip
    ledger.hold_meeting(
        kind="integrated", host="dongducheon-hwst", title="=HYPERLINK(\"http://x\")",
        attendees=[{"organisation": "dongducheon-mhwc"}], by="hwst-manager",
        at=kst(2023, 4, 4),
    )  # fmt: skip


@contextmanager
def recorded_ledger(backend: str, folder: Path) -> Iterator[Ledger]:
    """A ledger on ``backend`` (memory, sqlite, postgres) with :func:`record` in it."""
    schema = None
    if backend == "memory":
        url = ":memory:"
    elif backend == "sqlite":
        url = str(folder / "ledger.db")
    else:
        server = postgres_url()
        assert server is not None
        schema = "t_" + uuid.uuid4().hex[:12]
        url = f"{server}{'&' if '?' in server else '?'}schema={schema}"
    clock = FixedClock(datetime(2023, 6, 1, 9, tzinfo=KST))
    try:
        with Ledger.open(url, clock=clock, master_key=MASTER_KEY) as ledger:
            record(ledger)
            yield ledger
    finally:
        server = postgres_url() if schema is not None else None
        if server is not None and schema is not None:
            _drop_schema(server, schema)


@pytest.fixture(scope="module", params=["memory", "sqlite", "postgres"])
def recorded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ledger]:
    """One recorded ledger per backend, shared by the read-only tests of this module."""
    with recorded_ledger(request.param, tmp_path_factory.mktemp("export")) as ledger:
        yield ledger


def everything(path: Path) -> str:
    """Every value of an exported file as text (Parquet is compressed: read it back)."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        return json.dumps(table.to_pylist(), default=str, ensure_ascii=False)
    return path.read_text(encoding="utf-8-sig")


# ---------------------------------------------------------------------------
# The column catalogue covers every stored field


def test_every_stored_field_is_a_column_or_personal() -> None:
    for cls in EVENT_CLASSES:
        stored = set(cls.model_fields) - {"originator_id", "originator_version", "redaction"}
        placed = FIELD_COLUMNS[cls] | ENVELOPE_FIELDS | PERSONAL_FIELDS
        assert stored <= placed, f"{cls.__name__}: {sorted(stored - placed)} not exported"
        assert FIELD_COLUMNS[cls] <= stored, f"{cls.__name__}: maps fields it does not have"


def test_every_column_an_event_fills_is_declared_and_filled_somewhere(recorded: Ledger) -> None:
    names = [c.name for c in EVENT_COLUMNS]
    assert len(set(names)) == len(names), "a column is declared twice"
    envelope = set(names[: names.index("taxonomy_version") + 1])
    places = Places()
    filled: set[str] = set()
    for event in read_log(recorded.store):
        places.update(event)
        row = event_row(event, places)
        assert set(row) <= set(names), sorted(set(row) - set(names))
        given = {k for k, v in row.items() if v is not None}
        assert given - envelope <= set(EVENT_TYPE_COLUMNS[event.cls]), event.cls.__name__
        filled |= given
    # every_event leaves only these optional fields empty; each other column is exercised.
    assert set(names) - filled == {"blind_spot_batch", "referred_by", "consent_expires_at"}


def test_deidentified_tables_drop_worker_codes_and_free_text() -> None:
    dropped = {c.name for c in EVENT_COLUMNS} - {
        c.name for c in columns_of("events", deidentified=True)
    }
    assert dropped == {
        "actor", "registered_worker", "worker", "to_worker", "purpose", "reason_text",
        "rationale", "service", "title",
    }  # fmt: skip
    assert "worker" not in {c.name for c in columns_of("cases", deidentified=True)}
    assert columns_of("kpis", deidentified=True) == KPI_COLUMNS


# ---------------------------------------------------------------------------
# The events table


def test_events_table_has_one_row_per_event_in_log_order(recorded: Ledger) -> None:
    table = to_arrow(recorded, "events", batch_size=7)
    assert table.schema.names == [c.name for c in EVENT_COLUMNS]
    assert table.schema.field("occurred_at").type == pa.timestamp("us", tz="UTC")
    rows = table.to_pylist()
    entries = list(recorded.events())
    assert len(rows) == len(entries) == len(recorded)
    for row, entry in zip(rows, entries, strict=True):
        e = entry.event
        assert row["position"] == entry.position
        assert row["event_id"] == f"{e.originator_id}:{e.originator_version}"
        assert row["event_type"] == type(e).__name__
        assert row["aggregate_id"] == str(e.originator_id)
        assert row["occurred_at"] == e.occurred_at.astimezone(UTC)
        assert row["recorded_at"] == e.recorded_at.astimezone(UTC)
        assert row["organisation"] == e.organisation
        assert row["actor"] == e.actor
    by_type = {r["event_type"]: r for r in rows}
    opened = by_type["CaseOpened"]
    assert (opened["dong"], opened["district"]) == ("중앙동", "동두천시")
    assert opened["actor_role"] == "dong_officer"
    assert opened["organisation_sector"] == "public"
    linked = by_type["ServiceLinked"]
    assert linked["sector"] == "public"
    assert str(linked["amount"]) == "3000000.0000"
    transferred = by_type["CaseTransferred"]
    assert transferred["to_organisation"] == "dongducheon-hwst"
    held = [r for r in rows if r["event_type"] == "CaseMeetingHeld"]
    assert held[0]["meeting_id"] == held[0]["aggregate_id"]
    assert held[2]["agenda_decisions"] == "close;link_service"


def test_no_export_holds_personal_data(recorded: Ledger, tmp_path: Path) -> None:
    for fmt in ("parquet", "csv", "jsonl", "ocel"):
        for table in ("events", "cases") if fmt != "ocel" else ("events",):
            path = tmp_path / f"{table}.{fmt}"
            export(recorded, path, format=fmt, table=table, account="jungang-lead", reason="t")
            text = everything(path)
            for value in PERSONAL:
                assert value not in text, f"{value!r} in the {fmt} {table} export"


# ---------------------------------------------------------------------------
# The cases table


def test_cases_table_agrees_with_the_caseload_and_the_histories(recorded: Ledger) -> None:
    rows = {r["case_id"]: r for r in to_arrow(recorded, "cases").to_pylist()}
    caseload = recorded.caseload(include_closed=True)
    assert set(rows) == {str(e.case_id) for e in caseload}
    for entry in caseload:
        row = rows[str(entry.case_id)]
        assert row["stage"] == entry.stage.value
        assert row["track"] == (entry.track.value if entry.track else None)
        assert row["level"] == (entry.level.value if entry.level else None)
        assert row["closure_reason"] == (
            entry.closure_reason.value if entry.closure_reason else None
        )
        assert (row["dong"], row["worker"]) == (entry.dong, entry.worker)
        assert row["reopened"] == entry.reopened
        history = Counter(type(e) for e in recorded.history(entry.case_id))
        assert row["service_links"] == history[ServiceLinked]
        assert row["service_checks"] == history[ServiceChecked]
        assert row["referrals"] == history[ReferralSent]
        assert row["events"] == sum(history.values())
    medical = next(r for r in rows.values() if r["transfers"])
    assert medical["meetings"] == 2
    assert medical["days_intake_to_plan"] == 14  # 5 January to 19 January


def test_as_of_and_period_choose_the_events_and_the_cases_state(recorded: Ledger) -> None:
    year = to_arrow(recorded, "events", period="2022").to_pylist()
    assert year
    assert all(r["occurred_at"].astimezone(KST).year == 2022 for r in year)
    same = to_arrow(recorded, "events", as_of="2022-12-31").to_pylist()
    assert [r["position"] for r in same] == [r["position"] for r in year]
    cases = to_arrow(recorded, "cases", as_of=date(2022, 12, 31)).to_pylist()
    assert len(cases) == 1
    assert (cases[0]["stage"], cases[0]["closed_at"]) == ("planned", None)
    later = to_arrow(recorded, "cases", period="2023Q2").to_pylist()
    assert len(later) == 2  # the reopened case and the transferred one, both open
    january = to_arrow(recorded, "kpis", period="2023", as_of="2023-01-31T23:59:59+09:00")
    closures = [r for r in january.to_pylist() if r["metric"] == "closures" and r["group"]]
    assert [r["value"] for r in closures] == [0]  # the closure was on 9 February
    for table in ("events", "kpis"):
        with pytest.raises(InvalidInput, match="as_of"):
            to_arrow(recorded, table, period="2023", as_of="31/12/2022")


# ---------------------------------------------------------------------------
# De-identification


def test_deidentified_export_pseudonymises_ids_and_leaves_out_workers_and_free_text(
    recorded: Ledger, tmp_path: Path
) -> None:
    identified = {r["position"]: r for r in to_arrow(recorded).to_pylist()}
    for fmt in ("parquet", "csv", "jsonl", "ocel"):
        path = tmp_path / f"events.{fmt}"
        summary = export(recorded, path, format=fmt, deidentify=True)
        assert summary.deidentified
        assert summary.access_records == 0
        text = everything(path)
        assert not UUID_TEXT.search(text), f"a real id in the {fmt} export"
        for value in (*FREE_TEXT, *WORKERS, *PERSONAL):
            assert value not in text, f"{value!r} in the de-identified {fmt} export"
    rows = to_arrow(recorded, deidentify=True).to_pylist()
    # One id, one pseudonym, wherever it appears: rows still join.
    pseudonym: dict[str, str] = {}
    for row in rows:
        original = identified[row["position"]]
        for name in ("aggregate_id", "household_id", "case_id", "meeting_id", "link_id"):
            if original[name] is not None:
                assert re.fullmatch(r"[0-9a-f]{24}", row[name])
                assert pseudonym.setdefault(original[name], row[name]) == row[name]
        assert row["event_id"] == f"{row['aggregate_id']}:{row['aggregate_version']}"
    assert len(set(pseudonym.values())) == len(pseudonym)


def test_pseudonyms_differ_between_exports_unless_a_key_file_is_kept(
    recorded: Ledger, tmp_path: Path
) -> None:
    def ids(**options: Any) -> list[str]:
        return to_arrow(recorded, "cases", deidentify=True, **options).column("case_id").to_pylist()

    assert set(ids()).isdisjoint(ids())
    key, created = load_secret(tmp_path / "study.key")
    assert created
    assert (tmp_path / "study.key").stat().st_mode & 0o777 == 0o600
    again, created_again = load_secret(tmp_path / "study.key")
    assert again == key
    assert not created_again
    assert ids(secret=key) == ids(secret=again)
    path = tmp_path / "cases.csv"
    export(recorded, path, format="csv", table="cases", deidentify=True, secret=key)
    data = path.read_bytes()
    assert key not in data
    assert key.hex().encode() not in data
    (tmp_path / "short.key").write_bytes(b"too short")
    with pytest.raises(ConfigurationError, match="at least 32"):
        load_secret(tmp_path / "short.key")


def test_dates_can_be_coarsened_to_months(recorded: Ledger) -> None:
    table = to_arrow(recorded, deidentify=True, coarsen_dates=True)
    assert table.schema.field("occurred_at").type == pa.date32()
    for name in ("occurred_at", "recorded_at", "discovered_at", "agreed_on"):
        values = [v for v in table.column(name).to_pylist() if v is not None]
        assert values, name
        assert all(v.day == 1 for v in values), name
    with pytest.raises(InvalidInput, match="coarsen"):
        to_arrow(recorded, coarsen_dates=True)


def test_small_counts_are_suppressed_in_the_kpis_table(recorded: Ledger) -> None:
    plain = {
        (r["group"], r["metric"]): r for r in to_arrow(recorded, "kpis", period="2023").to_pylist()
    }
    assert plain[("중앙동", "closures")]["value"] == 1
    assert not any(r["suppressed"] for r in plain.values())
    hidden = to_arrow(recorded, "kpis", period="2023", deidentify=True).to_pylist()
    for row in hidden:
        before = plain[(row["group"], row["metric"])]
        assert row["value"] is None or not 0 < row["value"] < 5
        assert row["previous"] is None or not 0 < row["previous"] < 5
        assert row["suppressed"] == (
            row["value"] != before["value"] or row["previous"] != before["previous"]
        )
        if row["suppressed"]:
            assert row["change"] is None
    median = next(
        r for r in hidden if r["metric"] == "intake_to_plan.median_days" and r["group"] == "중앙동"
    )
    assert median["value"] is None
    assert median["suppressed"]
    shown = to_arrow(recorded, "kpis", period="2023", deidentify=True, min_cell=1).to_pylist()
    assert not any(r["suppressed"] for r in shown)
    with pytest.raises(InvalidInput, match="worker"):
        to_arrow(recorded, "kpis", period="2023", by="worker", deidentify=True)
    with pytest.raises(InvalidInput, match="period"):
        to_arrow(recorded, "kpis")


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.uuids(), min_size=1, max_size=30, unique=True), st.binary(min_size=32, max_size=64)
)
def test_pseudonyms_are_stable_distinct_and_hide_the_id(ids: list[uuid.UUID], key: bytes) -> None:
    first = Deidentifier(tz=KST, secret=key)
    second = Deidentifier(tz=KST, secret=key)
    other = Deidentifier(tz=KST)
    names = [first.pseudonym(i) for i in ids]
    assert names == [second.pseudonym(str(i)) for i in ids]
    assert len(set(names)) == len(names)
    assert all(
        re.fullmatch(r"[0-9a-f]{24}", n) and n not in i.hex for n, i in zip(names, ids, strict=True)
    )
    assert names != [other.pseudonym(i) for i in ids]


# ---------------------------------------------------------------------------
# Identified exports: who may, with a reason, leaving access records


def test_identified_export_records_a_download_per_household(ledger: Ledger, tmp_path: Path) -> None:
    record(ledger)
    before = len(ledger.access)
    path = tmp_path / "events.parquet"
    summary = ledger.export(path, account="jungang-lead", reason="사례회의 자료 분석")
    assert path.exists()
    assert not summary.deidentified
    households = {r["household_id"] for r in pq.read_table(path).to_pylist() if r["household_id"]}
    assert summary.access_records == len(households) == 3  # the erased household too
    records = list(ledger.access.records())[before:]
    assert {str(r.subject) for r in records} == households
    assert all(r.action is AccessAction.DOWNLOAD for r in records)
    assert all(r.reason == "사례회의 자료 분석" and r.account == "jungang-lead" for r in records)
    assert records[0].at == datetime(2023, 6, 1, 9, tzinfo=KST)
    ledger.access.verify()
    downloads = ledger.access_report("2023-06")
    assert any("사례회의 자료 분석" in json.dumps(row, ensure_ascii=False, default=str)
               for row in downloads.rows())  # fmt: skip


def test_identified_exports_need_an_entitled_account_and_a_reason(
    ledger: Ledger, tmp_path: Path
) -> None:
    record(ledger)
    folder = tmp_path / "out"
    folder.mkdir()
    path = folder / "events.csv"
    with pytest.raises(InvalidInput, match="--as WORKER"):
        export(ledger, path, format="csv")
    with pytest.raises(InvalidInput, match="reason"):
        export(ledger, path, format="csv", account="jungang-lead", reason="  ")
    with pytest.raises(AuthorityError, match="researcher") as refused:
        export(ledger, path, format="csv", account="researcher-1", deidentify=False, reason="r")
    assert refused.value.rule == "read-researcher"
    with pytest.raises(AuthorityError, match="partner_worker"):
        export(ledger, path, format="csv", account="mhwc-worker", deidentify=False, reason="r")
    assert list(folder.iterdir()) == []
    # A researcher gets a de-identified export by default, and no access record.
    before = len(ledger.access)
    summary = export(ledger, path, format="csv", account="researcher-1")
    assert summary.deidentified
    assert len(ledger.access) == before
    assert not UUID_TEXT.search(path.read_text(encoding="utf-8-sig"))
    # The kpis table holds counts only: it needs neither.
    export(ledger, folder / "kpis.csv", format="csv", table="kpis", period="2023")


def test_a_failed_export_leaves_no_file(ledger: Ledger, tmp_path: Path) -> None:
    record(ledger)
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(InvalidInput, match="period"):
        export(ledger, folder / "kpis.parquet", table="kpis", deidentify=True)
    with pytest.raises(InvalidInput, match="format"):
        export(ledger, folder / "x.xlsx", format="xlsx", deidentify=True)
    assert list(folder.iterdir()) == []
    with pytest.raises(InvalidInput, match="folder"):
        export(ledger, folder / "missing" / "x.csv", format="csv", deidentify=True)


def test_no_file_appears_when_its_access_records_cannot_be_written(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(ledger)
    folder = tmp_path / "out"
    folder.mkdir()

    def broken(entries: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ledger.access, "append", broken)
    with pytest.raises(OSError, match="disk full"):
        ledger.export(folder / "events.csv", format="csv", account="jungang-lead", reason="r")
    assert list(folder.iterdir()) == []


# ---------------------------------------------------------------------------
# Files: Parquet in batches, spreadsheet-safe CSV, JSON lines


def test_parquet_is_written_in_batches_with_column_docs(recorded: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    export(recorded, path, deidentify=True, batch_size=10)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == -(-len(recorded) // 10)
    schema = pq.read_schema(path)
    assert schema.metadata[b"caseledger.deidentified"] == b"true"
    assert schema.field("closure_reason").metadata[b"doc"].startswith(b"CaseClosed")


def test_exports_report_their_progress_once_a_page(recorded: Ledger, tmp_path: Path) -> None:
    events = len(recorded)
    pages = [*range(10, events, 10), events]
    for table, fmt in (("events", "parquet"), ("cases", "csv"), ("events", "ocel")):
        seen: list[int] = []
        export(recorded, tmp_path / f"{table}.{fmt}", format=fmt, table=table, deidentify=True,
               batch_size=10, on_progress=seen.append)  # fmt: skip
        assert seen == pages, (table, fmt)
    seen = []
    export(recorded, tmp_path / "kpis.csv", format="csv", table="kpis", period="2023",
           deidentify=True, on_progress=seen.append)  # fmt: skip
    assert seen == []  # the kpis table reads the read models, not the log


def test_csv_is_safe_to_open_in_a_spreadsheet(recorded: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    export(recorded, path, format="csv", account="jungang-lead", reason="점검")
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in data
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert len(rows) == len(recorded)
    titles = [r["title"] for r in rows if r["title"]]
    assert '\'=HYPERLINK("http://x")' in titles
    for row in rows:
        for name, cell in row.items():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (name, cell)
            if cell.startswith("-"):
                float(cell)  # only numbers may start with a minus
    assert rows[0]["occurred_at"].endswith("Z")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=1, max_size=5), st.integers(-5, 5))
def test_csv_cells_round_trip_and_never_run_as_formulas(texts: list[str], number: int) -> None:
    columns = [Column("text", "string", ""), Column("n", "int", "")]
    rows = [{"text": t, "n": number} for t in texts]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        write_csv(path, columns, rows)
        with path.open(encoding="utf-8-sig", newline="") as file:
            text_read = file.read()
    read = list(csv.reader(io.StringIO(text_read, newline="")))
    assert read[0] == ["text", "n"]
    for (cell, n), text in zip(read[1:], texts, strict=True):
        assert cell in (text, "'" + text)
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
        assert int(n) == number


def test_jsonl_has_every_column_on_every_line(recorded: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    export(recorded, path, format="jsonl", table="cases", deidentify=True, coarsen_dates=True)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(recorded.caseload(include_closed=True))
    names = [c.name for c in CASE_COLUMNS if not c.dropped_when_deidentified]
    assert all(list(line) == names for line in lines)
    assert all(line["opened_at"].endswith("-01") for line in lines)


# ---------------------------------------------------------------------------
# pyarrow, pandas and polars are optional


def test_without_pyarrow_parquet_says_how_to_install_it(
    recorded: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'caseledger\[arrow\]'"):
        recorded.to_arrow("events")
    with pytest.raises(ConfigurationError, match="pyarrow"):
        export(recorded, tmp_path / "e.parquet", deidentify=True)
    export(recorded, tmp_path / "e.csv", format="csv", deidentify=True)  # CSV needs no pyarrow


@pytest.mark.parametrize(("module", "method"), [("pandas", "to_pandas"), ("polars", "to_polars")])
def test_dataframe_helpers(recorded: Ledger, module: str, method: str) -> None:
    try:
        __import__(module)
    except ImportError:
        with pytest.raises(ConfigurationError, match=f"pip install {module}"):
            getattr(recorded, method)("cases")
        return
    frame = getattr(recorded, method)("cases")
    assert frame.shape == (len(recorded.caseload(include_closed=True)), len(CASE_COLUMNS))


# ---------------------------------------------------------------------------
# The command line


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = main(list(argv))
    finally:
        sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cli") / "ledger.db"
    with Ledger.open(
        path, master_key=MASTER_KEY, clock=FixedClock(datetime(2023, 6, 1, tzinfo=KST))
    ) as ledger:
        record(ledger)
    return str(path)


def test_cli_export_infers_the_format_and_refuses_identified_exports_without_a_reason(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASELEDGER_MASTER_KEY_FILE", "")
    code, out, err = run("--db", db, "export", "--out", str(tmp_path / "e.csv"), "--deidentify",
                         "--period", "2023")  # fmt: skip
    assert code == 0, err
    assert re.search(r"format\s+csv", out)
    assert re.search(r"de-identified\s+true", out)
    code, _, err = run("--db", db, "export", "--out", str(tmp_path / "i.parquet"))
    assert code == 1
    assert "--as WORKER" in err
    assert not (tmp_path / "i.parquet").exists()
    code, out, err = run("--db", db, "export", "--out", str(tmp_path / "i.parquet"), "--as",
                         "jungang-lead", "--reason", "감사 자료", "--table", "cases")  # fmt: skip
    assert code == 0, err
    assert re.search(r"access records\s+2", out)
    code, _, err = run("--db", db, "export", "--format", "ocel", "--table", "cases",
                       "--out", str(tmp_path / "x.json"), "--deidentify")  # fmt: skip
    assert code == 1
    assert "OCEL" in err
    code, _, err = run("--db", db, "export", "--format", "xlsx", "--out", str(tmp_path / "x"))
    assert code == 2


def test_cli_secret_file_gives_stable_pseudonyms(db: str, tmp_path: Path) -> None:
    key = tmp_path / "study.key"
    outputs = []
    for n in (1, 2):
        path = tmp_path / f"cases{n}.jsonl"
        code, _, err = run("--db", db, "export", "--out", str(path), "--table", "cases",
                           "--secret-file", str(key))  # fmt: skip
        assert code == 0, err
        assert ("created the pseudonym key file" in err) == (n == 1)
        outputs.append([json.loads(line)["case_id"] for line in path.read_text().splitlines()])
    assert outputs[0] == outputs[1]
    assert not UUID_TEXT.search(" ".join(outputs[0]))


def test_cli_refused_export_leaves_no_new_secret_file(db: str, tmp_path: Path) -> None:
    key = tmp_path / "study.key"
    # OCEL has no cases table: refused by the export, after the options were read.
    code, _, err = run("--db", db, "export", "--format", "ocel", "--table", "cases",
                       "--out", str(tmp_path / "x.json"), "--secret-file", str(key))  # fmt: skip
    assert code == 1
    assert "OCEL" in err
    assert "created the pseudonym key file" not in err
    assert not key.exists()
    assert not (tmp_path / "x.json").exists()
    # A key file that was already there stays as it was.
    key.write_bytes(bytes(range(32)))
    code, _, err = run("--db", db, "export", "--format", "ocel", "--table", "cases",
                       "--out", str(tmp_path / "x.json"), "--secret-file", str(key))  # fmt: skip
    assert code == 1
    assert "OCEL" in err
    assert key.read_bytes() == bytes(range(32))


def test_cli_export_shows_a_progress_bar_on_stderr_only_when_asked(db: str, tmp_path: Path) -> None:
    runs = []
    for flags in ((), ("--no-progress",), ("--progress",)):
        code, out, err = run("--db", db, "export", "--out", str(tmp_path / "e.jsonl"),
                             "--deidentify", *flags)  # fmt: skip
        assert code == 0, err
        runs.append((re.sub(r"seconds\s+\S+", "", out), err))
    (plain, nothing), (hidden, none), (shown, bar) = runs
    assert plain == hidden == shown  # stdout is the same, bar or not
    assert nothing == none == ""
    assert bar.startswith("\r[")
    assert bar.endswith("\n")
    assert re.search(r"\[#{24}\] 100%  ([\d,]+)/\1 events", bar.splitlines()[-1])
    # The kpis table reads the read models, not the log: no bar; nor for a refused export.
    for args, exit_code in (((), 1), (("--table", "kpis", "--period", "2023", "--deidentify"), 0)):
        code, _, err = run("--db", db, "export", "--out", str(tmp_path / "k.csv"),
                           "--progress", *args)  # fmt: skip
        assert code == exit_code, err
        assert "\r" not in err
        assert "events/s" not in err
    code, _, err = run("--db", db, "export", "--out", "x.csv", "--progress", "--no-progress")
    assert code == 2
    assert "not allowed with argument" in err


def test_the_exports_page_documents_every_column() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "exports.md").read_text("utf-8")
    for column in (*EVENT_COLUMNS, *CASE_COLUMNS, *KPI_COLUMNS):
        assert f"| `{column.name}` |" in page, f"docs/exports.md does not list {column.name}"


def test_an_empty_ledger_exports_empty_tables(memory_ledger: Ledger, tmp_path: Path) -> None:
    for fmt in ("parquet", "csv", "jsonl", "ocel"):
        path = tmp_path / f"empty.{fmt}"
        summary = export(memory_ledger, path, format=fmt, deidentify=True)
        assert summary.rows == 0
        assert path.exists()
    assert pq.read_table(tmp_path / "empty.parquet").schema.names == [
        c.name for c in columns_of("events", deidentified=True)
    ]
    assert (tmp_path / "empty.csv").read_text(encoding="utf-8-sig").count("\n") == 1
    assert (tmp_path / "empty.jsonl").read_text() == ""
    log = json.loads((tmp_path / "empty.ocel").read_text())
    assert (log["events"], log["objects"]) == ([], [])
