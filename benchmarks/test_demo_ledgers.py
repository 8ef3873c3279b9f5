"""Rebuild, verification, export and as-of queries on ledgers made by the demo generator.

Each size is a fictional district recorded by ``caseledger demo`` (deterministic: the
same size and seed give the same log). ``CASELEDGER_BENCH_DEMO`` chooses the sizes,
comma-separated, smallest first: an item ``N`` is a ledger of ``N`` events
(``caseledger demo --events N``), an item ``DONGSxYEARS`` one of that many dongs and
years (``--dongs D --years Y``). The default is ``10000,100000,1000000``. Where the
installed generator has no ``--events`` option, an ``N`` item is made with the dongs and
years that give about ``N`` events (about 2,450 events per dong and year).

Generating takes a while, so finished ledgers (and their eventsourcing copies) are kept
in a cache folder outside the repository and reused: ``CASELEDGER_BENCH_CACHE``
(default: ``caseledger-bench-ledgers`` in the system temporary folder). Each benchmark
works on a copy of the ledger, so the cache stays as generated.

* ``full rebuild``: ``ledger.projections.rebuild()`` (every projection from the whole
  log, in one transaction), against eventsourcing's read-and-decode of the same log (its
  recorder's ``select_notifications`` in pages of 2,000 and ``mapper.to_domain_event``
  for each, no projection work at all) and one raw ``SELECT`` of the ledger's rows; and
  each projection alone (``rebuild([name])``, one round, up to 150,000 events);
* ``verify``: ``ledger.verify()`` (every leaf recomputed from the stored records and
  compared, the tree root recomputed) against the floor: one raw ``SELECT`` of the same
  rows, ``hashlib.sha256`` of the same leaf bytes and of every interior node;
* ``export to Parquet``: ``caseledger.export.export(..., table="events",
  format="parquet", deidentify=True)`` (what ``caseledger export --deidentify`` does),
  against the floor (one raw ``SELECT`` of the stored rows written as they are with
  pyarrow, zstd, 10,000 rows a batch) and eventsourcing (read and decode as above, the
  envelope of each event written with pyarrow the same way);
* ``as-of caseload``: ``ledger.caseload(as_of=...)`` (what was true in the world on a
  day) and ``ledger.caseload(as_of_recorded=...)`` (what the ledger knew then), on the
  middle day of the simulated years; one query per round, so events/s reads queries/s.

Rebuild, verify and export also run once each in a fresh process
(:mod:`benchmarks.peak`) for their peak memory. Ledgers of 500,000 events or more get
one timed round without a warm-up; ledgers under 50,000 events at least 10 rounds.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks.conftest import Measure
from benchmarks.peak import peak_memory
from benchmarks.report import OURS
from benchmarks.workload import EsApp, es_app, mirror_into
from caseledger import Ledger
from caseledger.projections.engine import PROJECTIONS

#: From this many events on, a workload gets one timed round and no warm-up.
LARGE = 500_000
#: Below this many events, a workload gets at least ``SMALL_ROUNDS`` timed rounds.
SMALL = 50_000
SMALL_ROUNDS = 10
#: Up to this many events, each projection is also rebuilt alone.
ONE_PROJECTION_UP_TO = 150_000
#: Events per dong and simulated year of the demo generator, for sizes without ``--events``.
EVENTS_PER_DONG_YEAR = 2450
PAGE = 2000
BATCH = 10_000


@dataclass(frozen=True)
class Size:
    """A demo ledger size: ``events`` (``--events``) or ``dongs`` x ``years``."""

    events: int | None = None
    dongs: int = 0
    years: int = 0

    def __str__(self) -> str:
        return f"{self.events}-events" if self.events else f"{self.dongs}dongs-{self.years}y"


def _sizes() -> list[Size]:
    chosen = os.environ.get("CASELEDGER_BENCH_DEMO", "10000,100000,1000000")
    sizes = []
    for part in chosen.split(","):
        item = part.strip().lower()
        if not item:
            continue
        if "x" in item:
            dongs, _, years = item.partition("x")
            sizes.append(Size(dongs=int(dongs), years=int(years or 1)))
        else:
            sizes.append(Size(events=int(item.replace("_", ""))))
    return sizes


def _cache() -> Path:
    chosen = os.environ.get("CASELEDGER_BENCH_CACHE")
    folder = Path(chosen) if chosen else Path(tempfile.gettempdir()) / "caseledger-bench-ledgers"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@functools.cache
def _demo_options() -> str:
    """The installed ``caseledger demo``'s help text (which options it has)."""
    done = subprocess.run(
        [sys.executable, "-m", "caseledger", "demo", "--help"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout


def dongs_years(events: int) -> tuple[int, int]:
    """Dongs and years that give about ``events`` events (for a generator without ``--events``)."""
    dong_years = max(1, round(events / EVENTS_PER_DONG_YEAR))
    if dong_years <= 17:
        return dong_years, 1
    years = min(20, math.ceil(dong_years / 17))
    return min(200, round(dong_years / years)), years


def _generation(size: Size, seed: int) -> tuple[str, list[str]]:
    """The cache file name and the ``caseledger demo`` options for ``size``."""
    options = _demo_options()
    if size.events and "--events" in options:
        name, args = f"demo-n{size.events}-s{seed}.db", ["--events", str(size.events)]
    else:
        dongs, years = dongs_years(size.events) if size.events else (size.dongs, size.years)
        name, args = f"demo-d{dongs}-y{years}-s{seed}.db", ["--dongs", str(dongs), "--years",
                                                            str(years)]  # fmt: skip
    args += ["--seed", str(seed), "--format", "json"]
    if "--progress" in options:
        args.append("--progress")
    return name, args


def demo_ledger(size: Size, request: pytest.FixtureRequest, seed: int = 0) -> Path:
    """The cached demo ledger of this size, generated first if missing."""
    name, args = _generation(size, seed)
    path = _cache() / name
    if path.exists():
        return path
    part = path.with_name(path.name + ".part")
    for suffix in ("", "-wal", "-shm", ".key"):
        Path(f"{part}{suffix}").unlink(missing_ok=True)
    # The same interpreter, so the generator is the caseledger being measured; the
    # master key comes from the environment the benchmarks set. Output capture is
    # lifted so its progress shows on the terminal.
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\ngenerating {path} (caseledger demo {' '.join(args)}), kept for later runs")
        subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [sys.executable, "-m", "caseledger", "--db", str(part), "demo", *args],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    if Path(f"{part}.key").exists():
        Path(f"{part}.key").rename(f"{path}.key")
    part.rename(path)
    return path


def copy_ledger(source: Path, path: Path) -> Path:
    """A fresh copy of the cached ledger ``source`` (and its key file) at ``path``."""
    remove_ledger(path)
    shutil.copyfile(source, path)
    if Path(f"{source}.key").exists():
        shutil.copyfile(f"{source}.key", f"{path}.key")
    return path


def remove_ledger(path: Path) -> None:
    """Delete an SQLite ledger file with its WAL, shared-memory and key files."""
    for suffix in ("", "-wal", "-shm", ".key"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@dataclass
class Demo:
    source: Path
    path: Path
    ledger: Ledger
    events: int
    middle: date

    @property
    def label(self) -> str:
        return f"{self.events:,} events"

    @property
    def large(self) -> bool:
        return self.events >= LARGE

    def rounds(self, rounds: int) -> dict[str, int]:
        """``rounds`` and ``warmup_rounds`` for ``measure``: fewer on a large ledger, more
        on a small one, whose rounds are short enough for the machine's noise to show."""
        if self.large:
            return {"rounds": 1, "warmup_rounds": 0}
        return {"rounds": max(rounds, SMALL_ROUNDS) if self.events < SMALL else rounds}


def _middle_day(ledger: Ledger, events: int) -> date:
    first = next(iter(ledger.events(batch_size=1))).event.occurred_at
    last = next(iter(ledger.events(since=events - 1, batch_size=1))).event.occurred_at
    middle: datetime = first + (last - first) / 2
    return middle.astimezone(UTC).date()


@pytest.fixture(scope="module", params=_sizes(), ids=str)
def demo(bench_dir: Path, request: pytest.FixtureRequest) -> Iterator[Demo]:
    source = demo_ledger(request.param, request)
    path = copy_ledger(source, bench_dir / source.name)
    ledger = Ledger.open(path)
    events = len(ledger)
    yield Demo(source, path, ledger, events, _middle_day(ledger, events))
    ledger.close()
    remove_ledger(path)


@pytest.fixture(scope="module")
def es(demo: Demo) -> Iterator[EsApp]:
    """The demo ledger's log copied into an eventsourcing application (cached too)."""
    path = demo.source.with_name(demo.source.stem + ".eventsourcing.db")
    if not path.exists():
        part = path.with_name(path.name + ".part")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{part}{suffix}").unlink(missing_ok=True)
        building = es_app(part)
        mirror_into(building, demo.ledger)
        building.close()
        part.rename(path)
    app = es_app(path)
    assert app.recorder.max_notification_id() == demo.events
    yield app
    app.close()


def _es_read(app: EsApp) -> Iterator[Any]:
    """Every event of ``app`` in log order, decoded by its mapper, in pages of 2,000."""
    recorder = app.recorder
    mapper = app.mapper
    start = 1
    while True:
        page = recorder.select_notifications(start=start, limit=PAGE)
        for notification in page:
            yield mapper.to_domain_event(notification)
        if len(page) < PAGE:
            return
        start = page[-1].id + 1


_SELECT = (
    "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
    "ORDER BY rowid"
)


def _raw_select(path: Path) -> int:
    conn = sqlite3.connect(path)
    count = sum(1 for _ in conn.execute(_SELECT))
    conn.close()
    return count


# ---------------------------------------------------------------------------
# full rebuild


def test_rebuild_all(demo: Demo, measure: Measure) -> None:
    peak = peak_memory("rebuild", demo.path)
    assert peak["events"] == demo.events
    counted = []
    measure(f"full rebuild, {demo.label}", OURS,
            lambda: counted.append(demo.ledger.projections.rebuild()),
            events=demo.events, peak_mb=peak["peak_mb"], **demo.rounds(3))  # fmt: skip
    assert counted
    assert all(n == demo.events for n in counted)


def test_rebuild_eventsourcing_read_decode(demo: Demo, es: EsApp, measure: Measure) -> None:
    counts = []
    measure(f"full rebuild, {demo.label}", "eventsourcing read + decode",
            lambda: counts.append(sum(1 for _ in _es_read(es))),
            events=demo.events, **demo.rounds(3))  # fmt: skip
    assert counts
    assert all(n == demo.events for n in counts)


def test_rebuild_raw_select(demo: Demo, measure: Measure) -> None:
    counts = []
    measure(f"full rebuild, {demo.label}", "raw sqlite3 SELECT",
            lambda: counts.append(_raw_select(demo.path)),
            events=demo.events, **demo.rounds(3))  # fmt: skip
    assert counts
    assert all(n == demo.events for n in counts)


@pytest.mark.parametrize("name", [p.name for p in PROJECTIONS])
def test_rebuild_one(demo: Demo, measure: Measure, name: str) -> None:
    if demo.events > ONE_PROJECTION_UP_TO:
        pytest.skip(f"each projection alone is rebuilt up to {ONE_PROJECTION_UP_TO:,} events")
    counted = []
    measure(f"rebuild one projection, {demo.label}", name,
            lambda: counted.append(demo.ledger.projections.rebuild([name])),
            events=demo.events, rounds=1, warmup_rounds=0)  # fmt: skip
    assert counted == [demo.events]


# ---------------------------------------------------------------------------
# verify


def test_verify(demo: Demo, measure: Measure) -> None:
    peak = peak_memory("verify", demo.path)
    assert peak["events"] == demo.events
    reports = []
    measure(f"verify, {demo.label}", OURS, lambda: reports.append(demo.ledger.verify()),
            events=demo.events, peak_mb=peak["peak_mb"], **demo.rounds(3))  # fmt: skip
    assert reports
    assert all(r.ok for r in reports)


_LEAF = struct.Struct(">BQ16sQ")


def _hash_floor(path: Path) -> tuple[int, bytes]:
    """The same leaf bytes from one raw SELECT, sha256 of each and of each interior node."""
    conn = sqlite3.connect(path)
    sha = hashlib.sha256
    level = []
    for position, oid, version, topic, state in conn.execute(_SELECT):
        t = topic.encode()
        head = _LEAF.pack(1, position, bytes.fromhex(oid), version)
        sizes = (len(t).to_bytes(2, "big"), len(state).to_bytes(4, "big"))
        leaf = b"".join((head, sizes[0], t, sizes[1], state))
        level.append(sha(b"\x00" + leaf).digest())
    conn.close()
    count = len(level)
    while len(level) > 1:
        paired = [
            sha(b"\x01" + a + b).digest() for a, b in zip(level[::2], level[1::2], strict=False)
        ]
        level = paired + level[len(paired) * 2 :]
    return count, level[0]


def test_verify_hashlib_floor(demo: Demo, measure: Measure) -> None:
    counts = []
    measure(f"verify, {demo.label}", "plain hashlib",
            lambda: counts.append(_hash_floor(demo.path)[0]),
            events=demo.events, **demo.rounds(3))  # fmt: skip
    assert counts
    assert all(n == demo.events for n in counts)


# ---------------------------------------------------------------------------
# export to Parquet


def test_export(demo: Demo, bench_dir: Path, measure: Measure) -> None:
    pytest.importorskip("pyarrow")
    from caseledger.export import export

    out = bench_dir / f"{demo.path.stem}-events.parquet"
    peak = peak_memory("export", demo.path, out)
    assert peak["events"] == demo.events
    rows = []

    def run() -> None:
        summary = export(demo.ledger, out, format="parquet", table="events", deidentify=True)
        rows.append(summary.rows)

    measure(f"export to Parquet, {demo.label}", OURS, run, events=demo.events,
            peak_mb=peak["peak_mb"], **demo.rounds(3))  # fmt: skip
    out.unlink(missing_ok=True)
    assert rows
    assert all(n == demo.events for n in rows)


def _write_parquet(out: Path, schema: Any, batches: Iterator[list[list[Any]]]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    written = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for columns in batches:
            arrays = [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)]
            writer.write_batch(pa.record_batch(arrays, schema=schema))
            written += len(columns[0])
    return written


def _export_floor(path: Path, out: Path) -> int:
    """One raw SELECT of the stored rows, written as they are with pyarrow."""
    import pyarrow as pa

    schema = pa.schema([("position", pa.int64()), ("originator_id", pa.string()),
                        ("originator_version", pa.int64()), ("topic", pa.string()),
                        ("state", pa.binary())])  # fmt: skip
    conn = sqlite3.connect(path)
    cursor = conn.execute(_SELECT)

    def batches() -> Iterator[list[list[Any]]]:
        while rows := cursor.fetchmany(BATCH):
            yield [list(column) for column in zip(*rows, strict=True)]

    written = _write_parquet(out, schema, batches())
    conn.close()
    return written


def test_export_floor(demo: Demo, bench_dir: Path, measure: Measure) -> None:
    pytest.importorskip("pyarrow")
    out = bench_dir / f"{demo.path.stem}-floor.parquet"
    rows = []
    measure(f"export to Parquet, {demo.label}", "raw sqlite3 SELECT + pyarrow",
            lambda: rows.append(_export_floor(demo.path, out)),
            events=demo.events, **demo.rounds(3))  # fmt: skip
    out.unlink(missing_ok=True)
    assert rows
    assert all(n == demo.events for n in rows)


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _export_eventsourcing(app: EsApp, out: Path) -> int:
    """eventsourcing's read and decode, each event's envelope written with pyarrow."""
    import pyarrow as pa

    when = pa.timestamp("us", tz="UTC")
    schema = pa.schema([("originator_id", pa.string()), ("originator_version", pa.int64()),
                        ("timestamp", when), ("event_type", pa.string()),
                        ("occurred_at", when), ("recorded_at", when), ("actor", pa.string()),
                        ("organisation", pa.string()), ("household_id", pa.string())])  # fmt: skip

    def batches() -> Iterator[list[list[Any]]]:
        columns: list[list[Any]] = [[] for _ in schema]
        for e in _es_read(app):
            p = e.payload
            row = (str(e.originator_id), e.originator_version, e.timestamp, e.kind,
                   _when(p.get("occurred_at")), _when(p.get("recorded_at")), p.get("actor"),
                   p.get("organisation"), _text(p.get("household_id")))  # fmt: skip
            for column, value in zip(columns, row, strict=True):
                column.append(value)
            if len(columns[0]) == BATCH:
                yield columns
                columns = [[] for _ in schema]
        if columns[0]:
            yield columns

    return _write_parquet(out, schema, batches())


def test_export_eventsourcing(demo: Demo, es: EsApp, bench_dir: Path, measure: Measure) -> None:
    pytest.importorskip("pyarrow")
    out = bench_dir / f"{demo.path.stem}-eventsourcing.parquet"
    rows = []
    measure(f"export to Parquet, {demo.label}", "eventsourcing read + decode + pyarrow",
            lambda: rows.append(_export_eventsourcing(es, out)),
            events=demo.events, **demo.rounds(3))  # fmt: skip
    out.unlink(missing_ok=True)
    assert rows
    assert all(n == demo.events for n in rows)


# ---------------------------------------------------------------------------
# as-of queries


@pytest.mark.parametrize("axis", ["as_of", "as_of_recorded"])
def test_as_of_caseload(demo: Demo, measure: Measure, axis: str) -> None:
    found = []
    day = demo.middle
    measure(f"as-of caseload ({axis}), {demo.label}", OURS,
            lambda: found.append(len(demo.ledger.caseload(**{axis: day}, today=day))),
            events=1, rounds=20)  # fmt: skip
    assert found
    assert found[0] > 0
    assert len(set(found)) == 1
