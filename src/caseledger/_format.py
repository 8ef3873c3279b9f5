"""Output formatting shared by every command-line command: tables, JSON and CSV.

Three output formats, one set of rules for values:

``table``
    for people: columns aligned by display width (Korean characters take two columns),
    long cells shortened with ``…``, long lists cut after ``limit`` rows with a note
    saying how many more there are. Enums may show their Korean label.
``json``
    for programs: one JSON document with sorted keys (:func:`write_rows` writes an array,
    :func:`write_record` an object); ``jsonl`` writes one object per line, for streams.
``csv``
    for spreadsheets (RFC 4180, CRLF line ends): a header row of keys, then one row per
    item; a text cell that a spreadsheet would run as a formula (starting with
    ``= + - @``, tab or carriage return) gets a leading apostrophe.

Values are written the same way everywhere: datetimes and dates in ISO 8601, UUIDs as
strings, enums as their stable codes, decimals as exact strings. Example::

    write_rows(sys.stdout, rows, [("case_id", "사례"), ("stage", "단계")], "table", limit=50)
"""

from __future__ import annotations

import csv
import json
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from itertools import islice
from typing import Any, Literal, TextIO
from uuid import UUID

from pydantic import BaseModel

from caseledger.values import LabelledEnum

__all__ = [
    "FORMATS",
    "Column",
    "Format",
    "Labels",
    "cell_text",
    "display_width",
    "fit",
    "plain",
    "spreadsheet_safe",
    "write_record",
    "write_rows",
]

#: Output formats: ``jsonl`` is JSON for streams (one object per line).
Format = Literal["table", "json", "jsonl", "csv"]
#: The formats offered by ``--format``; streaming commands write ``json`` as JSON lines.
FORMATS: tuple[str, ...] = ("table", "json", "csv")
#: How a table shows an enum: its Korean label, English label, or stable code.
Labels = Literal["ko", "en", "code"]

_MORE_NOTE = "… {n} more rows (use --limit 0 for all)"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    """A column of output: the row key it shows, its table header, its widest table cell.

    ``max_width`` is in display columns; ``None`` never shortens the cell.
    """

    key: str
    header: str = ""
    max_width: int | None = 60

    @property
    def title(self) -> str:
        """The table header (the key when no header is given)."""
        return self.header or self.key


ColumnSpec = Column | tuple[str, str] | str


def _column(spec: ColumnSpec) -> Column:
    if isinstance(spec, Column):
        return spec
    if isinstance(spec, str):
        return Column(spec)
    return Column(spec[0], spec[1])


# ---------------------------------------------------------------------------
# Values


def plain(value: Any) -> Any:
    """``value`` as JSON-compatible data: codes for enums, ISO 8601 for times, str for UUIDs.

    Mappings keep their keys (as strings); tuples, lists and sets become lists;
    pydantic models become their fields.
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, BaseModel):
        return {k: plain(v) for k, v in value.__dict__.items()}
    if isinstance(value, Mapping):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((plain(v) for v in value), key=str)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def cell_text(value: Any, labels: Labels = "ko") -> str:
    """``value`` as the text of one table cell (one line; enums by ``labels``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, LabelledEnum):
        if labels == "ko":
            return value.ko or value.value
        return value.en if labels == "en" else value.value
    if isinstance(value, datetime):
        return _one_line(value.isoformat(timespec="seconds"))
    if isinstance(value, str):
        return _one_line(value)
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(cell_text(v, labels) for v in value)
    found = plain(value)
    if isinstance(found, dict | list):
        return _one_line(json.dumps(found, ensure_ascii=False, sort_keys=True))
    return _one_line(str(found))


def _one_line(text: str) -> str:
    # Control characters (newlines, tabs, escapes) would break a table's layout or
    # drive the terminal; show them as spaces.
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """How many terminal columns ``text`` takes (wide East Asian characters take two)."""
    if text.isascii():
        return len(text)
    return sum(_char_width(ch) for ch in text)


def fit(text: str, width: int | None) -> str:
    """``text`` shortened with ``…`` to at most ``width`` display columns (None: unchanged)."""
    if width is None or display_width(text) <= width:
        return text
    out: list[str] = []
    used = 0
    for ch in text:
        w = _char_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * (width - display_width(text))
    return gap + text if right else text + gap


