"""The ``caseledger`` command line (also ``python -m caseledger``): parse, call the library, format.

Every subcommand is one :class:`Subcommand` in :data:`SUBCOMMANDS`: a function that adds
its arguments to an :mod:`argparse` parser and a function that runs it with a
:class:`Context` (the parsed arguments, the lazily opened ledger, and writers for rows
and records in the chosen ``--format``). To add one, write the two functions and add a
line to the table::

    def _kpi_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--period", required=True)

    def _kpi(ctx: Context) -> int:
        ctx.rows(ctx.ledger().kpis(ctx.args.period), [("dong", "동"), ("cases", "사례")])
        return 0

    SUBCOMMANDS = (..., Subcommand("kpi", "KPIs per dong", _kpi_arguments, _kpi))

Errors: a :class:`~caseledger.errors.CaseLedgerError` or a :class:`CommandLineError`
prints one line ``caseledger: error: <message>`` to stderr and exits 1; usage errors
exit 2 (argparse); Ctrl-C exits 130 quietly. Global options (``--db``, ``--format``) may
come before or after the subcommand.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from typing import IO, Any, Literal, TextIO
from uuid import UUID

from caseledger import demo as demo_module
from caseledger import merkle_log
from caseledger._format import (
    FORMATS,
    Column,
    Format,
    write_record,
    write_rows,
)
from caseledger._progress import ProgressBar
from caseledger._version import __version__
from caseledger.application import Ledger
from caseledger.codec import decode_fields
from caseledger.commands import command_json_schema
from caseledger.errors import CaseLedgerError, CorruptRecord, InvalidInput
from caseledger.events import Event
from caseledger.export.command import DESCRIPTION as EXPORT_DESCRIPTION
from caseledger.export.command import export_arguments, run_export
from caseledger.importer import DEFAULT_BATCH_SIZE, MAX_LINE_BYTES, import_lines
from caseledger.keystore import (
    MASTER_KEY_ENV,
    create_key_file,
    find_master_key,
    generate_master_key,
    key_file_beside,
    master_key_text,
)
from caseledger.report import REPORT_DESCRIPTION, report_arguments, run_report
from caseledger.values import LabelledEnum, Stage

__all__ = [
    "SUBCOMMANDS",
    "CommandLineError",
    "Context",
    "Subcommand",
    "build_parser",
    "main",
    "parse_uuid",
    "sqlite_path",
]

PROG = "caseledger"
#: Rows a table shows when no ``--limit`` is given.
TABLE_LIMIT = 100

_ENVELOPE = ("originator_id", "originator_version", "occurred_at", "recorded_at")
_PERSONAL_KEYS = frozenset({"personal"})


class CommandLineError(Exception):
    """A problem with what was asked of the command line (a missing file, a bad option).

    Printed as one line; exits with ``exit_code``.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


LedgerUse = Literal["none", "read", "write"]


@dataclass(frozen=True)
class Subcommand:
    """One subcommand: its name, one-line help, argument adder and runner.

    ``ledger`` says how it uses the ledger at ``--db``: ``"read"`` refuses a database file
    that does not exist (rather than create an empty one), ``"write"`` creates it,
    ``"none"`` never opens it. ``own_format``: the subcommand adds its own ``--format``
    (the file formats it writes) instead of the output formats.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Context], int]
    ledger: LedgerUse = "read"
    description: str = ""
    own_format: bool = False


class Context:
    """What a subcommand runs with: its arguments, the ledger, and output writers."""

    def __init__(
        self,
        args: argparse.Namespace,
        subcommand: Subcommand,
        out: TextIO,
        err: TextIO,
    ) -> None:
        self.args = args
        self.subcommand = subcommand
        self.out = out
        self.err = err
        self.db: str = args.db or os.environ.get("CASELEDGER_DB") or "caseledger.db"
        #: The ``--format`` given, or None when the default (a table) applies.
        self.format_given: str | None = args.format
        #: The ``--policy`` file given (else ``$CASELEDGER_POLICY`` or the default policy).
        self.policy: str | None = getattr(args, "policy", None)
        self._ledger: Ledger | None = None

    @property
    def fmt(self) -> Format:
        """The output format (``table`` unless ``--format`` says otherwise)."""
        return self.format_given or "table"  # type: ignore[return-value]

    def ledger(self, **options: Any) -> Ledger:
        """The ledger at ``--db``, opened on first use (``options`` go to :meth:`Ledger.open`)."""
        if self._ledger is None:
            if self.subcommand.ledger == "read":
                path = sqlite_path(self.db)
                if path is not None and not path.exists():
                    msg = (
                        f"no ledger at {self.db}: the file does not exist; give --db (or set "
                        "CASELEDGER_DB), or create one with `caseledger demo` or "
                        "`caseledger import`"
                    )
                    raise CommandLineError(msg)
            self._ledger = Ledger.open(self.db, **{"policy": self.policy, **options})
        return self._ledger

    def close(self) -> None:
        """Close the ledger if it was opened."""
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def limit(self, default: int | None = TABLE_LIMIT) -> int | None:
        """The row limit: ``--limit`` if given (0: all), else ``default`` for tables only."""
        given: int | None = getattr(self.args, "limit", None)
        if given is not None:
            return given or None
        return default if self.fmt == "table" else None

    def rows(
        self,
        rows: Iterable[Mapping[str, Any]],
        columns: Sequence[Column | tuple[str, str] | str],
        *,
        limit: int | None = None,
        total: int | None = None,
    ) -> int:
        """Write rows in the chosen format (see :func:`caseledger._format.write_rows`)."""
        return write_rows(self.out, rows, columns, self.fmt, limit=limit, total=total)

    def record(self, record: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        """Write one record (a summary) in the chosen format."""
        write_record(self.out, record, self.fmt, headers=headers)

    @contextlib.contextmanager
    def progress_bar(self, total: int | None, unit: str = "events") -> Iterator[ProgressBar]:
        """A progress bar on stderr counting up to ``total`` ``unit``, ended on leaving.

        Drawn as ``--progress`` / ``--no-progress`` say (see :func:`progress_arguments`),
        else only when stderr is a terminal. An error before any progress (bad input
        refused) leaves no empty bar above its message.
        """
        show: bool | None = getattr(self.args, "progress", None)
        bar = ProgressBar(total, stream=self.err, show=show, unit=unit)
        try:
            yield bar
        except BaseException:
            if not bar.done:
                bar.show = False
            raise
        finally:
            bar.close()

    def progress(self, text: str) -> None:
        """Show a progress line on an interactive stderr (overwritten by the next one)."""
        if self.err.isatty():
            self.err.write("\r" + text + "\033[K")
            self.err.flush()

    def progress_done(self) -> None:
        """End the progress line."""
        if self.err.isatty():
            self.err.write("\r\033[K")
            self.err.flush()


def sqlite_path(url: str) -> Path | None:
    """The SQLite file a ``--db`` value names, or None (in memory, or a server URL)."""
    text = url.strip()
    if text == ":memory:":
        return None
    if text.startswith("sqlite:///"):
        return Path(text[len("sqlite:///") :])
    if "://" in text:
        return None
    return Path(text)


def parse_uuid(text: str, name: str) -> UUID:
    """``text`` as a UUID, or :class:`~caseledger.errors.InvalidInput` naming ``name``."""
    try:
        return UUID(text.strip())
    except ValueError:
        msg = f"{name}: {text!r} is not a valid id (expected a UUID)"
        raise InvalidInput(msg, [(name, "not a UUID")]) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


#: The largest count or position a database can hold (a signed 64-bit integer).
_MAX_COUNT = (1 << 63) - 1


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    if value > _MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be at most {_MAX_COUNT}, not {value}")
    return value


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def progress_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--progress`` and ``--no-progress`` (exclusive) for :meth:`Context.progress_bar`."""
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress",
        action="store_const",
        const=True,
        help="show a progress bar on stderr (default: only when stderr is a terminal)",
    )
    shown.add_argument(
        "--no-progress",
        dest="progress",
        action="store_const",
        const=False,
        help="never show the progress bar",
    )


