"""Exports for researchers and supervisors: tables (Parquet, CSV, JSON lines) and OCEL 2.0.

Three tables (columns in :mod:`caseledger.export.columns`, and ``docs/exports.md``):

``events``
    one row per event, in log order: ids, type, occurred and recorded times, dong,
    district, organisation, sector, actor and role, and every structural field;
``cases``
    one row per case: where it is, its stage, track and level, stage timestamps, closure
    reason, and counts of links, checks, referrals and meetings;
``kpis``
    the monitoring figures of a period per dong (district, organisation), with the
    previous period beside them (:meth:`caseledger.Ledger.kpis`).

and the log as an object-centric event log (``format="ocel"``,
:mod:`caseledger.export.ocel`). Everything streams: the log is read in batches and
written as it is read, so an export never holds the whole log in memory.

Personal fields are never exported: exports read the stored records without keys. An
*identified* export still carries the real ids (which link back to the households) and
worker codes, so :func:`export` writes one only for a named account whose role may read
personal data, with a stated reason, and appends a ``download`` access record for each
household in it. A *de-identified* export (``deidentify=True``; the default for roles
that may not read personal data, such as researchers) replaces ids with keyed
pseudonyms and leaves worker codes and free text out; see
:mod:`caseledger.export.deidentify`::

    from caseledger.export import export
    export(ledger, "events.parquet", table="events", deidentify=True, period="2022")

In a notebook, :func:`to_arrow` (also ``ledger.to_arrow``), :func:`to_pandas` and
:func:`to_polars` give the same tables in memory (``pip install 'caseledger[arrow]'``).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from caseledger.access import AccessAction, AccessEntry, current_terminal
from caseledger.errors import AuthorityError, ConfigurationError, InvalidInput
from caseledger.export.columns import CASE_COLUMNS, EVENT_COLUMNS, KPI_COLUMNS, Column, columns_of
from caseledger.export.deidentify import DEFAULT_MIN_CELL, Deidentifier, load_secret
from caseledger.export.log import Window, read_log
from caseledger.export.ocel import write_ocel
from caseledger.export.sinks import TABLE_FORMATS, write_csv, write_jsonl, write_parquet
from caseledger.export.tables import (
    TABLES,
    arrow_schema,
    record_batches,
    require_pyarrow,
    table_rows,
)
from caseledger.projections.periods import Period
from caseledger.registry import Worker

if TYPE_CHECKING:
    import pyarrow as pa

    from caseledger.application import Ledger

__all__ = [
    "CASE_COLUMNS",
    "DEFAULT_MIN_CELL",
    "EVENT_COLUMNS",
    "FORMATS",
    "KPI_COLUMNS",
    "TABLES",
    "Column",
    "Deidentifier",
    "ExportSummary",
    "columns_of",
    "export",
    "load_secret",
    "to_arrow",
    "to_pandas",
    "to_polars",
]

#: Export file formats.
FORMATS = (*TABLE_FORMATS, "ocel")


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export` wrote."""

    path: Path
    format: str
    #: ``events``, ``cases`` or ``kpis``; ``events`` for OCEL.
    table: str
    #: Rows written (OCEL: events).
    rows: int
    #: OCEL only: objects written, per object type.
    objects: dict[str, int] | None
    deidentified: bool
    coarse_dates: bool
    #: ``download`` access records appended (identified exports: one per household).
    access_records: int
    seconds: float


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        msg = f"{name}: {value!r} is not one of {', '.join(choices)}"
        raise InvalidInput(msg, [(name, "unknown")])


def _may_read_personal(ledger: Ledger, account: str) -> tuple[bool, str, Worker]:
    """Whether ``account`` may read every case's personal data; the rule and the worker."""
    worker = ledger.worker(account)
    organisation = ledger.organisation(worker.organisation)
    rule = ledger.policy.read_rule(worker.role, organisation.sector)
    allowed = rule is not None and rule.personal and rule.cases == "any"
    return allowed, rule.id if rule is not None else "default-deny", worker


