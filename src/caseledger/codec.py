"""The one canonical stored byte form of an event: msgpack, with explicit types.

An event's state bytes are a msgpack map: ``"_v"`` (the class version) followed by
the event's fields in declaration order, without ``originator_id`` and
``originator_version`` (those are columns of the stored record). Values that msgpack
has no type for are written as extension types, so they come back as they went in:

===========  ====  ==========================================================
type         code  bytes
===========  ====  ==========================================================
datetime     1     int64 microseconds since the Unix epoch, int32 UTC offset (s)
UUID         2     the 16 bytes
Decimal      3     its ASCII string
date         4     int32 proleptic Gregorian ordinal
===========  ====  ==========================================================

The same bytes are what the Merkle log hashes and what exports read, so they must
never depend on anything but the event: maps keep field order, and nothing is
compressed.
"""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgpack
from eventsourcing.persistence import StoredEvent
from pydantic import ValidationError

from caseledger.errors import CorruptRecord
from caseledger.events import Event, event_class, topic_of, upcast

__all__ = ["decode", "decode_fields", "encode", "pack", "unpack"]

_EXT_DATETIME = 1
_EXT_UUID = 2
_EXT_DECIMAL = 3
_EXT_DATE = 4

_DT = struct.Struct(">qi")
_DATE = struct.Struct(">i")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ENVELOPE_KEYS = ("originator_id", "originator_version")
_tz_cache: dict[int, timezone] = {}


def _default(value: object) -> msgpack.ExtType:
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is None:
            msg = f"naive datetime {value.isoformat()} cannot be stored: give a timezone"
            raise TypeError(msg)
        delta = value - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return msgpack.ExtType(_EXT_DATETIME, _DT.pack(micros, int(offset.total_seconds())))
    if isinstance(value, UUID):
        return msgpack.ExtType(_EXT_UUID, value.bytes)
    if isinstance(value, Decimal):
        return msgpack.ExtType(_EXT_DECIMAL, str(value).encode("ascii"))
    if isinstance(value, date):
        return msgpack.ExtType(_EXT_DATE, _DATE.pack(value.toordinal()))
    msg = f"cannot store a value of type {type(value).__name__}"
    raise TypeError(msg)


def _ext_hook(code: int, data: bytes) -> object:
    if code == _EXT_DATETIME:
        micros, offset = _DT.unpack(data)
        tz = _tz_cache.get(offset)
        if tz is None:
            tz = _tz_cache[offset] = UTC if offset == 0 else timezone(timedelta(seconds=offset))
        return (_EPOCH + timedelta(microseconds=micros)).astimezone(tz)
    if code == _EXT_UUID:
        return UUID(bytes=data)
    if code == _EXT_DECIMAL:
        return Decimal(data.decode("ascii"))
    if code == _EXT_DATE:
        return date.fromordinal(_DATE.unpack(data)[0])
    return msgpack.ExtType(code, data)


def pack(value: object) -> bytes:
    """Encode a value in the canonical msgpack form."""
    return msgpack.packb(value, default=_default, use_bin_type=True, datetime=False)  # type: ignore[no-any-return]


def unpack(data: bytes) -> Any:
    """Decode bytes written by :func:`pack` (arrays come back as tuples)."""
    return msgpack.unpackb(
        data, ext_hook=_ext_hook, raw=False, use_list=False, strict_map_key=False
    )


def encode(event: Event) -> StoredEvent:
    """The stored record of an event."""
    fields = event.model_dump(exclude=set(_ENVELOPE_KEYS))
    state = pack({"_v": type(event).class_version, **fields})
    return StoredEvent(
        originator_id=event.originator_id,
        originator_version=event.originator_version,
        topic=topic_of(type(event)),
        state=state,
    )


def decode_fields(topic: str, state: bytes) -> tuple[type[Event], dict[str, Any]]:
    """The event class and stored fields (upcast to the current version), without validation.

    This is the fast path for projections and exports, which read trusted stored data.
    """
    try:
        cls = event_class(topic)
    except KeyError:
        msg = f"unknown event topic {topic!r}"
        raise CorruptRecord(msg) from None
    try:
        fields = unpack(state)
    except Exception as e:
        msg = f"stored bytes of a {cls.__name__} do not decode: {e}"
        raise CorruptRecord(msg) from None
    if not isinstance(fields, dict):
        msg = f"stored bytes of a {cls.__name__} are not a map"
        raise CorruptRecord(msg)
    version = fields.pop("_v", 1)
    if version != cls.class_version:
        fields = upcast(cls, version, fields)
    return cls, fields


def decode(record: StoredEvent) -> Event:
    """The event a stored record holds, validated."""
    cls, fields = decode_fields(record.topic, record.state)
    originator_id = record.originator_id
    if not isinstance(originator_id, UUID):
        originator_id = UUID(str(originator_id))
    try:
        return cls.model_validate(
            {
                "originator_id": originator_id,
                "originator_version": record.originator_version,
                **fields,
            }
        )
    except ValidationError as e:
        position = getattr(record, "id", None)
        msg = f"stored {cls.__name__} does not match its class: {e.errors()[0]['msg']}"
        raise CorruptRecord(msg, position=position) from None