def _structural(value: Any) -> Any:
    """``value`` without personal fields (``personal``, at any depth)."""
    if isinstance(value, Mapping):
        return {k: _structural(v) for k, v in value.items() if k not in _PERSONAL_KEYS}
    if isinstance(value, list | tuple):
        return [_structural(v) for v in value]
    return value


def _english(cls: type[Event]) -> str:
    words = re.findall(r"[A-Z][a-z0-9]*", cls.__name__)
    text = " ".join(words).lower()
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------------------
# demo


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events",
        type=_positive,
        metavar="N",
        help="record exactly N events: the simulation stops there. Alone, it sizes the "
        "district: 17 dongs over one year while that reaches N, then up to "
        f"{demo_module.MAX_DONGS} dongs, then more years; with --dongs the years are chosen, "
        "with --years the dongs, with both they are checked (counting "
        f"{demo_module.EVENTS_PER_DONG_YEAR:,} events a dong and year; at most "
        f"{demo_module.MAX_DONGS * demo_module.MAX_YEARS * demo_module.EVENTS_PER_DONG_YEAR:,})",
    )
    parser.add_argument(
        "--dongs", type=_positive, help="dongs in the district (17; with --events, chosen)"
    )
    parser.add_argument(
        "--years",
        type=_positive,
        help="years to simulate (1; with --events, chosen, and the most simulated)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (0): same seed, same log")
    parser.add_argument("--start-year", type=int, default=2022, help="first simulated year (2022)")
    parser.add_argument(
        "--batch-size", type=_positive, default=1000, help="commands per transaction (1000)"
    )
    progress_arguments(parser)


def _demo(ctx: Context) -> int:
    args = ctx.args
    dongs, years, events = args.dongs, args.years, args.events
    if events is not None:  # refused before anything is written
        dongs, years = demo_module.size(events, dongs=dongs, years=years)
    dongs = 17 if dongs is None else dongs
    years = 1 if years is None else years
    start, end = demo_module.period(args.start_year, years)
    today = datetime.now(UTC).date()
    if end + demo_module.MAX_RECORDING_DELAY >= today:
        msg = (
            f"the simulated years {start.year}-{end.year} reach too close to today (entries are "
            "recorded up to two months late); choose an earlier --start-year"
        )
        raise CommandLineError(msg)
    path = sqlite_path(ctx.db)
    if path is not None and path.exists():
        with Ledger.open(ctx.db) as existing:
            count = len(existing)
        if count:
            msg = (
                f"{ctx.db} already holds {count:,} events; the demo records a simulated district "
                "with simulated recording times, so it only writes to an empty ledger: "
                "give a new file with --db"
            )
            raise CommandLineError(msg)
    _ensure_master_key(ctx, path)
    clock = demo_module.DemoClock()
    # A bulk load: the read models are left alone while the log is written and built in
    # one rebuild at the end (the same rows as keeping them inline, in less time).
    ledger = ctx.ledger(clock=clock, projections="follow")
    if path is None and len(ledger):
        msg = f"{ctx.db} already holds {len(ledger):,} events; the demo needs an empty ledger"
        raise CommandLineError(msg)
    days = (end - start).days + 1
    with ctx.progress_bar(events) as bar:

        def progress(day: Any, commands: int) -> None:
            share = None if events else ((day - start).days + 1) / days
            bar.update(commands, f"{day:%Y-%m}", fraction=share)

        summary = demo_module.generate(
            ledger,
            dongs=dongs,
            years=years,
            seed=args.seed,
            start_year=args.start_year,
            clock=clock,
            batch_size=args.batch_size,
            events=events,
            on_batch=progress,
        )
    started = time.perf_counter() - summary.seconds
    with ctx.progress_bar(len(ledger)) as bar:
        ledger.projections.rebuild(on_progress=lambda done: bar.update(done, "read models"))
    summary = replace(summary, seconds=time.perf_counter() - started)
    _write_demo_summary(ctx, summary)
    return 0


def _ensure_master_key(ctx: Context, path: Path | None) -> None:
    # The demo's (fake) personal fields are sealed, so a master key must exist; for an
    # SQLite file the demo makes one beside it, as `caseledger keygen` would.
    key, _ = find_master_key(None, sqlite_file=path, in_memory=ctx.db.strip() == ":memory:")
    if key is not None:
        return
    if path is None:
        msg = (
            f"the demo records (fake) personal data, sealed under a master key: set "
            f"${MASTER_KEY_ENV} (base64 of 32 random bytes) for {ctx.db}"
        )
        raise CommandLineError(msg)
    if path.parent.is_dir() and not path.is_dir():
        beside = key_file_beside(path)
        create_key_file(beside)
        ctx.err.write(f"{PROG}: created the master key file {beside} (keep it safe)\n")