def export(
    ledger: Ledger,
    out: str | Path,
    *,
    format: str = "parquet",
    table: str = "events",
    deidentify: bool | None = None,
    coarsen_dates: bool = False,
    min_cell: int = DEFAULT_MIN_CELL,
    secret: bytes | None = None,
    as_of: date | datetime | str | None = None,
    period: str | Period | None = None,
    by: str = "dong",
    account: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
    batch_size: int = 10_000,
    on_progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Write ``table`` of ``ledger`` to the file ``out`` in ``format``; see the module doc.

    ``format`` is ``parquet``, ``csv``, ``jsonl`` or ``ocel`` (OCEL 2.0 JSON: the whole
    log, ``table`` must be ``events``). ``period`` (``2022``, ``2022Q1``, ``2022-02``) and
    ``as_of`` (a day, or an aware datetime) choose the events that occurred in them; the
    cases table shows each case as it stood at the window's end, the kpis table needs
    ``period``.

    ``deidentify`` (default: True when ``account`` may not read personal data, else
    False) pseudonymises ids with a key drawn for this export (or ``secret``), leaves
    out worker codes and free text, cuts dates to months if ``coarsen_dates``, and
    suppresses counts below ``min_cell`` in the kpis table. An identified export of
    events or cases needs ``account`` (a worker the policy lets read every case's
    personal data) and ``reason``; it appends one ``download`` access record per
    household, stamped ``now`` (default: the current time). The file appears at ``out``
    only once complete (and its access records written).

    ``on_progress``, if given, is called after each page of ``batch_size`` events read
    from the log with the number read so far (for a progress bar; the last call has the
    log's length). The kpis table reads the read models, not the log: it never calls it.
    """
    started = time.perf_counter()
    _check_choice("format", format, FORMATS)
    _check_choice("table", table, TABLES)
    if format == "ocel" and table != "events":
        msg = "table: an OCEL export is the whole log (events and their objects); omit table"
        raise InvalidInput(msg, [("table", "not for ocel")])
    path = Path(out)
    if path.is_dir():
        msg = f"out: {path} is a directory; give the file to write"
        raise InvalidInput(msg, [("out", "is a directory")])
    if not path.parent.is_dir():
        msg = f"out: the folder {path.parent} does not exist"
        raise InvalidInput(msg, [("out", "no such folder")])
    if format == "parquet":
        require_pyarrow()
    worker: Worker | None = None
    if account is not None:
        allowed, rule, worker = _may_read_personal(ledger, account)
        if deidentify is None:
            deidentify = not allowed
        if not deidentify and not allowed and table != "kpis":
            msg = (
                f"policy {ledger.policy.version}, rule {rule}: a {worker.role.value} may not "
                "export identified case data (it links to every household); export it "
                "de-identified (deidentify=True, --deidentify)"
            )
            raise AuthorityError(msg, rule=rule, policy_version=ledger.policy.version)
    deidentify = bool(deidentify)
    needs_record = not deidentify and table != "kpis"
    if needs_record:
        if account is None:
            msg = (
                "an identified export carries the real ids of households and cases: name "
                "the worker exporting it (account=, --as WORKER) with a reason, or "
                "de-identify it (deidentify=True, --deidentify)"
            )
            raise InvalidInput(msg, [("account", "required for identified exports")])
        if not (reason or "").strip():
            msg = (
                "reason: an identified export is a download of case data, which needs a "
                "stated reason (--reason TEXT)"
            )
            raise InvalidInput(msg, [("reason", "required for identified exports")])
    tz = ledger.projections.tz
    deidentifier = (
        Deidentifier(tz=tz, secret=secret, coarsen_dates=coarsen_dates, min_cell=min_cell)
        if deidentify
        else None
    )
    if coarsen_dates and deidentifier is None:
        msg = "coarsen_dates: dates are coarsened in de-identified exports only; add deidentify"
        raise InvalidInput(msg, [("coarsen_dates", "needs deidentify")])
    window = Window.of(tz=tz, as_of=as_of, period=period)
    households: set[str] | None = set() if needs_record else None
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    temp = Path(temp_name)
    objects: dict[str, int] | None = None
    try:
        if format == "ocel":
            transform = deidentifier.row_transform(EVENT_COLUMNS) if deidentifier else None
            counts = write_ocel(
                temp,
                read_log(ledger.store, batch_size=batch_size, on_progress=on_progress),
                window=window,
                tz=tz,
                deidentifier=deidentifier,
                households=households,
                transform=transform,
            )
            rows, objects = counts.events, dict(counts.objects)
        else:
            columns, stream = table_rows(
                ledger, table, window=window, tz=tz, deidentifier=deidentifier,
                households=households, period=period, as_of=as_of, by=by,
                batch_size=batch_size, on_progress=on_progress,
            )  # fmt: skip
            if format == "parquet":
                metadata = {
                    "caseledger.table": table,
                    "caseledger.deidentified": "true" if deidentify else "false",
                    "caseledger.window": _window_text(window),
                }
                rows = write_parquet(
                    temp, columns, stream, coarse_dates=coarsen_dates, batch_size=batch_size,
                    metadata=metadata,
                )  # fmt: skip
            elif format == "csv":
                rows = write_csv(temp, columns, stream)
            else:
                rows = write_jsonl(temp, columns, stream)
        records = 0
        if households is not None and worker is not None:
            records = _record_downloads(
                ledger, worker, sorted(households), reason or "", f"{table} ({format})", now
            )
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return ExportSummary(
        path=path,
        format=format,
        table=table,
        rows=rows,
        objects=objects,
        deidentified=deidentify,
        coarse_dates=coarsen_dates,
        access_records=records,
        seconds=time.perf_counter() - started,
    )


def _window_text(window: Window) -> str:
    start = window.start.isoformat() if window.start else ""
    end = window.end.isoformat() if window.end else ""
    return f"[{start}, {end})"


def _record_downloads(
    ledger: Ledger,
    worker: Worker,
    households: list[str],
    reason: str,
    what: str,
    now: datetime | None,
) -> int:
    at = now or datetime.now(UTC)
    where = current_terminal()
    detail = f"identified export: {what}, {len(households)} households"
    entries = [
        AccessEntry(
            at=at,
            account=worker.code,
            organisation=worker.organisation,
            role=worker.role.value,
            terminal=where,
            subject=UUID(household),
            action=AccessAction.DOWNLOAD,
            reason=reason.strip(),
            detail=detail,
        )
        for household in households
    ]
    return len(ledger.access.append(entries))


def to_arrow(
    ledger: Ledger,
    table: str = "events",
    *,
    deidentify: bool = False,
    coarsen_dates: bool = False,
    min_cell: int = DEFAULT_MIN_CELL,
    secret: bytes | None = None,
    as_of: date | datetime | str | None = None,
    period: str | Period | None = None,
    by: str = "dong",
    batch_size: int = 10_000,
) -> pa.Table:
    """``table`` (``events``, ``cases`` or ``kpis``) as a ``pyarrow.Table``.

    Options as for :func:`export`. The table is built in memory (from record batches);
    for large ledgers, :func:`export` to Parquet and read it lazily instead. Reads no
    personal data and writes no access record: like :meth:`Ledger.events
    <caseledger.Ledger.events>`, it gives structural data to the program that opened
    the ledger.
    """
    pa_module = require_pyarrow()
    _check_choice("table", table, TABLES)
    tz = ledger.projections.tz
    deidentifier = (
        Deidentifier(tz=tz, secret=secret, coarsen_dates=coarsen_dates, min_cell=min_cell)
        if deidentify
        else None
    )
    if coarsen_dates and deidentifier is None:
        msg = "coarsen_dates: dates are coarsened in de-identified exports only; add deidentify"
        raise InvalidInput(msg, [("coarsen_dates", "needs deidentify")])
    window = Window.of(tz=tz, as_of=as_of, period=period)
    columns, rows = table_rows(
        ledger, table, window=window, tz=tz, deidentifier=deidentifier, period=period,
        as_of=as_of, by=by, batch_size=batch_size,
    )  # fmt: skip
    schema = arrow_schema(columns, coarse_dates=coarsen_dates)
    batches = list(record_batches(rows, schema, batch_size=batch_size))
    return pa_module.Table.from_batches(batches, schema=schema)


def _optional(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        msg = f"this needs {module}, which is not installed: pip install {extra}"
        raise ConfigurationError(msg) from None


def to_pandas(ledger: Ledger, table: str = "events", **options: Any) -> Any:
    """``table`` as a pandas ``DataFrame`` (needs pandas); options as for :func:`to_arrow`."""
    _optional("pandas", "pandas")
    return to_arrow(ledger, table, **options).to_pandas()


def to_polars(ledger: Ledger, table: str = "events", **options: Any) -> Any:
    """``table`` as a polars ``DataFrame`` (needs polars); options as for :func:`to_arrow`."""
    polars = _optional("polars", "polars")
    return polars.from_arrow(to_arrow(ledger, table, **options))
