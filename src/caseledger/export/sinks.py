"""Writing rows to files: Parquet, CSV and JSON lines, a batch at a time.

Each writer takes rows (dicts) as :func:`caseledger.export.tables.table_rows` gives
them and writes them as they come, so memory holds one batch, not the table:

* **Parquet** (needs pyarrow): a ``ParquetWriter`` fed one record batch at a time,
  zstd-compressed; each column carries its description as field metadata;
* **CSV**: RFC 4180 with CRLF line ends, UTF-8 with a byte order mark (so spreadsheet
  programs read Korean text correctly), a header row of column names; times in ISO 8601
  (UTC, ``Z``); a text cell a spreadsheet would run as a formula (starting with
  ``= + - @``, tab or carriage return) gets a leading apostrophe
  (:func:`caseledger._format.spreadsheet_safe`);
* **JSON lines**: one object per row with every column (null when empty), times as in CSV.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from caseledger._format import spreadsheet_safe
from caseledger.export.columns import Column
from caseledger.export.tables import arrow_schema, record_batches, require_pyarrow

__all__ = ["TABLE_FORMATS", "iso", "write_csv", "write_jsonl", "write_parquet"]

#: File formats of the tables (OCEL is written by :mod:`caseledger.export.ocel`).
TABLE_FORMATS = ("parquet", "csv", "jsonl")


def iso(value: datetime | date) -> str:
    """ISO 8601 text: datetimes in UTC with ``Z``, dates as ``YYYY-MM-DD``."""
    if isinstance(value, datetime):
        text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
        return text + "Z"
    return value.isoformat()


def write_parquet(
    path: Path,
    columns: Sequence[Column],
    rows: Iterable[dict[str, Any]],
    *,
    coarse_dates: bool = False,
    batch_size: int = 10_000,
    metadata: dict[str, str] | None = None,
) -> int:
    """Write ``rows`` to a Parquet file at ``path``; return how many."""
    require_pyarrow()
    import pyarrow.parquet as pq

    schema = arrow_schema(columns, coarse_dates=coarse_dates)
    if metadata:
        schema = schema.with_metadata(metadata)
    written = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in record_batches(rows, schema, batch_size=batch_size):
            writer.write_batch(batch)
            written += batch.num_rows
    return written


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return spreadsheet_safe(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        # Numbers are data, not formulas: "-3" stays a number.
        return value
    if isinstance(value, datetime | date):
        return iso(value)
    return spreadsheet_safe(str(value))


def write_csv(path: Path, columns: Sequence[Column], rows: Iterable[dict[str, Any]]) -> int:
    """Write ``rows`` to a CSV file at ``path``; return how many."""
    names = [c.name for c in columns]
    written = 0
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(names)
        for row in rows:
            # Most cells of the wide events table are empty: convert only the others.
            writer.writerow(["" if v is None else _csv_cell(v) for v in map(row.get, names)])
            written += 1
    return written


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return iso(value)
    if isinstance(value, Decimal):
        return float(value)
    msg = f"cannot write a {type(value).__name__} to JSON"
    raise TypeError(msg)


def write_jsonl(path: Path, columns: Sequence[Column], rows: Iterable[dict[str, Any]]) -> int:
    """Write ``rows`` to a JSON-lines file at ``path``; return how many."""
    names = [c.name for c in columns]
    empty = dict.fromkeys(names)
    written = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for row in rows:
            data = empty.copy()
            data.update((k, v) for k, v in row.items() if k in empty)
            line = json.dumps(
                data, ensure_ascii=False, separators=(",", ":"), default=_json_default
            )
            out.write(line + "\n")
            written += 1
    return written
