"""Rebuild, verification and as-of queries on ledgers made by the demo generator.

Each size is a fictional district recorded by ``caseledger demo`` (deterministic: the
same dongs, years and seed give the same log). Generating takes a while (about a second
per one to two thousand events), so finished ledgers are kept in a cache folder outside
the repository and reused: ``CASELEDGER_BENCH_CACHE`` (default: ``caseledger-bench-ledgers``
in the system temporary folder). Each benchmark works on a copy, so the cache stays as
generated. ``CASELEDGER_BENCH_DEMO`` chooses the sizes as ``DONGSxYEARS`` items,
comma-separated (default ``4x1,17x3``: about 11 and 100 thousand events).

* ``full rebuild``: ``ledger.projections.rebuild()`` (every projection from the whole
  log, in one transaction), and each projection alone (``rebuild([name])``, one round);
* ``verify``: ``ledger.verify()`` (every leaf recomputed from the stored records and
  compared, the tree root recomputed) against the floor: one raw ``SELECT`` of the same
  rows, ``hashlib.sha256`` of the same leaf bytes and of every interior node;
* ``as-of caseload``: ``ledger.caseload(as_of=...)`` (what was true in the world on a
  day) and ``ledger.caseload(as_of_recorded=...)`` (what the ledger knew then), on the
  middle day of the simulated years; one query per round, so events/s reads queries/s.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from benchmarks.conftest import Measure
from benchmarks.report import OURS
from caseledger import Ledger
from caseledger.projections.engine import PROJECTIONS


def _sizes() -> list[tuple[int, int]]:
    chosen = os.environ.get("CASELEDGER_BENCH_DEMO", "4x1,17x3")
    sizes = []
    for part in chosen.split(","):
        dongs, _, years = part.strip().partition("x")
        sizes.append((int(dongs), int(years or 1)))
    return sizes


def _cache() -> Path:
    chosen = os.environ.get("CASELEDGER_BENCH_CACHE")
    folder = Path(chosen) if chosen else Path(tempfile.gettempdir()) / "caseledger-bench-ledgers"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def demo_ledger(dongs: int, years: int, seed: int = 0) -> Path:
    """The cached demo ledger of this size, generated first if missing."""
    path = _cache() / f"demo-d{dongs}-y{years}-s{seed}.db"
    if path.exists():
        return path
    part = path.with_name(path.name + ".part")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{part}{suffix}").unlink(missing_ok=True)
    # The same interpreter, so the generator is the caseledger being measured; the
    # master key comes from the environment the benchmarks set.
    subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [sys.executable, "-m", "caseledger", "--db", str(part), "demo", "--dongs", str(dongs),
         "--years", str(years), "--seed", str(seed), "--format", "json"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    part.rename(path)
    return path


@dataclass
class Demo:
    path: Path
    ledger: Ledger
    events: int
    years: int

    @property
    def label(self) -> str:
        return f"{self.events:,} events"

    @property
    def middle(self) -> date:
        return date(2022 + self.years // 2, 7 if self.years % 2 else 1, 1)


@pytest.fixture(scope="module", params=_sizes(), ids=lambda s: f"{s[0]}dongs-{s[1]}y")
def demo(bench_dir: Path, request: pytest.FixtureRequest) -> Iterator[Demo]:
    dongs, years = request.param
    source = demo_ledger(dongs, years)
    path = bench_dir / f"demo-{dongs}-{years}.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, path)
    ledger = Ledger.open(path)
    yield Demo(path, ledger, len(ledger), years)
    ledger.close()


def test_rebuild_all(demo: Demo, measure: Measure) -> None:
    counted = []
    measure(f"full rebuild, {demo.label}", OURS,
            lambda: counted.append(demo.ledger.projections.rebuild()),
            events=demo.events, rounds=3)  # fmt: skip
    assert counted
    assert all(n == demo.events for n in counted)


@pytest.mark.parametrize("name", [p.name for p in PROJECTIONS])
def test_rebuild_one(demo: Demo, measure: Measure, name: str) -> None:
    counted = []
    measure(f"rebuild one projection, {demo.label}", name,
            lambda: counted.append(demo.ledger.projections.rebuild([name])),
            events=demo.events, rounds=1, warmup_rounds=0)  # fmt: skip
    assert counted == [demo.events]


def test_verify(demo: Demo, measure: Measure) -> None:
    reports = []
    measure(f"verify, {demo.label}", OURS, lambda: reports.append(demo.ledger.verify()),
            events=demo.events, rounds=3)  # fmt: skip
    assert reports
    assert all(r.ok for r in reports)


_LEAF = struct.Struct(">BQ16sQ")


def _hash_floor(path: Path) -> tuple[int, bytes]:
    """The same leaf bytes from one raw SELECT, sha256 of each and of each interior node."""
    conn = sqlite3.connect(path)
    sha = hashlib.sha256
    level = []
    for position, oid, version, topic, state in conn.execute(
        "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
        "ORDER BY rowid"
    ):
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
            events=demo.events, rounds=3)  # fmt: skip
    assert counts
    assert all(n == demo.events for n in counts)


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
