"""The ``caseledger export`` subcommand: its arguments and what it runs.

``caseledger export --out PATH [--format parquet|csv|jsonl|ocel] [--table events|cases|kpis]
[--deidentify] [--coarsen-dates] [--min-cell N] [--secret-file FILE] [--as-of DATE]
[--period P] [--by dong] [--as WORKER --reason TEXT]``. The format defaults to the one
``--out`` names by its extension (``.parquet``, ``.csv``, ``.jsonl``, ``.ocel.json`` or
``.jsonocel``), else Parquet. Registered in :data:`caseledger.cli.SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from caseledger._format import write_record
from caseledger.export import FORMATS, TABLES
from caseledger.export.deidentify import DEFAULT_MIN_CELL, load_secret
from caseledger.projections.kpis import BY

if TYPE_CHECKING:
    from caseledger.application import Ledger
    from caseledger.cli import Context
    from caseledger.export import ExportSummary

__all__ = ["DESCRIPTION", "EXPORT_FORMATS", "export_arguments", "format_for", "run_export"]

#: The ``--format`` choices of ``caseledger export``.
EXPORT_FORMATS = FORMATS

DESCRIPTION = (
    "Writes the events table (one row per event), the cases table (one row per case) or "
    "the kpis table (monitoring figures per dong) as Parquet, CSV or JSON lines, or the whole "
    "log as an OCEL 2.0 object-centric event log. Personal fields are never exported. An "
    "identified export (real ids) needs --as WORKER and --reason TEXT and leaves a download "
    "access record per household; --deidentify (the default for researchers) pseudonymises "
    "ids with a key that is not written anywhere (--secret-file keeps one for stable "
    "pseudonyms), leaves out worker codes and free text, and suppresses counts below "
    "--min-cell in the kpis table."
)

_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonocel": "ocel",
}


def format_for(out: str) -> str:
    """The export format the file name ``out`` suggests (Parquet when it says none)."""
    name = out.lower()
    if name.endswith((".ocel.json", ".ocel")):
        return "ocel"
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    return "parquet"


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def export_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``caseledger export`` (its own ``--format`` included)."""
    parser.add_argument("--out", required=True, metavar="PATH", help="the file to write")
    parser.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default=argparse.SUPPRESS,
        help="parquet, csv, jsonl or ocel (default: from --out's extension, else parquet)",
    )
    parser.add_argument("--table", choices=TABLES, default="events", help="what to export (events)")
    parser.add_argument(
        "--deidentify",
        action="store_true",
        default=None,
        help="pseudonymise ids, leave out worker codes and free text (default for researchers)",
    )
    parser.add_argument(
        "--coarsen-dates",
        action="store_true",
        help="with --deidentify: cut every date and time to the first day of its month",
    )
    parser.add_argument(
        "--min-cell",
        type=_at_least_one,
        default=DEFAULT_MIN_CELL,
        help=f"with --deidentify: suppress counts below this in the kpis table "
        f"({DEFAULT_MIN_CELL})",
    )
    parser.add_argument(
        "--secret-file",
        metavar="FILE",
        help="with --deidentify: the pseudonym key (made if missing) for pseudonyms that stay "
        "the same across exports; keep it apart from the exports",
    )
    parser.add_argument(
        "--as-of", metavar="DATE", help="only what occurred by this day (2022-12-31)"
    )
    parser.add_argument(
        "--period", metavar="PERIOD", help="only what occurred in 2022, 2022Q1 or 2022-02"
    )
    parser.add_argument("--by", choices=BY, default="dong", help="kpis table: the groups (dong)")
    parser.add_argument(
        "--as",
        dest="account",
        metavar="WORKER",
        help="the worker exporting (needed for an identified export; decides the default)",
    )
    parser.add_argument("--reason", help="why (needed for an identified export: a download)")
    from caseledger.cli import progress_arguments  # the cli imports this module

    progress_arguments(parser)


def run_export(ctx: Context) -> int:
    """Run ``caseledger export``."""
    from caseledger.cli import CommandLineError

    args = ctx.args
    fmt = ctx.format_given or format_for(args.out)
    if fmt not in EXPORT_FORMATS:
        msg = (
            f"--format {fmt} is not an export format: give --format "
            f"{'|'.join(EXPORT_FORMATS)} after `export`"
        )
        raise CommandLineError(msg, exit_code=2)
    ledger = ctx.ledger()
    secret = None
    created = False
    if args.secret_file:
        if args.deidentify is False:
            raise CommandLineError("--secret-file is for de-identified exports", exit_code=2)
        secret, created = load_secret(args.secret_file)
        args.deidentify = True if args.deidentify is None else args.deidentify
    try:
        summary = _export(ctx, ledger, fmt, secret)
    except BaseException:
        if created:  # a refused or failed export leaves no new key file behind
            Path(args.secret_file).unlink(missing_ok=True)
        raise
    if created:
        ctx.err.write(
            f"caseledger: created the pseudonym key file {args.secret_file}; keep it apart "
            "from the exports\n"
        )
    data = {
        "file": str(summary.path),
        "format": summary.format,
        "table": summary.table,
        "rows" if summary.objects is None else "events": summary.rows,
        "de-identified": summary.deidentified,
        "access records": summary.access_records,
        "seconds": round(summary.seconds, 2),
    }
    if summary.objects is not None:
        data["objects"] = ", ".join(f"{k} {v:,}" for k, v in summary.objects.items() if v)
    write_record(ctx.out, data, "table")
    return 0


def _export(ctx: Context, ledger: Ledger, fmt: str, secret: bytes | None) -> ExportSummary:
    args = ctx.args
    with ctx.progress_bar(len(ledger)) as bar:
        if fmt != "ocel" and args.table == "kpis":
            bar.show = False  # the kpis table reads the read models, not the log
        return ledger.export(
            args.out,
            format=fmt,
            table=args.table,
            deidentify=args.deidentify,
            coarsen_dates=args.coarsen_dates,
            min_cell=args.min_cell,
            secret=secret,
            as_of=args.as_of,
            period=args.period,
            by=args.by,
            account=args.account,
            reason=args.reason,
            on_progress=bar.update,
        )
