"""The benchmark summary: events per second and the ledger's ratio to each reference.

The benchmark run prints this table at its end, with the peak memory of the workloads
measured in a fresh process (rebuild, verify, export), and a second table of how each
workload's rate changes with its size (or with the number of PostgreSQL writers). To
print them again from saved runs::

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
    "growth",
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
    #: Peak resident memory (MB) of a fresh process running the workload once, if measured.
    peak_mb: float | None = None

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
    memory = any(r.peak_mb is not None for r in results)
    lines = [
        "| workload | variant | events/round "
        + (
            "| median round, best run | events/s, best run | events/s, all runs "
            if spread
            else "| median round | events/s "
        )
        + "| caseledger ÷ this |"
        + (" peak memory |" if memory else ""),
        "| --- | --- | ---: | ---: | ---: | "
        + ("---: | " if spread else "")
        + "---: |"
        + (" ---: |" if memory else ""),
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
            if memory:
                cells.append("" if r.peak_mb is None else f"{r.peak_mb:,.0f} MB")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def growth(results: list[Result]) -> list[str]:
    """How each variant's rate changes along a workload's sizes (or writers).

    Workloads named ``"<name>, <size>"`` (``full rebuild, 10,000 events``,
    ``PostgreSQL single command, 4 writers``) measured at two or more sizes give one
    row per variant: events/s at each size, and the last size's rate ÷ the first's
    (1.00 is a flat cost per event; for writers, how throughput scales).
    """
    by_name: dict[str, dict[str, dict[str, Result]]] = {}
    for r in results:
        name, sep, size = r.workload.rpartition(", ")
        if not sep:
            continue
        by_name.setdefault(name, {}).setdefault(r.variant, {})[size] = r
    lines: list[str] = []
    for name, variants in by_name.items():
        for variant, sized in variants.items():
            if len(sized) < 2:
                continue
            rows = list(sized.items())
            rates = "; ".join(f"{size}: {r.events_per_s:,.0f}/s" for size, r in rows)
            ratio = rows[-1][1].events_per_s / rows[0][1].events_per_s
            lines.append(f"| {name} | {variant} | {rates} | {ratio:.2f}× |")
    if not lines:
        return []
    return [
        "| workload | variant | events/s by size | last ÷ first |",
        "| --- | --- | --- | ---: |",
        *lines,
    ]


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
        peaks = [r.peak_mb for r in found if r.peak_mb is not None]
        combined.append(
            Result(
                workload,
                variant,
                found[0].events_per_round,
                medians[0],
                (medians[0], medians[-1]),
                max(peaks) if peaks else None,
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
            peak_mb=b["extra_info"].get("peak_rss_mb"),
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
    combined = combine([results_from_json(run) for run in runs])
    for line in table(combined):
        print(line)
    lines = growth(combined)
    if lines:
        print()
        for line in lines:
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
