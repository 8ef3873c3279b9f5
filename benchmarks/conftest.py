"""Shared benchmark plumbing: where the databases live, timing, and the summary table.

Run every benchmark with::

    python -m pytest benchmarks --benchmark-only

(``testpaths`` is ``tests``, so a plain ``pytest`` never runs these.) Each workload is
measured for the ledger and for its references in the same run; at the end a table
gives events per second (from each variant's median round) and the ledger's ratio to
each reference, with peak memory where measured, then how each rate changes with size
(see :mod:`benchmarks.report`). ``CASELEDGER_BENCH_DIR`` puts the
databases in a chosen folder (the disk under it decides what a durable commit costs);
by default they go to a temporary folder.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.report import RESULTS, Result, growth, machine, table

Measure = Callable[..., None]


#: A fixed master key for the benchmark ledgers (personal fields are sealed under it).
BENCH_MASTER_KEY = base64.b64encode(bytes(range(32))).decode("ascii")


@pytest.fixture(scope="session", autouse=True)
def _master_key() -> Iterator[None]:
    """Give the benchmark ledgers a master key unless one is configured already."""
    if os.environ.get("CASELEDGER_MASTER_KEY") or os.environ.get("CASELEDGER_MASTER_KEY_FILE"):
        yield
        return
    os.environ["CASELEDGER_MASTER_KEY"] = BENCH_MASTER_KEY
    yield
    del os.environ["CASELEDGER_MASTER_KEY"]


@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the benchmark databases are created in."""
    chosen = os.environ.get("CASELEDGER_BENCH_DIR")
    if chosen:
        folder = Path(chosen)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("bench")


@pytest.fixture
def measure(benchmark: Any) -> Iterator[Measure]:
    """Time ``target`` for ``rounds`` rounds and record events/s under (workload, variant).

    ``setup`` (optional) runs untimed before each round and returns the round's
    ``(args, kwargs)``, as in ``benchmark.pedantic``. ``peak_mb`` (optional) is the
    workload's peak memory measured apart (see :mod:`benchmarks.peak`); it is kept in
    the saved JSON's ``extra_info`` and shown in the summary.
    """
    recorded: list[tuple[str, str, int, float | None]] = []

    def run(
        workload: str,
        variant: str,
        target: Callable[..., Any],
        *,
        events: int,
        rounds: int,
        warmup_rounds: int = 1,
        setup: Callable[[], tuple[tuple[Any, ...], dict[str, Any]]] | None = None,
        peak_mb: float | None = None,
    ) -> None:
        benchmark.group = workload
        benchmark.extra_info["variant"] = variant
        benchmark.extra_info["events_per_round"] = events
        if peak_mb is not None:
            benchmark.extra_info["peak_rss_mb"] = round(peak_mb, 1)
        benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=warmup_rounds)
        recorded.append((workload, variant, events, peak_mb))

    yield run
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # benchmarks disabled: the target ran once, untimed
        return
    for workload, variant, events, peak_mb in recorded:
        median = stats.stats.median
        benchmark.extra_info["events_per_s"] = round(events / median, 1)
        RESULTS.append(Result(workload, variant, events, median, peak_mb=peak_mb))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    terminalreporter.section("caseledger benchmark summary")
    terminalreporter.write_line(machine())
    for line in table(RESULTS):
        terminalreporter.write_line(line)
    lines = growth(RESULTS)
    if lines:
        terminalreporter.write_line("")
        for line in lines:
            terminalreporter.write_line(line)