def _write_demo_summary(ctx: Context, summary: demo_module.DemoSummary) -> None:
    data = asdict(summary)
    if ctx.fmt != "table":
        data["seconds"] = round(summary.seconds, 3)
        ctx.record(data)
        return
    rate = summary.events / summary.seconds if summary.seconds else 0.0
    ctx.record(
        {
            "district": f"{summary.district} (fictional), {summary.dongs} dongs",
            "period": f"{summary.start.isoformat()} – {summary.end.isoformat()}",
            "seed": summary.seed,
            "organisations": f"{summary.organisations:,}",
            "workers": f"{summary.workers:,}",
            "households": f"{summary.households:,}",
            "cases": f"{summary.cases:,}",
            "meetings": f"{summary.meetings:,}",
            "events": f"{summary.events:,}",
            "time": f"{summary.seconds:.1f} s ({rate:,.0f} events/s)",
        }
    )
    ctx.out.write("\ncases by stage\n")
    stages = [
        {"stage": code, "label": _stage_label(code), "cases": n}
        for code, n in summary.cases_by_stage.items()
    ]
    ctx.rows(stages, [("stage", "stage"), ("label", "단계"), ("cases", "cases")])
    ctx.out.write("\nevents by type\n")
    types = [{"type": name, "events": n} for name, n in summary.events_by_type.items()]
    ctx.rows(types, [("type", "event"), ("events", "events")])


def _stage_label(code: str) -> str:
    try:
        return Stage(code).ko
    except ValueError:
        return ""


# ---------------------------------------------------------------------------
# history


def _history_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case_id", metavar="CASE_ID", help="the case's id (a UUID)")
    parser.add_argument(
        "--as",
        dest="account",
        metavar="WORKER",
        help="also show personal fields, read as this worker: checked against the policy and "
        "recorded in the access record (접속기록)",
    )
    parser.add_argument(
        "--reason", help="why personal data is downloaded (needed with --as and json/csv)"
    )
    parser.add_argument("--limit", type=_count, help=f"rows to show (table: {TABLE_LIMIT}; 0: all)")


def _history(ctx: Context) -> int:
    case_id = parse_uuid(ctx.args.case_id, "case_id")
    ledger = ctx.ledger()
    account = ctx.args.account
    if account:
        action = "view" if ctx.fmt == "table" else "download"
        if action == "download" and not ctx.args.reason:
            msg = (
                "writing personal data as json or csv is a download, which needs a stated "
                "reason: add --reason TEXT"
            )
            raise CommandLineError(msg)
        events: list[Any] = ledger.reader(account).history(
            case_id, action=action, reason=ctx.args.reason
        )
    else:
        # Structural fields only: read from the audit trail (caseledger.projections).
        events = ledger.projections.history(case_id)
    personal = bool(account)
    if ctx.fmt == "table":
        columns = [
            Column("version", "#"),
            Column("event", "event"),
            Column("occurred_at", "occurred"),
            Column("recorded_at", "recorded"),
            Column("actor", "actor"),
            Column("organisation", "organisation"),
            Column("details", "details", max_width=100),
        ]
        if personal:
            columns.append(Column("personal", "personal", max_width=80))
        ctx.rows((_history_table_row(e, personal) for e in events), columns, limit=ctx.limit())
    else:
        keys = ["version", "type", "label_ko", "label_en", "occurred_at", "recorded_at",
                "actor", "organisation", "fields"]  # fmt: skip
        ctx.rows((_history_row(e, personal) for e in events), keys, limit=ctx.limit(None))
    return 0


def _fields(event: Event, personal: bool) -> dict[str, Any]:
    data = event.model_dump(exclude=set(_ENVELOPE) | {"actor", "organisation"})
    return data if personal else _structural(data)


def _history_row(event: Event, personal: bool) -> dict[str, Any]:
    cls = type(event)
    return {
        "version": event.originator_version,
        "type": cls.__name__,
        "label_ko": cls.label_ko,
        "label_en": _english(cls),
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "actor": event.actor,
        "organisation": event.organisation,
        "fields": _fields(event, personal),
    }


def _history_table_row(event: Event, personal: bool) -> dict[str, Any]:
    row = _history_row(event, personal)
    row["event"] = f"{row['label_ko']} · {row['label_en']}"
    fields = dict(row["fields"])
    skip = {"policy_version", "taxonomy_version", "household_id"}
    shown = {k: v for k, v in fields.items() if k not in skip}
    private = {k: shown.pop(k) for k in ("personal", "members") if k in shown and personal}
    row["details"] = _details(shown)
    row["personal"] = _details(private)
    if personal and event.redaction is not None:
        # Say why personal fields are empty: erased (파기), or withheld by the policy.
        row["personal"] = f"({event.redaction.reason})"
    return row


def _details(fields: Mapping[str, Any]) -> str:
    return "; ".join(
        f"{key}: {_detail(value)}"
        for key, value in fields.items()
        if value not in (None, "", (), [], {})
    )


def _detail(value: Any) -> str:
    """A field value for people: enums as ``한국어 (english)``, models compactly."""
    if isinstance(value, LabelledEnum):
        return f"{value.ko} ({value.en})" if value.ko else value.value
    if isinstance(value, Mapping):
        inner = ", ".join(
            f"{k}={_detail(v)}" for k, v in value.items() if v not in (None, "", (), [])
        )
        return "{" + inner + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_detail(v) for v in value) + "]"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return _one_line(str(value))


# ---------------------------------------------------------------------------
# events


def _events_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", type=_count, default=0, help="start after this log position (0: the start)"
    )
    parser.add_argument("--limit", type=_count, help="at most this many events (0: all)")


_EVENT_COLUMNS = [
    "position",
    "type",
    "originator_id",
    "originator_version",
    "occurred_at",
    "recorded_at",
    "actor",
    "organisation",
]