def spreadsheet_safe(text: str) -> str:
    """``text`` with a leading apostrophe if a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        # Numbers are data, not formulas: "-3" stays a number.
        return str(value)
    found = plain(value)
    if isinstance(found, dict | list):
        text = json.dumps(found, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    else:
        text = str(found)
    return spreadsheet_safe(text)


def _json(value: Any, *, indent: int | None = None) -> str:
    separators = (",", ": ") if indent else (",", ":")
    return json.dumps(
        plain(value), ensure_ascii=False, sort_keys=True, indent=indent, separators=separators
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


# ---------------------------------------------------------------------------
# Writers


def write_rows(
    out: TextIO,
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[ColumnSpec],
    fmt: Format,
    *,
    limit: int | None = None,
    total: int | None = None,
    labels: Labels = "ko",
) -> int:
    """Write ``rows`` to ``out`` in ``fmt``; return how many rows were written.

    ``columns`` choose and order what tables and CSV show (``(key, header)`` pairs, keys,
    or :class:`Column`); JSON writes every key of each row. ``limit`` (None or 0: all)
    stops after that many rows; a table then says how many more there were, counting
    the rows left, or from ``total`` (how many rows there are) when the caller knows it.
    Rows are consumed lazily: JSON lines and CSV stream, a table keeps at most ``limit``.
    """
    cols = [_column(c) for c in columns]
    limit = limit if limit and limit > 0 else None
    if fmt == "table":
        return _write_table(out, iter(rows), cols, limit, total, labels)
    chosen: Iterator[Mapping[str, Any]] = iter(rows) if limit is None else islice(rows, limit)
    written = 0
    if fmt == "jsonl":
        for row in chosen:
            out.write(_json(row) + "\n")
            written += 1
    elif fmt == "json":
        out.write("[")
        for row in chosen:
            out.write(("\n  " if written == 0 else ",\n  ") + _json(row))
            written += 1
        out.write("\n]\n" if written else "]\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([spreadsheet_safe(c.key) for c in cols])
        for row in chosen:
            writer.writerow([_csv_cell(row.get(c.key)) for c in cols])
            written += 1
    else:
        msg = f"unknown output format {fmt!r}; use one of table, json, jsonl, csv"
        raise ValueError(msg)
    return written


def _write_table(
    out: TextIO,
    rows: Iterator[Mapping[str, Any]],
    cols: list[Column],
    limit: int | None,
    total: int | None,
    labels: Labels,
) -> int:
    kept = list(rows) if limit is None else list(islice(rows, limit))
    if limit is None:
        more = 0
    elif total is not None:
        more = max(0, total - len(kept))
    else:
        more = sum(1 for _ in rows)
    right = [
        bool(kept) and all(_is_number(r.get(c.key)) or r.get(c.key) is None for r in kept)
        for c in cols
    ]
    cells = [[fit(cell_text(r.get(c.key), labels), c.max_width) for c in cols] for r in kept]
    headers = [c.title for c in cols]
    widths = [display_width(h) for h in headers]
    for line in cells:
        widths = [max(w, display_width(t)) for w, t in zip(widths, line, strict=True)]
    out.write(_table_line(headers, widths, [False] * len(cols)))
    out.write(_table_line(["-" * w for w in widths], widths, [False] * len(cols)))
    for line in cells:
        out.write(_table_line(line, widths, right))
    if more:
        out.write(_MORE_NOTE.format(n=more) + "\n")
    return len(kept)


def _table_line(texts: Sequence[str], widths: Sequence[int], right: Sequence[bool]) -> str:
    parts = [_pad(t, w, r) for t, w, r in zip(texts, widths, right, strict=True)]
    return "  ".join(parts).rstrip() + "\n"


def _flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def write_record(
    out: TextIO,
    record: Mapping[str, Any],
    fmt: Format,
    *,
    headers: Mapping[str, str] | None = None,
    labels: Labels = "ko",
) -> None:
    """Write one record (a summary, a result) to ``out`` in ``fmt``.

    A table shows one ``field  value`` line per key (nested mappings as ``a.b`` keys,
    headed by ``headers[key]`` when given); JSON writes one indented object; CSV writes a
    header row and one row, nested keys flattened as ``a.b``.
    """
    if fmt in ("json", "jsonl"):
        out.write(_json(record, indent=2 if fmt == "json" else None) + "\n")
        return
    flat = _flatten(record)
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([spreadsheet_safe(k) for k in flat])
        writer.writerow([_csv_cell(v) for v in flat.values()])
        return
    if fmt != "table":
        msg = f"unknown output format {fmt!r}; use one of table, json, jsonl, csv"
        raise ValueError(msg)
    names = {k: (headers or {}).get(k, k) for k in flat}
    width = max((display_width(n) for n in names.values()), default=0)
    for key, value in flat.items():
        text = cell_text(value, labels)
        out.write((_pad(names[key], width, False) + "  " + text).rstrip() + "\n")
