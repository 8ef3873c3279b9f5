"""What every projection shares: the log entry it applies, table naming, time as text.

A projection applies *items*: one stored record each, decoded once (no validation:
the log is trusted) into the event class and its raw field dict, as
:func:`caseledger.codec.decode_fields` gives it but with ids, times, dates and decimals
already as the text projections store (see :class:`Item`). The write hook and the
rebuild both produce items from the stored bytes, so a projection has one apply path
whatever drives it.

Times are stored as fixed-width ISO-8601 UTC text (``2022-02-09T05:00:00.000000Z``),
so text order is time order on SQLite and PostgreSQL alike (PostgreSQL columns use
``COLLATE "C"`` so no locale reorders them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple, TypeGuard
from uuid import UUID

import msgpack

from caseledger import codec
from caseledger.errors import CorruptRecord, InvalidInput
from caseledger.events import EVENT_CLASSES, Event, topic_of
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
    "scalar_text",
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
    ``fields`` are the stored fields (upcast to the current class version) with every
    value the codec stores as an extension type already as the text a projection
    keeps: ids as ``str(uuid)``, times as :func:`ts`, dates as ISO text, decimals as
    ``str(decimal)``; sealed personal values are None. Arrays are tuples.
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
            event_cls, fields = _text_fields(topic, state)
            occurred = fields["occurred_at"]
            recorded = fields["recorded_at"]
            if not (_is_time_text(occurred) and _is_time_text(recorded)):
                msg = "occurred_at and recorded_at must be stored times"
                raise CorruptRecord(msg)
            return cls(
                position, _subject(originator_id), version, event_cls, fields, occurred, recorded
            )
        except (CorruptRecord, KeyError, TypeError, ValueError, AttributeError) as e:
            msg = (
                f"log position {position} ({originator_id} version {version}) does not decode: "
                f"{e if isinstance(e, CorruptRecord) else repr(e)}; `caseledger verify` says "
                "whether it was changed"
            )
            raise CorruptRecord(msg, position=position) from None


# -- decoding for projections ---------------------------------------------------------------
#
# Projections keep ids and times as text, so stored extension values are decoded straight
# to that text: no UUID or datetime object is built only to be formatted again.

_DT_UNPACK = codec._DT.unpack
_DATE_UNPACK = codec._DATE.unpack
_NAIVE_EPOCH = datetime(1970, 1, 1)
_TIME_TEXT_LENGTH = len(END)


_DAY_MICROS = 86_400_000_000
_MINUTE_MICROS = 60_000_000
#: "YYYY-MM-DDT" by day since the epoch; at most a few thousand distinct days.
_day_texts: dict[int, str] = {}
_DAY_TEXTS_MAX = 100_000
#: "HH:MM:" by minute of the day.
_MINUTE_TEXTS = tuple(f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60))


def _day_text(day: int) -> str:
    if len(_day_texts) >= _DAY_TEXTS_MAX:
        _day_texts.clear()
    text = _day_texts[day] = (_NAIVE_EPOCH + timedelta(days=day)).date().isoformat() + "T"
    return text


def _uuid_text(data: bytes) -> str:
    h = data.hex()
    if len(h) != 32:
        msg = "a stored UUID must be 16 bytes"
        raise ValueError(msg)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _decimal_text(data: bytes) -> str:
    return str(Decimal(data.decode("ascii")))


def _date_text(data: bytes) -> str:
    return date.fromordinal(_DATE_UNPACK(data)[0]).isoformat()


_TEXT_HOOKS: dict[int, Callable[[bytes], Any]] = {
    codec._EXT_DECIMAL: _decimal_text,
    codec._EXT_DATE: _date_text,
}


def _text_hook(
    code: int,
    data: bytes,
    _dt: int = codec._EXT_DATETIME,
    _uuid: int = codec._EXT_UUID,
    _sealed: int = codec._EXT_SEALED,
    _hooks: dict[int, Callable[[bytes], Any]] = _TEXT_HOOKS,
    _unpack: Callable[[bytes], tuple[int, int]] = _DT_UNPACK,
    _days: dict[int, str] = _day_texts,
    _minutes: tuple[str, ...] = _MINUTE_TEXTS,
) -> Any:
    # The frequent cases first, with constants bound as locals: this runs for most values.
    if code == _dt:
        # The stored microseconds count from the Unix epoch in UTC whatever offset the
        # value was given in, so the UTC text follows from them alone.
        day, micros = divmod(_unpack(data)[0], _DAY_MICROS)
        minute, micros = divmod(micros, _MINUTE_MICROS)
        # Seconds and microseconds, zero-padded to "SSffffff" behind a leading 1.
        digits = str(100_000_000 + micros)
        prefix = _days.get(day) or _day_text(day)
        return f"{prefix}{_minutes[minute]}{digits[1:3]}.{digits[3:]}Z"
    if code == _uuid and len(data) == 16:
        h = data.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    if code == _sealed:
        return None  # personal values are never opened for projections
    hook = _hooks.get(code)
    if hook is not None:
        return hook(data)
    if code == _uuid:
        return _uuid_text(data)  # raises: wrong length
    return msgpack.ExtType(code, data)


def scalar_text(value: object) -> str | None:
    """The stored text of a datetime (:func:`ts`), date, UUID or Decimal; else None."""
    if isinstance(value, datetime):
        return ts(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    return None


def _as_text(value: Any) -> Any:
    """``value`` from :func:`caseledger.codec.decode_fields` in the text form of items."""
    kind = type(value)
    if kind is dict:
        return {k: _as_text(v) for k, v in value.items()}
    if kind is tuple or kind is list:
        return kind(_as_text(v) for v in value)
    text = scalar_text(value)
    return value if text is None else text


def _unpack_text(state: bytes) -> Any:
    return msgpack.unpackb(
        state, ext_hook=_text_hook, raw=False, use_list=False, strict_map_key=False
    )


#: Event class and its current version, by stored topic.
_CLASSES: dict[str, tuple[type[Event], int]] = {
    topic_of(c): (c, c.class_version) for c in EVENT_CLASSES
}


def _text_fields(topic: str, state: bytes) -> tuple[type[Event], dict[str, Any]]:
    """Like :func:`caseledger.codec.decode_fields`, with values in the text form of items."""
    found = _CLASSES.get(topic)
    if found is not None:
        try:
            fields = _unpack_text(state)
        except Exception:
            fields = None
        if type(fields) is dict and fields.pop("_v", 1) == found[1]:
            return found[0], fields
    # Anything else (an older version to upcast, or damage to report) takes the codec's
    # careful path, and its values are converted afterwards.
    event_cls, decoded = codec.decode_fields(topic, state)
    return event_cls, _as_text(decoded)


def _subject(originator_id: Any) -> str:
    if isinstance(originator_id, str) and len(originator_id) == 32:
        # SQLite stores ids as 32 hex digits; this is str(UUID(...)), without parsing.
        h = originator_id.lower()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return str(originator_id if isinstance(originator_id, UUID) else UUID(originator_id))


def _is_time_text(value: Any) -> TypeGuard[str]:
    return type(value) is str and len(value) == _TIME_TEXT_LENGTH and value[-1] == "Z"


def ts(value: datetime) -> str:
    """A timezone-aware datetime as fixed-width ISO-8601 UTC text."""
    # "+00:00" is six characters; "Z" says the same in one.
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def from_ts(text: str) -> datetime:
    """The datetime (in UTC) that :func:`ts` wrote."""
    return datetime.fromisoformat(text)  # "Z" reads as UTC


def local_date(text: str, tz: tzinfo) -> date:
    """The calendar date in ``tz`` of a stored time."""
    # from_ts, inline: a caseload asks this thousands of times.
    return datetime.fromisoformat(text).astimezone(tz).date()


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
    items: list[Item] = []
    append = items.append
    classes = _CLASSES
    unpackb = msgpack.unpackb
    hook = _text_hook
    new = Item.__new__
    of = Item.of
    is_time = _is_time_text
    subject_of = _subject
    for position, oid, version, topic, state in rows:
        found = classes.get(topic)
        fields: Any = None
        if found is not None:
            try:
                fields = unpackb(
                    state, ext_hook=hook, raw=False, use_list=False, strict_map_key=False
                )
            except Exception:  # decoded again below, to name the record
                fields = None
        if found is not None and type(fields) is dict and fields.pop("_v", 1) == found[1]:
            occurred = fields.get("occurred_at")
            recorded = fields.get("recorded_at")
            if is_time(occurred) and is_time(recorded):
                subject = subject_of(oid)
                append(new(Item, position, subject, version, found[0], fields, occurred, recorded))
                continue
        # Anything else (an older version to upcast, or a record that does not decode
        # and must be named) takes the careful path.
        append(of(position, oid, version, topic, _bytes(state)))
    return items


def _bytes(state: Any) -> bytes:
    return state if isinstance(state, bytes) else bytes(state)


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

    def prefetch(self, tx: Tx, items: Sequence[Item]) -> None:
        """Send ahead the reads :meth:`apply` will make for ``items`` (optional).

        Called in the PostgreSQL write transaction before the new records' log positions
        are known (``items`` carry position 0), so that the reads travel with the insert
        instead of costing a round trip each while the log is locked: use
        :meth:`~caseledger.store.Tx.prefetch` with the very statements and parameters
        ``apply`` will execute. A read that does not match is simply run again.
        """

    def begin_rebuild(self, tx: Tx) -> None:
        """Called before a rebuild replays the whole log into empty tables.

        A projection may defer work that is cheaper done once at the end; it must
        leave the same rows as applying the log incrementally would.
        """

    def end_rebuild(self, tx: Tx) -> None:
        """Called after a rebuild replayed the whole log, in the same transaction."""

    def cancel_rebuild(self) -> None:
        """Called instead of :meth:`end_rebuild` when a rebuild fails (it is rolled back).

        A projection that changed how it applies in :meth:`begin_rebuild` goes back to
        applying incrementally here.
        """

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