def _events(ctx: Context) -> int:
    ledger = ctx.ledger()
    given = ctx.args.limit or None
    rows: Iterator[dict[str, Any]] = _log_rows(ledger, ctx.args.since)
    fmt = ctx.format_given or "json"
    if fmt == "table":
        total = max(0, len(ledger) - ctx.args.since)
        if given is not None:
            total = min(total, given)
            rows = islice(rows, given)
        columns = [Column(k) for k in _EVENT_COLUMNS] + [Column("fields", max_width=80)]
        table_rows = ({**{k: r[k] for k in _EVENT_COLUMNS}, "fields": _rest(r)} for r in rows)
        write_rows(ctx.out, table_rows, columns, "table", limit=ctx.limit(), total=total)
    elif fmt == "csv":
        csv_rows = ({**{k: r[k] for k in _EVENT_COLUMNS}, "fields": _rest(r)} for r in rows)
        write_rows(ctx.out, csv_rows, [*_EVENT_COLUMNS, "fields"], "csv", limit=given)
    else:  # a stream: JSON lines
        write_rows(ctx.out, rows, [], "jsonl", limit=given)
    return 0


def _rest(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in _EVENT_COLUMNS}


def _log_rows(ledger: Ledger, since: int) -> Iterator[dict[str, Any]]:
    # Trusted stored data: decode without validation, and never open sealed fields.
    for record in ledger.records(since):
        try:
            cls, fields = decode_fields(record.topic, record.state)
        except CorruptRecord as e:
            msg = f"log position {record.id}: {e}; `caseledger verify` says whether it was changed"
            raise CorruptRecord(msg, position=record.id) from None
        originator = record.originator_id
        row: dict[str, Any] = {
            "position": record.id,
            "type": cls.__name__,
            "originator_id": originator if isinstance(originator, UUID) else UUID(str(originator)),
            "originator_version": record.originator_version,
        }
        row.update(_structural(fields))
        yield row


# ---------------------------------------------------------------------------
# import


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", metavar="FILE", help="a JSON-lines file of commands, or - for stdin"
    )
    parser.add_argument(
        "--batch-size",
        type=_positive,
        default=DEFAULT_BATCH_SIZE,
        help=f"commands per transaction ({DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--first-line",
        type=_positive,
        default=1,
        help="skip the lines before this one (to resume an import that stopped)",
    )


def _import(ctx: Context) -> int:
    name = ctx.args.file
    source = _open_input(name)
    try:
        ledger = ctx.ledger()

        def progress(line: int, commands: int) -> None:
            ctx.progress(f"line {line:,}  {commands:,} commands applied")

        result = import_lines(
            ledger,
            source,
            batch_size=ctx.args.batch_size,
            first_line=ctx.args.first_line,
            max_line_bytes=MAX_LINE_BYTES,
            progress=progress,
        )
    finally:
        ctx.progress_done()
        if source is not sys.stdin.buffer:
            source.close()
    data = asdict(result)
    data = {"file": "stdin" if name == "-" else name, **data, "seconds": round(result.seconds, 3)}
    ctx.record(data)
    return 0


def _open_input(name: str) -> IO[bytes]:
    if name == "-":
        return sys.stdin.buffer
    path = Path(name)
    if path.is_dir():
        raise CommandLineError(f"{name} is a directory, not a JSON-lines file")
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise CommandLineError(f"{name}: no such file") from None
    except OSError as e:
        raise CommandLineError(f"cannot read {name}: {e.strerror or e}") from None


# ---------------------------------------------------------------------------
# schema


def _schema_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no arguments


def _schema(ctx: Context) -> int:
    ctx.out.write(json.dumps(command_json_schema(), indent=2, ensure_ascii=False, sort_keys=True))
    ctx.out.write("\n")
    return 0


# ---------------------------------------------------------------------------
# erase, access-report, keygen (privacy)


def _aware(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no timezone, e.g. 2023-03-20T10:00+09:00")
    return value


def _erase_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("household_id", metavar="HOUSEHOLD_ID", help="the household's id")
    parser.add_argument("--reason", required=True, help="why (no personal data in it)")
    parser.add_argument("--by", required=True, metavar="WORKER", help="the deciding worker")
    parser.add_argument("--at", type=_aware, help="when it was decided (default: now)")


def _erase(ctx: Context) -> int:
    household = parse_uuid(ctx.args.household_id, "household_id")
    ledger = ctx.ledger()
    at = ctx.args.at or datetime.now(UTC)
    event = ledger.erase_household(household, reason=ctx.args.reason, by=ctx.args.by, at=at)
    ctx.record(
        {
            "household": household,
            "erased": event.occurred_at,
            "reason": ctx.args.reason,
            "by": event.actor,
            "policy_version": event.policy_version,
        }
    )
    return 0


def _access_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--month", required=True, help="the month to inspect, e.g. 2022-02")
    parser.add_argument("--limit", type=_count, help=f"rows to show (table: {TABLE_LIMIT}; 0: all)")


_FINDING_COLUMNS = [
    Column("check", "check"),
    Column("at", "at"),
    Column("account", "account"),
    Column("organisation", "organisation"),
    Column("role", "role"),
    Column("terminal", "terminal"),
    Column("action", "action"),
    Column("household", "household"),
    Column("case", "case"),
    Column("reason", "reason", max_width=40),
    Column("note", "note", max_width=60),
]


def _access_report(ctx: Context) -> int:
    report = ctx.ledger().access_report(ctx.args.month)
    if ctx.fmt == "json":
        ctx.record(report.to_dict())
        return 0
    if ctx.fmt == "table":
        ctx.record(
            {
                "month": f"{report.month} ({report.timezone})",
                "policy": report.policy_version,
                "access log": f"{report.chain.size:,} records, chain verified",
                "records this month": f"{report.records:,}",
                "accounts that read": f"{len(report.reads_per_account):,}",
                "median reads": f"{report.median_reads:g}",
                "findings": f"{len(report.findings):,}",
            }
        )
        ctx.out.write("\nfindings\n")
    ctx.rows(report.rows(), _FINDING_COLUMNS, limit=ctx.limit(None))
    return 0


def _keygen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name", help="make a checkpoint signing key pair with this name (the log's origin)"
    )
    parser.add_argument("--out", metavar="PREFIX", help="write PREFIX.key and PREFIX.pub")
    parser.add_argument("--file", metavar="PATH", help="where to write it (default: beside --db)")
    parser.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help=f"print the key (base64) for ${MASTER_KEY_ENV} instead of writing a file",
    )


