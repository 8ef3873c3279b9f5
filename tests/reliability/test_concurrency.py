"""Concurrent writers: processes racing on the same cases lose no update.

Four child processes record supervision entries on the same two cases at once, on an
SQLite file and on PostgreSQL. Two go through :func:`caseledger.retry`, two do not and
count each :class:`~caseledger.ConcurrencyError` they get. Afterwards each case holds
exactly as many entries as the processes say they recorded, its versions run 1..n
without a hole, the Merkle log verifies (PostgreSQL positions may have gaps where a
conflicting insert rolled back), and the read models equal a rebuild. Finally all four
try to close one case: exactly one succeeds, the others are told it is closed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from caseledger import Ledger
from caseledger.events import CaseClosed, SupervisionRecorded
from tests.reliability.children import MASTER_KEY, SUPERVISOR, case_of, plan, record_plan
from tests.reliability.harness import (
    Lines,
    exit_code,
    fork_server,
    read_model_problems,
    record_figures,
    trials,
)
from tests.scenarios import kst

PROCESSES = 4


def _batches(count: int) -> list[int]:
    return [s for s in range(200) if plan(s).batch][:count]


def test_racing_processes_lose_no_update(durable_url: str, tmp_path: Path) -> None:
    backend = "postgres" if durable_url.startswith("postgresql") else "sqlite"
    iterations = max(25, 3 * trials())
    started = time.perf_counter()
    seqs = _batches(3)
    cases = [case_of(s) for s in seqs]
    with Ledger.open(durable_url, master_key=MASTER_KEY) as ledger:
        for seq in seqs:
            record_plan(ledger, plan(seq))
        before = {c: _supervisions(ledger, c) for c in cases}
        meeting = ledger.hold_meeting(
            kind="internal",
            host="jungang-dong",
            agenda=[cases[2]],
            decisions={cases[2]: "close"},
            by=SUPERVISOR,
            at=kst(2022, 4, 1),
        )
    go = tmp_path / "go"
    with fork_server(tmp_path / "children.log") as server:
        pids = []
        for n in range(PROCESSES):
            pids.append(
                server.start(
                    "contend",
                    url=durable_url,
                    cases=[str(c) for c in cases[:2]],
                    retry=n % 2 == 0,
                    seed=n,
                    iterations=iterations,
                    at=kst(2022, 4, 2).isoformat(),
                    channel=str(tmp_path / f"ready-{n}"),
                    go=str(go),
                    result=str(tmp_path / f"result-{n}.json"),
                    close=str(cases[2]),
                    meeting=str(meeting),
                )
            )
        for n in range(PROCESSES):
            Lines(tmp_path / f"ready-{n}").wait_for("ready")
        go.touch()
        codes = [exit_code(server.wait(pid)) for pid in pids]
        assert codes == [0] * PROCESSES, server.errors()
    results = [json.loads((tmp_path / f"result-{n}.json").read_text()) for n in range(PROCESSES)]
    assert [r["unexpected"] for r in results] == [[]] * PROCESSES
    done: Counter[str] = Counter()
    for r in results:
        done.update(r["done"])
    lost = duplicated = 0
    with Ledger.open(durable_url, master_key=MASTER_KEY, projections="follow") as ledger:
        for case in cases[:2]:
            recorded = _supervisions(ledger, case) - before[case]
            lost += max(0, done[str(case)] - recorded)
            duplicated += max(0, recorded - done[str(case)])
            versions = [e.originator_version for e in ledger.history(case)]
            assert versions == list(range(1, len(versions) + 1))
        closing = ledger.history(cases[2])
        assert sum(isinstance(e, CaseClosed) for e in closing) == 1
        assert sorted(r["close"] for r in results) == ["already closed"] * 3 + ["won"]
        report = ledger.verify()
        assert report.ok, report.lines()
        assert read_model_problems(ledger) == []
        positions = [n.id for n in ledger.records()]
        gaps = positions[-1] - len(positions)
    conflicts = sum(r["conflicts"] for r in results)
    record_figures(
        "concurrency: racing writers",
        backend=backend,
        processes=PROCESSES,
        trials=1,
        commands_attempted=PROCESSES * iterations,
        commands_acknowledged=sum(done.values()),
        conflicts_raised=conflicts,
        conflicts_dropped_without_retry=sum(r["conflicts"] for r in results if not r["retry"]),
        lost=lost,
        duplicated=duplicated,
        position_gaps=gaps,
        seconds=round(time.perf_counter() - started, 1),
    )
    assert (lost, duplicated) == (0, 0)
    # With retry, every entry a process attempted was recorded.
    assert all(sum(r["done"].values()) == iterations for r in results if r["retry"])


def _supervisions(ledger: Ledger, case: object) -> int:
    return sum(isinstance(e, SupervisionRecorded) for e in ledger.history(case))  # type: ignore[arg-type]
