"""What every projection shares: the log entry it applies, table naming, time as text.

A projection applies *items*: one stored record each, decoded once with
:func:`caseledger.codec.decode_fields` (no validation: the log is trusted) into the
event class and its raw field dict. The write hook and the rebuild both produce items
from the stored bytes, so a projection has one apply path whatever drives it.

Times are stored as fixed-width ISO-8601 UTC text (``2022-02-09T05:00:00.000000Z``),
so text order is time order on SQLite and PostgreSQL alike (PostgreSQL columns use
``COLLATE "C"`` so no locale reorders them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, ClassVar, NamedTuple
from uuid import UUID

from caseledger import codec
from caseledger.errors import CorruptRecord, InvalidInput
from caseledger.events import EVENT_CLASSES, Event
from caseledger.store import Dialect, EventStore, Tx

__all__ = [
    "END",
    "Item",
    "Projection",
    "Schema",
    "chunks",
    "cutoff",
    "decode_rows",
    "fetch",
    "fetch_one",
    "from_ts",
    "local_date",
    "placeholders",
    "ts",
]

#: The end of an interval that has not ended yet; sorts after every real time.
END = "9999-12-31T23:59:59.999999Z"

#: SQLite accepts at most 32766 bound parameters; stay far below for IN lists.
_IN_CHUNK = 500


class Item(NamedTuple):
    """One record of the log, decoded for projections.

    ``subject`` is the originator (aggregate) id as text; ``occurred`` and ``recorded``
    are the event's times as stored text (:func:`ts`): every projection needs them.
    """

    position: int
    subject: str
    originator_version: int
    cls: type[Event]
    fields: dict[str, Any]
    occurred: str
    recorded: str

    @classmethod
    def of(cls, position: int, originator_id: Any, version: int, topic: str, state: bytes) -> Item:
        """Decode one stored record (trusted: no validation, only a located error)."""
        try:
            event_cls, fields = codec.decode_fields(topic, state)
            if isinstance(originator_id, str) and len(originator_id) == 32:
                # SQLite stores ids as 32 hex digits; this is str(UUID(...)), without parsing.
                h = originator_id.lower()
                subject = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
            else:
                subject = str(
                    originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
                )
            return cls(
                position, subject, version, event_cls, fields, ts(fields["occurred_at"]),
                ts(fields["recorded_at"]),
            )  # fmt: skip
        except (CorruptRecord, KeyError, TypeError, ValueError, AttributeError) as e:
            msg = (
                f"log position {position} ({originator_id} version {version}) does not decode: "
                f"{e if isinstance(e, CorruptRecord) else repr(e)}; `caseledger verify` says "
                "whether it was changed"
            )
            raise CorruptRecord(msg, position=position) from None


def ts(value: datetime) -> str:
    """A timezone-aware datetime as fixed-width ISO-8601 UTC text."""
    # "+00:00" is six characters; "Z" says the same in one.
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def from_ts(text: str) -> datetime:
    """The datetime (in UTC) that :func:`ts` wrote."""
    return datetime.fromisoformat(text)  # "Z" reads as UTC


def local_date(text: str, tz: tzinfo) -> date:
    """The calendar date in ``tz`` of a stored time."""
    return from_ts(text).astimezone(tz).date()


def cutoff(value: date | datetime, tz: tzinfo) -> str:
    """The last stored time that is "at or before" ``value``.

    A datetime must be timezone-aware and counts itself; a date means the whole of
    that day in ``tz``.
    """
    try:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                msg = f"{value.isoformat()} has no timezone; give an aware datetime or a date"
                raise ValueError(msg)
            return ts(value)
        next_day = datetime.combine(value + timedelta(days=1), time(), tzinfo=tz)
        return ts(next_day - timedelta(microseconds=1))
    except OverflowError:
        msg = f"{value.isoformat()} is out of range: give a date between the years 1 and 9999"
        raise InvalidInput(msg, [("as_of", "out of range")]) from None


def chunks(values: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    """``values`` in slices small enough for an ``IN (...)`` list."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def placeholders(count: int) -> str:
    """``?,?,...`` for an ``IN`` list of ``count`` values."""
    return ",".join("?" * count)