def _keygen(ctx: Context) -> int:
    if ctx.args.name or ctx.args.out:
        return _signing_keygen(ctx)
    if ctx.args.print_only:
        ctx.out.write(master_key_text(generate_master_key()) + "\n")
        return 0
    target = ctx.args.file
    if target is None:
        path = sqlite_path(ctx.db)
        if path is None:
            msg = "--db is not an SQLite file: give --file PATH, or use --print"
            raise CommandLineError(msg)
        target = key_file_beside(path)
    create_key_file(target)
    ctx.record({"master key file": str(target), "mode": "0600", "note": "keep it safe"})
    return 0


# ---------------------------------------------------------------------------
# integrity: keygen --name, checkpoint, verify, prove, verify-bundle (caseledger.merkle_log)

#: Exit code of `caseledger verify` when the log is not intact (1 is for errors).
EXIT_NOT_INTACT = 3


def _signing_keygen(ctx: Context) -> int:
    args = ctx.args
    if args.print_only or args.file:
        msg = "--name and --out make a checkpoint signing key pair; --file and --print do not apply"
        raise CommandLineError(msg)
    if not args.name or not args.out:
        raise CommandLineError("a checkpoint signing key pair needs both --name and --out")
    secret, public = merkle_log.write_key_pair(args.out, args.name)
    ctx.record(
        {
            "signer key (secret, 0600)": str(secret),
            "verifier key (hand to auditors)": str(public),
            "name": args.name,
        }
    )
    return 0


def _write_new(path: str, text: str, what: str) -> None:
    try:
        with Path(path).open("x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise CommandLineError(f"{path} exists already: choose another --out") from None
    except OSError as e:
        raise CommandLineError(f"cannot write the {what} {path}: {e.strerror or e}") from None


def _checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", metavar="FILE", required=True, help="the signer key (PREFIX.key)")
    parser.add_argument("--out", metavar="FILE", help="write the checkpoint here (default: stdout)")
    parser.add_argument("--origin", help="the log's name in the checkpoint (default: the key's)")


def _checkpoint(ctx: Context) -> int:
    signer = merkle_log.read_signer_key(ctx.args.key)
    note = ctx.ledger(projections="off").checkpoint(signer, origin=ctx.args.origin)
    if ctx.args.out:
        _write_new(ctx.args.out, note, "checkpoint")
        ctx.err.write(f"{PROG}: wrote {ctx.args.out}: {note.splitlines()[1]} records\n")
    else:
        ctx.out.write(note)
    return 0


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        action="append",
        default=[],
        help="a signed checkpoint to check the log against (repeatable)",
    )
    parser.add_argument("--public-key", metavar="FILE", help="the verifier key (PREFIX.pub)")
    parser.add_argument(
        "--rebuild-leaves",
        action="store_true",
        help="first replace the leaf cache with leaves recomputed from the records as they "
        "are now (after an investigated incident; signed checkpoints still tell)",
    )
    progress_arguments(parser)


def _verify(ctx: Context) -> int:
    args = ctx.args
    if args.checkpoint and not args.public_key:
        raise CommandLineError("--checkpoint needs --public-key to check its signature")
    notes = [merkle_log.read_checkpoint(path) for path in args.checkpoint]
    key = merkle_log.read_verifier_key(args.public_key) if args.public_key else None
    # No read models: catching them up would apply records that may be tampered with.
    ledger = ctx.ledger(projections="off")
    if args.rebuild_leaves:
        count = ledger.merkle.rebuild()
        ctx.err.write(f"{PROG}: rebuilt the leaf cache from {count:,} records\n")
    with ctx.progress_bar(len(ledger)) as bar:
        report = ledger.verify(notes, key, on_progress=bar.update)
    if ctx.fmt != "table":
        ctx.record(
            {
                "intact": report.ok,
                "summary": report.summary(),
                "records": report.records,
                "last_position": report.last_position,
                "root": base64.b64encode(report.root).decode(),
                "findings": [
                    {"kind": f.kind, "positions": list(f.positions), "message": f.message}
                    for f in report.findings
                ],
                "omitted": report.omitted,
                "checkpoints": [
                    {
                        "origin": c.origin,
                        "size": c.size,
                        "matches": c.matches,
                        "consistent_with_previous": c.consistent,
                    }
                    for c in report.checkpoints
                ],
            }
        )
    elif report.ok:
        ctx.out.write(report.summary() + "\n")
    else:
        ctx.out.write("\n".join(report.lines()) + "\n")
    return 0 if report.ok else EXIT_NOT_INTACT


def _prove_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case_id", metavar="CASE_ID", help="the case's id (a UUID)")
    parser.add_argument("--key", metavar="FILE", required=True, help="the signer key (PREFIX.key)")
    parser.add_argument("--out", metavar="FILE", required=True, help="where to write the bundle")
    parser.add_argument("--origin", help="the log's name in the checkpoint (default: the key's)")


def _prove(ctx: Context) -> int:
    try:
        case_id = UUID(ctx.args.case_id)
    except ValueError:
        raise CommandLineError(f"{ctx.args.case_id!r} is not a case id (a UUID)") from None
    signer = merkle_log.read_signer_key(ctx.args.key)
    bundle = ctx.ledger(projections="off").prove(case_id, signer, origin=ctx.args.origin)
    _write_new(ctx.args.out, bundle.to_json(), "proof bundle")
    size = bundle.checkpoint.splitlines()[1]
    ctx.out.write(
        f"wrote {ctx.args.out}: {len(bundle.records)} record(s) of case {case_id}, "
        f"with inclusion proofs in the log of {size} records\n"
    )
    return 0


def _verify_bundle_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="a proof bundle (caseledger prove)")
    parser.add_argument(
        "--public-key", metavar="FILE", required=True, help="the verifier key (PREFIX.pub)"
    )


def _verify_bundle(ctx: Context) -> int:
    bundle = merkle_log.read_bundle(ctx.args.bundle)
    key = merkle_log.read_verifier_key(ctx.args.public_key)
    ctx.out.write(merkle_log.verify_bundle(bundle, key).summary() + "\n")
    return 0


