"""The exported tables as streams of rows, and as Arrow record batches.

:func:`table_rows` gives the rows of ``events``, ``cases`` or ``kpis`` one at a time
(de-identified when a :class:`~caseledger.export.deidentify.Deidentifier` is given);
:func:`record_batches` groups them into ``pyarrow.RecordBatch``\\ es of a fixed schema
(:func:`arrow_schema`), so a writer holds one batch at a time, never the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from caseledger.errors import ConfigurationError, InvalidInput
from caseledger.export.columns import Column, columns_of
from caseledger.export.deidentify import Deidentifier
from caseledger.export.log import CaseFold, Places, Window, event_row, parse_as_of, read_log
from caseledger.projections.kpis import BY
from caseledger.projections.periods import Period

if TYPE_CHECKING:
    import pyarrow as pa

    from caseledger.application import Ledger

__all__ = [
    "TABLES",
    "arrow_schema",
    "record_batches",
    "require_pyarrow",
    "table_rows",
]

#: The tables an export can write.
TABLES = ("events", "cases", "kpis")
#: Metrics that are not counts: suppressed with the count they were computed from.
_RATES = {
    "intake_to_plan.median_days": "intake_to_plan.count",
    "intake_to_plan.share_on_time": "intake_to_plan.count",
}


def require_pyarrow() -> Any:
    """The ``pyarrow`` module, or a :class:`ConfigurationError` saying how to install it."""
    try:
        import pyarrow
    except ImportError:
        msg = (
            "Arrow and Parquet exports need pyarrow, an optional dependency: "
            "pip install 'caseledger[arrow]'"
        )
        raise ConfigurationError(msg) from None
    return pyarrow


def arrow_schema(columns: Sequence[Column], *, coarse_dates: bool = False) -> pa.Schema:
    """The Arrow schema of ``columns`` (times as UTC microseconds, or months as dates)."""
    pa = require_pyarrow()
    types = {
        "string": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "time": pa.date32() if coarse_dates else pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
        "decimal": pa.decimal128(38, 4),
    }
    fields = [pa.field(c.name, types[c.type], metadata={"doc": c.doc}) for c in columns]
    return pa.schema(fields)


def record_batches(
    rows: Iterable[dict[str, Any]], schema: pa.Schema, *, batch_size: int = 10_000
) -> Iterator[pa.RecordBatch]:
    """``rows`` as record batches of ``schema``, at most ``batch_size`` rows each."""
    pa = require_pyarrow()
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= batch_size:
            yield _batch(pa, chunk, schema)
            chunk = []
    if chunk:
        yield _batch(pa, chunk, schema)


def _batch(pa: Any, chunk: list[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    """``pa.RecordBatch.from_pylist(chunk, schema=schema)``, faster for sparse rows.

    Rows of the wide events table hold a fifth of its columns: each row's own keys are
    put in place in columns of nulls, instead of looking up every column in every row.
    """
    count = len(chunk)
    columns: dict[str, list[Any]] = {name: [None] * count for name in schema.names}
    try:
        for i, row in enumerate(chunk):
            for name, value in row.items():
                columns[name][i] = value
    except KeyError:  # a key outside the schema: from_pylist leaves it out
        return pa.RecordBatch.from_pylist(chunk, schema=schema)
    arrays = [pa.array(columns[f.name], type=f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def table_rows(
    ledger: Ledger,
    table: str,
    *,
    window: Window,
    tz: tzinfo,
    deidentifier: Deidentifier | None = None,
    households: set[str] | None = None,
    period: str | Period | None = None,
    as_of: date | datetime | str | None = None,
    by: str = "dong",
    batch_size: int = 5000,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[tuple[Column, ...], Iterator[dict[str, Any]]]:
    """The columns of ``table`` and an iterator over its rows.

    ``households``, when given, collects the ids of the households whose rows were
    produced (for the access records of an identified export). ``on_progress``, if
    given, is called after each page of ``batch_size`` events read from the log with
    the number read so far (the events and cases tables; the kpis table reads the read
    models, not the log, and never calls it).
    """
    if table not in TABLES:
        msg = f"table: {table!r} is not one of {', '.join(TABLES)}"
        raise InvalidInput(msg, [("table", "unknown table")])
    columns = columns_of(table, deidentified=deidentifier is not None)
    transform = deidentifier.row_transform(columns_of(table)) if deidentifier else None
    if table == "events":
        rows = _event_rows(ledger, window, households, batch_size, on_progress)
    elif table == "cases":
        rows = _case_rows(ledger, window, tz, households, batch_size, on_progress)
    else:
        if period is None:
            msg = "the kpis table needs a period (2022, 2022Q1, 2022-02): give period="
            raise InvalidInput(msg, [("period", "required for kpis")])
        rows = _kpi_rows(ledger, period, as_of, by, deidentifier)
        transform = None
    if transform is None:
        return columns, rows
    return columns, _transformed(rows, transform)


def _transformed(rows: Iterator[dict[str, Any]], transform: Any) -> Iterator[dict[str, Any]]:
    for row in rows:
        transform(row)
        yield row


def _event_rows(
    ledger: Ledger,
    window: Window,
    households: set[str] | None,
    batch_size: int,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    places = Places()
    for event in read_log(ledger.store, batch_size=batch_size, on_progress=on_progress):
        places.update(event)
        if not window.contains(event.occurred_at):
            continue
        row = event_row(event, places)
        if households is not None and row["household_id"] is not None:
            households.add(row["household_id"])
        yield row


def _case_rows(
    ledger: Ledger,
    window: Window,
    tz: tzinfo,
    households: set[str] | None,
    batch_size: int,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    fold = CaseFold(window)
    for event in read_log(ledger.store, batch_size=batch_size, on_progress=on_progress):
        fold.apply(event)
    for row in fold.rows(tz):
        if households is not None:
            households.add(row["household_id"])
        yield row


def _kpi_rows(
    ledger: Ledger,
    period: str | Period,
    as_of: date | datetime | str | None,
    by: str,
    deidentifier: Deidentifier | None,
) -> Iterator[dict[str, Any]]:
    if by not in BY:
        msg = f"by: {by!r} is not one of {', '.join(BY)}"
        raise InvalidInput(msg, [("by", "unknown breakdown")])
    if by == "worker" and deidentifier is not None:
        msg = "by: a de-identified export leaves worker codes out; break down by dong instead"
        raise InvalidInput(msg, [("by", "worker codes are not exported de-identified")])
    moment = parse_as_of(as_of) if as_of is not None else None
    report = ledger.kpis(str(period), by=by, as_of=moment)
    figures = {(f.group, f.metric): f for f in report.figures}
    for figure in report.figures:
        value: float | None = None if figure.value is None else float(figure.value)
        previous: float | None = None if figure.previous is None else float(figure.previous)
        change: float | None = None if figure.change is None else float(figure.change)
        suppressed = False
        if deidentifier is not None:
            base = _RATES.get(figure.metric)
            if base is not None:
                counted = figures.get((figure.group, base))
                now_n = counted.value if counted else 0
                before_n = counted.previous if counted else 0
                if deidentifier.suppress(now_n)[1] and value is not None:
                    value, suppressed = None, True
                if deidentifier.suppress(before_n)[1] and previous is not None:
                    previous, suppressed = None, True
            else:
                value, hidden_now = deidentifier.suppress(value)
                previous, hidden_before = deidentifier.suppress(previous)
                suppressed = hidden_now or hidden_before
            if suppressed:
                change = None
        yield {
            "period": report.period,
            "previous_period": report.previous_period,
            "group_by": by,
            "group": figure.group,
            "metric": figure.metric,
            "value": value,
            "previous": previous,
            "change": change,
            "suppressed": suppressed,
        }