@dataclass(frozen=True)
class Schema:
    """How projection tables are named and typed on one database."""

    dialect: Dialect
    #: Prefix that puts a table in the ledger's schema (PostgreSQL), or "".
    prefix: str
    #: The stored events table, qualified, and its log-position column.
    events_table: str
    position_column: str

    @classmethod
    def of(cls, store: EventStore) -> Schema:
        """The naming for ``store``'s database."""
        recorder = store.recorder
        if store.dialect == "sqlite":
            return cls("sqlite", "", recorder.events_table_name, "rowid")
        schema = recorder.datastore.schema
        prefix = f'"{schema}".'
        return cls(
            "postgres", prefix, prefix + f'"{recorder.events_table_name}"', "notification_id"
        )

    def t(self, name: str) -> str:
        """A table name, qualified for this database."""
        return self.prefix + name

    @property
    def time(self) -> str:
        """Column type of stored times."""
        return "TEXT" if self.dialect == "sqlite" else 'TEXT COLLATE "C"'

    @property
    def text(self) -> str:
        """Column type of codes and ids compared for equality and sorted bytewise."""
        return "TEXT" if self.dialect == "sqlite" else 'TEXT COLLATE "C"'

    def read_log_sql(self) -> str:
        """A query for up to ``?`` records after position ``?`` up to position ``?``."""
        p = self.position_column
        return (
            f"SELECT {p}, originator_id, originator_version, topic, state "
            f"FROM {self.events_table} WHERE {p} > ? AND {p} <= ? ORDER BY {p} LIMIT ?"
        )

    def max_position_sql(self) -> str:
        """A query for the last log position."""
        return f"SELECT MAX({self.position_column}) FROM {self.events_table}"


def fetch(tx: Tx) -> list[tuple[Any, ...]]:
    """All rows of the query just executed on ``tx``."""
    return tx.fetchall()


def fetch_one(tx: Tx) -> tuple[Any, ...] | None:
    """The first row of the query just executed on ``tx``, or None."""
    return tx.fetchone()


def decode_rows(rows: Sequence[tuple[Any, ...]]) -> list[Item]:
    """Items from ``(position, originator_id, version, topic, state)`` rows."""
    of = Item.of
    return [of(p, oid, v, topic, bytes(state)) for p, oid, v, topic, state in rows]


class Projection:
    """A read model kept from the log.

    Subclasses name themselves, list which event classes they ``handles`` and which
    they ``ignores`` (together: every class in :data:`caseledger.events.EVENT_CLASSES`),
    say which ``tables`` they own, give their DDL and apply batches of items. Bump
    ``version`` whenever the tables or the meaning of their rows change: a ledger
    opened with a different version rebuilds the projection from the log.

    Apply never reads the clock and never depends on how the log was cut into
    batches: the same log gives the same rows whether applied inline, by a follower
    or by a rebuild.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    handles: ClassVar[frozenset[type[Event]]]
    ignores: ClassVar[frozenset[type[Event]]]
    tables: ClassVar[tuple[str, ...]]

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def create_statements(self) -> list[str]:
        """DDL creating this projection's tables and indexes (``IF NOT EXISTS``)."""
        raise NotImplementedError

    def apply(self, tx: Tx, items: Sequence[Item]) -> None:
        """Apply ``items`` (in log order) inside the caller's transaction."""
        raise NotImplementedError

    def begin_rebuild(self, tx: Tx) -> None:
        """Called before a rebuild replays the whole log into empty tables.

        A projection may defer work that is cheaper done once at the end; it must
        leave the same rows as applying the log incrementally would.
        """

    def end_rebuild(self, tx: Tx) -> None:
        """Called after a rebuild replayed the whole log, in the same transaction."""

    @classmethod
    def check_coverage(cls) -> None:
        """Raise unless every event class is handled or ignored, and none is both."""
        every = frozenset(EVENT_CLASSES)
        both = cls.handles & cls.ignores
        missing = every - cls.handles - cls.ignores
        if both or missing:
            names = sorted(c.__name__ for c in both | missing)
            msg = f"projection {cls.name} must handle or ignore each event class: {names}"
            raise TypeError(msg)
