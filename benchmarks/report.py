"""The benchmark summary: events per second and the ledger's ratio to each reference.

The benchmark run prints this table at its end. To print it again from saved runs::

    python -m pytest benchmarks --benchmark-only --benchmark-json=run1.json
    python -m benchmarks.report run1.json [run2.json ...]

Given several runs, each variant's figure is its fastest run (with the range over all runs
beside it): other work on the machine only ever slows a run down, so the fastest run is
the one least disturbed.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "OURS",
    "RESULTS",
    "Result",
    "combine",
    "machine",
    "main",
    "results_from_json",
    "table",
]

#: The variant every other variant of a workload is compared with.
OURS = "caseledger"


@dataclass(frozen=True)
class Result:
    """One variant of one workload: events written or read per round, median round time."""

    workload: str
    variant: str
    events_per_round: int
    median_s: float
    #: Over several runs: the fastest and slowest run's median round, in seconds.
    spread_s: tuple[float, float] | None = None

    @property
    def events_per_s(self) -> float:
        return self.events_per_round / self.median_s


#: Filled by the benchmarks as they run, in order.
RESULTS: list[Result] = []


def machine() -> str:
    """One line describing what the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}"
    )


def table(results: list[Result]) -> list[str]:
    """The summary as Markdown table lines, one workload after another."""
    spread = any(r.spread_s is not None for r in results)
    lines = [
        "| workload | variant | events/round "
        + (
            "| median round, best run | events/s, best run | events/s, all runs "
            if spread
            else "| median round | events/s "
        )
        + "| caseledger ÷ this |",
        "| --- | --- | ---: | ---: | ---: | " + ("---: | " if spread else "") + "---: |",
    ]
    for workload in dict.fromkeys(r.workload for r in results):
        rows = [r for r in results if r.workload == workload]
        ours = next((r for r in rows if r.variant == OURS), None)
        for r in rows:
            ratio = ""
            if ours is not None and r is not ours:
                ratio = f"{ours.events_per_s / r.events_per_s:.2f}×"
            cells = [workload, r.variant, f"{r.events_per_round:,}", _duration(r.median_s),
                     f"{r.events_per_s:,.0f}"]  # fmt: skip
            if spread:
                low, high = r.spread_s or (r.median_s, r.median_s)
                slow, fast = r.events_per_round / high, r.events_per_round / low
                cells.append(f"{slow:,.0f}–{fast:,.0f}")
            cells.append(ratio)
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def combine(runs: list[list[Result]]) -> list[Result]:
    """One result per (workload, variant): its fastest run, with the runs' range."""
    if len(runs) == 1:
        return runs[0]
    by_key: dict[tuple[str, str], list[Result]] = {}
    for run in runs:
        for r in run:
            by_key.setdefault((r.workload, r.variant), []).append(r)
    combined = []
    for (workload, variant), found in by_key.items():
        medians = sorted(r.median_s for r in found)
        combined.append(
            Result(
                workload, variant, found[0].events_per_round, medians[0], (medians[0], medians[-1])
            )
        )
    return combined


def results_from_json(data: dict[str, Any]) -> list[Result]:
    """The results saved by ``--benchmark-json``."""
    return [
        Result(
            b["group"],
            b["extra_info"]["variant"],
            b["extra_info"]["events_per_round"],
            b["stats"]["median"],
        )
        for b in data["benchmarks"]
        if "variant" in b.get("extra_info", {})
    ]


def main(argv: list[str] | None = None) -> int:
    """Print the summary table of one or more ``--benchmark-json`` files."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m benchmarks.report RUN.json [RUN.json ...]", file=sys.stderr)
        return 2
    runs = [json.loads(Path(arg).read_text(encoding="utf-8")) for arg in args]
    info = runs[0].get("machine_info", {})
    cpu = info.get("cpu", {})
    print(
        f"{cpu.get('count', '?')} CPUs ({cpu.get('brand_raw', '?')}), "
        f"Python {info.get('python_version', '?')}; {len(runs)} run(s)"
    )
    for line in table(combine([results_from_json(run) for run in runs])):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