# ---------------------------------------------------------------------------
# read models: caseload, kpi, meetings, due, rebuild, project (caseledger.projections)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2023-03-01") from None


def _moment(text: str) -> date | datetime:
    """A date (the whole day) or a timezone-aware date-time."""
    if len(text.strip()) == 10:
        return _day(text)
    return _aware(text)


def _read_model_filters(parser: argparse.ArgumentParser, *, worker: bool = True) -> None:
    parser.add_argument("--dong", help="only this dong")
    parser.add_argument("--district", help="only this district (시군구)")
    parser.add_argument("--organisation", metavar="CODE", help="only this organisation")
    if worker:
        parser.add_argument("--worker", metavar="CODE", help="only this worker's cases")


def _axes_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as-of",
        type=_moment,
        metavar="DATE",
        help="what was true in the world then: entries that occurred by then, including "
        "those recorded later (a date covers the whole day)",
    )
    parser.add_argument(
        "--as-recorded",
        type=_moment,
        metavar="DATETIME",
        help="what the ledger knew then: only entries recorded by then (the auditor's replay)",
    )


def _local(ctx: Context, value: Any) -> Any:
    # Times in the reporting timezone, the one the figures are counted in.
    if isinstance(value, datetime):
        return value.astimezone(ctx.ledger().projections.tz)
    return value


def _caseload_arguments(parser: argparse.ArgumentParser) -> None:
    _axes_arguments(parser)
    _read_model_filters(parser)
    parser.add_argument("--stage", choices=[s.value for s in Stage], help="only this stage")
    parser.add_argument("--closed", action="store_true", help="include closed cases")
    parser.add_argument("--today", type=_day, help="count days and due dates to this day")
    parser.add_argument("--limit", type=_count, help=f"rows to show (table: {TABLE_LIMIT}; 0: all)")


_CASELOAD_COLUMNS = [
    Column("case_id", "case", max_width=None),
    Column("dong", "동"),
    Column("worker", "worker"),
    Column("stage", "단계"),
    Column("track", "구분"),
    Column("level", "수준"),
    Column("days_in_stage", "days"),
    Column("last_checked", "last check"),
    Column("next_due", "next due"),
    Column("next_due_kind", "due"),
]


_CASELOAD_KEYS = [
    "case_id", "household_id", "dong", "district", "organisation", "worker", "stage", "track",
    "level", "stage_since", "days_in_stage", "opened_at", "last_checked_at", "next_due",
    "next_due_kind", "closed_at", "closure_reason", "reopened",
]  # fmt: skip


def _caseload(ctx: Context) -> int:
    args = ctx.args
    entries = ctx.ledger().caseload(
        as_of=args.as_of, as_of_recorded=args.as_recorded, dong=args.dong,
        district=args.district, organisation=args.organisation, worker=args.worker,
        stage=args.stage, include_closed=args.closed, today=args.today,
    )  # fmt: skip
    rows = []
    for entry in entries:
        row = {k: _local(ctx, v) for k, v in asdict(entry).items()}
        if ctx.fmt == "table":
            checked = row["last_checked_at"]
            row["last_checked"] = checked.date() if checked is not None else None
        rows.append(row)
    columns = _CASELOAD_COLUMNS if ctx.fmt == "table" else _CASELOAD_KEYS
    ctx.rows(rows, columns, limit=ctx.limit())
    return 0


def _kpi_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--period", required=True, help="a year (2022), a month (2022-02) or a quarter (2022Q1)"
    )
    parser.add_argument(
        "--by", choices=("dong", "district", "organisation", "worker"), help="one group per …"
    )
    parser.add_argument(
        "--compare",
        choices=("previous", "none"),
        default="previous",
        help="show the previous period of the same length beside it (previous)",
    )
    _axes_arguments(parser)
    _read_model_filters(parser)
    parser.add_argument("--limit", type=_count, help="rows to show (table: all; 0: all)")


def _kpi(ctx: Context) -> int:
    args = ctx.args
    report = ctx.ledger().kpis(
        args.period, by=args.by, compare_previous=args.compare == "previous", dong=args.dong,
        district=args.district, organisation=args.organisation, worker=args.worker,
        as_of=args.as_of, as_of_recorded=args.as_recorded,
    )  # fmt: skip
    figures = [asdict(f) for f in report.figures]
    if ctx.fmt == "json":
        ctx.record({"period": report.period, "previous_period": report.previous_period,
                    "by": report.by, "figures": figures})  # fmt: skip
        return 0
    if ctx.fmt == "csv":
        rows = [{"period": report.period, "previous_period": report.previous_period, **f}
                for f in figures]  # fmt: skip
        keys = ["period", "previous_period", "group", "metric", "value", "previous", "change"]
        ctx.rows(rows, keys)
        return 0
    versus = f" against {report.previous_period}" if report.previous_period else ""
    ctx.out.write(f"{report.period}{versus}\n")
    for row in figures:
        row["group"] = row["group"] if row["group"] is not None else "(all)"
    columns = [Column("group", report.by or "", max_width=30), Column("metric", "metric"),
               Column("value", report.period)]  # fmt: skip
    if report.previous_period:
        columns += [Column("previous", report.previous_period), Column("change", "change")]
    ctx.rows(figures, columns, limit=ctx.limit(None))
    return 0


def _meetings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--period", help="only meetings held in 2022, 2022-02 or 2022Q1")
    parser.add_argument("--kind", choices=("internal", "integrated", "expert"))
    parser.add_argument("--host", metavar="CODE", help="only meetings this organisation held")
    _read_model_filters(parser, worker=False)
    parser.add_argument("--limit", type=_count, help=f"rows to show (table: {TABLE_LIMIT}; 0: all)")


