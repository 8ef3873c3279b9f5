"""Peak memory of one workload, run once in a fresh process.

::

    python -m benchmarks.peak {rebuild,verify,export} LEDGER.db [OUT.parquet]

opens the ledger, runs the workload once (``ledger.projections.rebuild()``,
``ledger.verify()``, or a de-identified Parquet export of the events table to ``OUT``)
and prints one JSON line: the process's peak resident set size before the workload
(the interpreter, caseledger, and pyarrow for the export, with the ledger open) and after
it, in MB (on Linux ``VmHWM`` from ``/proc/self/status``, elsewhere
``getrusage(RUSAGE_SELF).ru_maxrss``). :func:`peak_memory` runs it in a child process,
so nothing an earlier benchmark allocated counts.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["WORKLOADS", "main", "peak_memory"]

WORKLOADS = ("rebuild", "verify", "export")
_ROOT = Path(__file__).resolve().parent.parent


def _max_rss_mb() -> float:
    """This process's peak resident set size, in MB.

    On Linux, ``VmHWM`` of ``/proc/self/status``: the high-water mark of this process
    image alone. ``ru_maxrss`` is kept across ``fork`` and ``exec``, so in a child it
    starts at the size of the process that started it.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def run(workload: str, db: Path, out: Path | None) -> dict[str, Any]:
    """Run ``workload`` once on the ledger at ``db``; its peak memory and what it did."""
    from caseledger import Ledger

    if workload not in WORKLOADS:
        msg = f"workload must be one of {', '.join(WORKLOADS)}, not {workload!r}"
        raise SystemExit(msg)
    if workload == "export":
        import pyarrow.parquet  # noqa: F401 - loaded before the baseline is taken

        from caseledger.export import export
    ledger = Ledger.open(db)
    baseline = _max_rss_mb()
    started = time.perf_counter()
    if workload == "rebuild":
        events = ledger.projections.rebuild()
    elif workload == "verify":
        report = ledger.verify()
        if not report.ok:
            raise SystemExit("verification failed")
        events = len(ledger)
    else:
        if out is None:
            raise SystemExit("export needs an output file")
        events = export(ledger, out, format="parquet", table="events", deidentify=True).rows
    seconds = time.perf_counter() - started
    ledger.close()
    return {
        "workload": workload,
        "events": events,
        "seconds": round(seconds, 3),
        "baseline_mb": round(baseline, 1),
        "peak_mb": round(_max_rss_mb(), 1),
    }


def peak_memory(workload: str, db: Path, out: Path | None = None) -> dict[str, Any]:
    """Run ``workload`` on ``db`` once in a fresh Python process; what :func:`run` says."""
    args = [sys.executable, "-m", "benchmarks.peak", workload, str(db)]
    if out is not None:
        args.append(str(out))
    done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        args, check=True, capture_output=True, text=True, cwd=_ROOT
    )
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def main(argv: list[str] | None = None) -> int:
    """Command line: ``WORKLOAD LEDGER [OUT]``; prints one JSON line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print("usage: python -m benchmarks.peak {rebuild,verify,export} LEDGER [OUT]",
              file=sys.stderr)  # fmt: skip
        return 2
    out = Path(args[2]) if len(args) == 3 else None
    print(json.dumps(run(args[0], Path(args[1]), out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