def _meetings(ctx: Context) -> int:
    args = ctx.args
    if args.organisation is not None and args.host is None:
        args.host = args.organisation
    found = ctx.ledger().meetings(period=args.period, kind=args.kind, host=args.host,
                                  dong=args.dong, district=args.district)  # fmt: skip
    rows = []
    for m in found:
        row = {k: _local(ctx, v) for k, v in asdict(m).items()}
        row["attendees"] = [{"organisation": o, "role": r} for o, r in m.attendees]
        row["cases"] = [
            {"case_id": c.case_id, "decision": c.decision, "actions": list(c.actions)}
            for c in m.cases
        ]
        row["attending"] = ", ".join(m.attending_organisations)
        row["discussed"] = len(m.cases)
        row["decided"] = ", ".join(f"{k} {n}" for k, n in sorted(m.decisions.items()))
        rows.append(row)
    if ctx.fmt == "table":
        columns: list[Column | str] = [
            Column("held_at", "held"), Column("kind", "회의"), Column("host", "host"),
            Column("title", "title", max_width=30),
            Column("attending", "attending", max_width=80),
            Column("discussed", "cases"), Column("decided", "decisions", max_width=40),
        ]  # fmt: skip
    else:
        columns = ["meeting_id", "held_at", "recorded_at", "kind", "host", "host_dong",
                   "host_district", "title", "recorded_by", "attendees", "cases"]  # fmt: skip
    ctx.rows(rows, columns, limit=ctx.limit())
    return 0


def _due_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overdue", action="store_true", help="only what is overdue")
    parser.add_argument("--today", type=_day, help="the day to count from (default: today)")
    _read_model_filters(parser)
    parser.add_argument("--limit", type=_count, help=f"rows to show (table: {TABLE_LIMIT}; 0: all)")


def _due(ctx: Context) -> int:
    args = ctx.args
    items = ctx.ledger().due(overdue_only=args.overdue, today=args.today, dong=args.dong,
                             district=args.district, organisation=args.organisation,
                             worker=args.worker)  # fmt: skip
    rows = [asdict(item) for item in items]
    columns: list[Column | str] = [
        Column("due_on", "due"), Column("kind", "what"), Column("days_overdue", "days late"),
        Column("case_id", "case", max_width=None), Column("stage", "단계"),
        Column("worker", "worker"), Column("dong", "동"),
    ]  # fmt: skip
    if ctx.fmt != "table":
        columns = ["due_on", "kind", "overdue", "days_overdue", "case_id", "stage", "worker",
                   "organisation", "dong", "district"]  # fmt: skip
    ctx.rows(rows, columns, limit=ctx.limit())
    return 0


def _rebuild_arguments(parser: argparse.ArgumentParser) -> None:
    progress_arguments(parser)


def _rebuild(ctx: Context) -> int:
    ledger = ctx.ledger(projections="follow")
    with ctx.progress_bar(len(ledger)) as bar:
        started = time.perf_counter()
        count = ledger.rebuild(on_progress=bar.update)
        seconds = time.perf_counter() - started
    ctx.record(
        {
            "events": count,
            "seconds": round(seconds, 3),
            "events_per_second": round(count / seconds) if seconds else None,
            "projections": ledger.projections.positions(),
        }
    )
    return 0


def _project_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--follow", action="store_true", help="keep following the log until interrupted"
    )
    parser.add_argument(
        "--poll", type=float, default=1.0, metavar="SECONDS", help="how often to look (1.0)"
    )
    parser.add_argument("--once", action="store_true", help="apply what is new, then stop")
    parser.add_argument(
        "--batch-size", type=_positive, default=1000, help="events per transaction (1000)"
    )


def _project(ctx: Context) -> int:
    args = ctx.args
    ledger = ctx.ledger(projections="follow")
    if args.follow and not args.once:
        done = 0

        def progress(batch: int, position: int) -> None:
            nonlocal done
            done += batch
            ctx.progress(f"applied {done:,} events, at log position {position:,}")

        ledger.projections.follow(poll=args.poll, batch_size=args.batch_size,
                                  on_progress=progress)  # fmt: skip
        return 0
    applied = ledger.project(batch_size=args.batch_size)
    ctx.record({"applied": applied, "projections": ledger.projections.positions()})
    return 0


# ---------------------------------------------------------------------------
# The table of subcommands, and the entry point

SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        "demo",
        "record a realistic synthetic district into an empty ledger",
        _demo_arguments,
        _demo,
        "write",
        "Simulates one fictional district (dong welfare centres, the district Hope Welfare "
        "Support Team, private partners) and records it through the ledger's commands, with "
        "simulated recording times. The same --seed gives the same log (and with --events, "
        "the same N and --seed). A progress bar shows on stderr when it is a terminal. The "
        "read models are built once, from the whole log, after it is recorded.",
    ),
    Subcommand(
        "history",
        "a case's events in order, with Korean and English labels",
        _history_arguments,
        _history,
        "read",
        "Structural fields only, unless --as names the worker reading personal data.",
    ),
    Subcommand(
        "events",
        "the whole log as JSON lines (structural fields only)",
        _events_arguments,
        _events,
        "read",
        "Streams every event from --since on: position, type, originator, times, actor and the "
        "structural fields. JSON lines by default; --format csv or table also work.",
    ),
    Subcommand(
        "import",
        "apply commands given as JSON lines (see `caseledger schema`)",
        _import_arguments,
        _import,
        "write",
        "Lines are applied in transactions of --batch-size; the first bad line stops the "
        "import and nothing from its batch is written.",
    ),
    Subcommand(
        "schema", "print the JSON Schema of one import line", _schema_arguments, _schema, "none"
    ),
    Subcommand(
        "erase",
        "destroy a household's personal data (파기)",
        _erase_arguments,
        _erase,
        "read",
        "Destroys the household's data key and records HouseholdErased: its personal fields "
        "can no longer be read from any file; structure, counts and the Merkle log stay. The "
        "policy decides who may, and its retention rule when.",
    ),
    Subcommand(
        "access-report",
        "the monthly inspection of access records (접속기록 점검)",
        _access_report_arguments,
        _access_report,
        "read",
        "Verifies the access log's hash chain, then lists downloads with their reasons, reads "
        "outside the reader's caseload or organisation, reads outside working hours, and "
        "unusual volumes per account, as the policy configures them.",
    ),
    Subcommand(
        "keygen",
        "create a master key (a 0600 key file beside --db, or --print it); with --name and "
        "--out, a checkpoint signing key pair",
        _keygen_arguments,
        _keygen,
        "none",
        "The master key wraps the per-household data keys that seal personal fields. "
        "Production deployments keep it outside the database folder: set "
        f"${MASTER_KEY_ENV} or $CASELEDGER_MASTER_KEY_FILE. With --name ORIGIN --out PREFIX "
        "it makes an Ed25519 key pair for signed checkpoints instead: PREFIX.key (the signer, "
        "secret, 0600) and PREFIX.pub (the verifier key, for auditors).",
    ),
    Subcommand(
        "caseload",
        "open cases with their stage, worker and next due date (사례관리 현황)",
        _caseload_arguments,
        _caseload,
        "read",
        "Every case not closed (--closed: closed ones too), now or at a point in time: "
        "--as-of for what was true then, --as-recorded for what the ledger knew then.",
    ),
    Subcommand(
        "kpi",
        "monitoring figures per period, beside the previous period",
        _kpi_arguments,
        _kpi,
        "read",
        "Discoveries, consultations, selections, meetings, service links and referrals, "
        "service checks, intake to plan, closures and open caseload, per dong, district, "
        "organisation or worker (--by) for a year, quarter or month.",
    ),
    Subcommand(
        "meetings",
        "the case meeting register: kind, host, attendees, cases and decisions",
        _meetings_arguments,
        _meetings,
        "read",
    ),
    Subcommand(
        "due",
        "what is due and overdue: assessment, selection, plan, monthly check, follow-up",
        _due_arguments,
        _due,
        "read",
    ),
    Subcommand(
        "rebuild",
        "drop every read model and rebuild it from the log",
        _rebuild_arguments,
        _rebuild,
        "read",
        "Replays the whole log into the caseload, audit trail, KPI and meeting tables in one "
        "transaction, and prints how fast it went.",
    ),
    Subcommand(
        "project",
        "apply new events to the read models (--follow: keep following the log)",
        _project_arguments,
        _project,
        "read",
        "For ledgers whose writers run with projections='follow' (several writers on "
        "PostgreSQL): applies the log from where the read models stopped, in transactions "
        "of --batch-size, and resumes there after a crash.",
    ),
    Subcommand(
        "checkpoint",
        "sign a checkpoint of the log now (C2SP signed note), for an auditor to keep",
        _checkpoint_arguments,
        _checkpoint,
        "read",
        "Signs the log's size and Merkle root with --key. Hand the checkpoint to someone "
        "other than the database's operator: `caseledger verify --checkpoint` later proves "
        "the history it covers was not changed.",
    ),
    Subcommand(
        "verify",
        "recompute the Merkle log from the records; check signed checkpoints",
        _verify_arguments,
        _verify,
        "read",
        "Recomputes every leaf from the stored records, compares them with the leaf cache, "
        "each --checkpoint's root and the consistency between checkpoints. Exit 0 with one "
        f"line when intact; otherwise exit {EXIT_NOT_INTACT} with the positions modified, "
        "deleted, inserted, reordered or cut off.",
    ),
    Subcommand(
        "prove",
        "write a proof bundle: a case's records, inclusion proofs, a signed checkpoint",
        _prove_arguments,
        _prove,
        "read",
        "`caseledger verify-bundle` checks the bundle offline, with no database.",
    ),
    Subcommand(
        "verify-bundle",
        "check a proof bundle offline (no database)",
        _verify_bundle_arguments,
        _verify_bundle,
        "none",
        "Checks the checkpoint's signature with --public-key, recomputes each record's leaf "
        "from the bytes in the bundle and checks its inclusion proof.",
    ),
    Subcommand(
        "export",
        "write the events, cases or kpis table (Parquet, CSV, JSON lines) or an OCEL 2.0 log",
        export_arguments,
        run_export,
        "read",
        EXPORT_DESCRIPTION,
        own_format=True,
    ),
    Subcommand(
        "report",
        "write the visual HTML report for a district's performance-sharing meeting",
        report_arguments,
        run_report,
        "read",
        REPORT_DESCRIPTION,
    ),
)


def build_parser(subcommands: Sequence[Subcommand] = SUBCOMMANDS) -> argparse.ArgumentParser:
    """The argument parser of the command line."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: given after the subcommand, an option must not be reset by the parent.
    common.add_argument(
        "--db",
        metavar="PATH_OR_URL",
        default=argparse.SUPPRESS,
        help="the ledger: an SQLite file, :memory: or a postgresql:// URL "
        "(default: $CASELEDGER_DB or ./caseledger.db)",
    )
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument(
        "--format", choices=FORMATS, default=argparse.SUPPRESS, help="output format (table)"
    )
    common.add_argument(
        "--policy",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="the authority policy (JSON) in force (default: $CASELEDGER_POLICY or the "
        "policy shipped with caseledger)",
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="An event-sourced ledger for integrated case management (통합사례관리).",
        parents=[common, output],
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND", required=True)
    for entry in subcommands:
        child = sub.add_parser(
            entry.name,
            help=entry.help,
            description=entry.description or entry.help,
            parents=[common] if entry.own_format else [common, output],
        )
        entry.add_arguments(child)
        child.set_defaults(_entry=entry)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    for arg in sys.argv[1:] if argv is None else argv:
        # Bytes that are not UTF-8 arrive as lone surrogates, which no database stores.
        if not arg.isascii() and re.search("[\ud800-\udfff]", arg):
            shown = _one_line(arg.encode("utf-8", "backslashreplace").decode("utf-8"))
            sys.stderr.write(f"{PROG}: error: argument '{shown}' is not valid UTF-8 text\n")
            return 2
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error (2)
        return e.code if isinstance(e.code, int) else 2
    args.db = getattr(args, "db", None)
    args.format = getattr(args, "format", None)
    out, err = sys.stdout, sys.stderr
    entry: Subcommand = args._entry
    ctx = Context(args, entry, out, err)
    try:
        return entry.run(ctx)
    except (CaseLedgerError, CommandLineError) as e:
        ctx.progress_done()
        err.write(f"{PROG}: error: {_one_line(str(e)) or type(e).__name__}\n")
        return e.exit_code if isinstance(e, CommandLineError) else 1
    except KeyboardInterrupt:
        ctx.progress_done()
        return 130
    except BrokenPipeError:
        # The reader went away (`caseledger events | head`): stop quietly, and keep
        # Python from complaining when it flushes stdout at exit.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 141
    finally:
        ctx.close()
