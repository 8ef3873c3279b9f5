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
sealed       5     12-byte nonce ‖ AES-256-GCM ciphertext and tag of the packed value
===========  ====  ==========================================================

The same bytes are what the Merkle log hashes and what exports read, so they must
never depend on anything but the event: maps keep field order, and nothing is
compressed.

Personal fields (``personal``, and ``personal`` inside each of ``members``) are never
stored in plain text. :func:`encode` hands each one, packed, to a :class:`Sealer` and
stores what it returns as a *sealed* value; its associated data (:func:`sealed_aad`)
binds it to the record and field it belongs to, so sealed bytes cannot be moved to
another record. The key is the data key of the field's *owner*: the event's
``household_id`` field when it has one (case events), else its originator (household
and worker events). :func:`decode` opens them with an :class:`Opener`, or leaves them
None and says why in :attr:`Event.redaction <caseledger.events.Event.redaction>`;
:func:`decode_fields` never opens them (sealed values come back as None), so
projections and exports need no key and never see personal data.
"""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal, Protocol, get_args
from uuid import UUID, SafeUUID

import msgpack
from eventsourcing.persistence import StoredEvent
from pydantic import BaseModel, ValidationError

from caseledger.errors import ConfigurationError, CorruptRecord
from caseledger.events import EVENT_CLASSES, Event, Redaction, event_class, topic_of, upcast

__all__ = [
    "Opener",
    "Sealer",
    "decode",
    "decode_fields",
    "encode",
    "key_owner",
    "pack",
    "sealed_aad",
    "unpack",
]

_EXT_DATETIME = 1
_EXT_UUID = 2
_EXT_DECIMAL = 3
_EXT_DATE = 4
_EXT_SEALED = 5


class Sealer(Protocol):
    """Encrypts personal values for storage (see :class:`caseledger.keystore.KeyRing`)."""

    def seal(self, owner: UUID, plaintext: bytes, aad: bytes) -> bytes:
        """``nonce ‖ ciphertext`` of ``plaintext`` under ``owner``'s data key, bound to ``aad``."""
        ...


class Opener(Protocol):
    """Decrypts sealed personal values, or says why it will not."""

    def open(self, owner: UUID, sealed: bytes, aad: bytes) -> bytes | Literal["erased", "withheld"]:
        """The plaintext, or ``"erased"`` (the key was destroyed) or ``"withheld"``."""
        ...


class _Sealed:
    """A sealed value as stored: opaque bytes, never plaintext."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"<sealed {len(self.data)} bytes>"


_AAD_PREFIX = b"caseledger:sealed:1\x00"
#: Event classes with personal fields: (has ``personal``, has ``members``).
_PERSONAL: dict[type[Event], tuple[bool, bool]] = {
    cls: ("personal" in cls.model_fields, "members" in cls.model_fields)
    for cls in EVENT_CLASSES
    if "personal" in cls.model_fields or "members" in cls.model_fields
}


def sealed_aad(originator_id: UUID, originator_version: int, path: str) -> bytes:
    """The associated data binding a sealed value to its record and field path."""
    return (
        _AAD_PREFIX
        + originator_id.bytes
        + originator_version.to_bytes(8, "big")
        + path.encode("ascii")
    )


def key_owner(originator_id: UUID, fields: dict[str, Any]) -> UUID:
    """Whose data key seals an event's personal fields: its household, else its originator."""
    household = fields.get("household_id")
    return household if isinstance(household, UUID) else originator_id


_DT = struct.Struct(">qi")
_DATE = struct.Struct(">i")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ENVELOPE_KEYS = ("originator_id", "originator_version")
_epoch_cache: dict[int, datetime] = {}
_new_uuid = object.__new__
_set_uuid = object.__setattr__
_UUID_SAFE = SafeUUID.unknown

_new_tuple = tuple.__new__
_ExtType = msgpack.ExtType


def _default(value: object) -> msgpack.ExtType:
    # The frequent types first; the ExtType tuple is built without its argument checks
    # (the codes and bytes here are valid by construction).
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is None:
            msg = f"naive datetime {value.isoformat()} cannot be stored: give a timezone"
            raise TypeError(msg)
        delta = value - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return _new_tuple(_ExtType, (_EXT_DATETIME, _DT.pack(micros, int(offset.total_seconds()))))
    if isinstance(value, UUID):
        return _new_tuple(_ExtType, (_EXT_UUID, value.bytes))
    if isinstance(value, _Sealed):
        return _new_tuple(_ExtType, (_EXT_SEALED, value.data))
    if isinstance(value, Decimal):
        return msgpack.ExtType(_EXT_DECIMAL, str(value).encode("ascii"))
    if isinstance(value, date):
        return msgpack.ExtType(_EXT_DATE, _DATE.pack(value.toordinal()))
    msg = f"cannot store a value of type {type(value).__name__}"
    raise TypeError(msg)


def _epoch_in(offset: int) -> datetime:
    # The Unix epoch expressed in a fixed UTC offset: adding a timedelta to it gives an
    # aware datetime in that offset directly, without a timezone conversion per value.
    epoch = _epoch_cache.get(offset)
    if epoch is None:
        tz = UTC if offset == 0 else timezone(timedelta(seconds=offset))
        epoch = _epoch_cache[offset] = _EPOCH.astimezone(tz)
    return epoch


def trusted_uuid(number: int) -> UUID:
    """The UUID whose 128-bit integer is ``number``, built without ``UUID()``'s checks.

    For ids the ledger stored itself (about three times faster than ``UUID(...)`` on
    replay); anything from outside goes through ``UUID()``.
    """
    value = _new_uuid(UUID)
    _set_uuid(value, "int", number)
    _set_uuid(value, "is_safe", _UUID_SAFE)
    return value


def _uuid(data: bytes) -> UUID:
    # Stored UUID bytes are 16 by construction; anything else is a damaged record.
    if len(data) != 16:
        msg = "a stored UUID must be 16 bytes"
        raise ValueError(msg)
    return trusted_uuid(int.from_bytes(data, "big"))


def _ext_hook(
    code: int,
    data: bytes,
    _unpack_dt: Any = _DT.unpack,
    _epochs: dict[int, datetime] = _epoch_cache,
    _delta: type[timedelta] = timedelta,
) -> object:
    # Called for most stored values: the frequent codes first, with the module-level
    # helpers bound as locals.
    if code == _EXT_DATETIME:
        micros, offset = _unpack_dt(data)
        return (_epochs.get(offset) or _epoch_in(offset)) + _delta(0, 0, micros)
    if code == _EXT_UUID:
        return _uuid(data)
    if code == _EXT_SEALED:
        return _Sealed(data)
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


def _personal_paths(cls: type[Event], fields: dict[str, Any]) -> list[str]:
    """Paths of the personal values present in ``fields`` (None values have none)."""
    has_personal, has_members = _PERSONAL[cls]
    paths = []
    if has_personal and fields.get("personal") is not None:
        paths.append("personal")
    if has_members:
        for i, member in enumerate(fields.get("members") or ()):
            if isinstance(member, dict) and member.get("personal") is not None:
                paths.append(f"members.{i}.personal")
    return paths


def _get(fields: dict[str, Any], path: str) -> Any:
    if path == "personal":
        return fields["personal"]
    return fields["members"][int(path.split(".")[1])]["personal"]


def _set(fields: dict[str, Any], path: str, value: Any) -> None:
    if path == "personal":
        fields["personal"] = value
        return
    index = int(path.split(".")[1])
    members = list(fields["members"])
    members[index] = {**members[index], "personal": value}
    fields["members"] = tuple(members)


def _seal_fields(event: Event, fields: dict[str, Any], sealer: Sealer | None) -> None:
    redaction = event.redaction
    if redaction is not None:
        # Decoded without its key: put back the sealed bytes it was stored with.
        for path, data in zip(redaction.fields, redaction.sealed, strict=True):
            _set(fields, path, _Sealed(data))
    paths = [
        p for p in _personal_paths(type(event), fields) if not isinstance(_get(fields, p), _Sealed)
    ]
    if not paths:
        return
    if sealer is None:
        msg = (
            f"a {type(event).__name__} with personal data cannot be stored without a sealer; "
            "personal fields are never stored in plain text"
        )
        raise ConfigurationError(msg)
    owner = key_owner(event.originator_id, fields)
    for path in paths:
        aad = sealed_aad(event.originator_id, event.originator_version, path)
        _set(fields, path, _Sealed(sealer.seal(owner, pack(_get(fields, path)), aad)))


def _holds_models(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_models(arg) for arg in get_args(annotation))


def _flat_fields(cls: type[Event]) -> tuple[str, ...] | None:
    """The stored field names of a class whose values ``model_dump`` returns as they are."""
    if cls in _PERSONAL:
        return None
    names = []
    for name, info in cls.model_fields.items():
        if name in _ENVELOPE_KEYS or info.exclude:
            continue
        if _holds_models(info.annotation):
            return None
        names.append(name)
    return tuple(names)


_EXCLUDE = set(_ENVELOPE_KEYS)
#: Event classes without nested models: their stored fields are read straight from the
#: instance, in declaration order (what ``model_dump`` gives, only cheaper).
_FLAT: dict[type[Event], tuple[str, ...]] = {
    cls: names for cls in EVENT_CLASSES if (names := _flat_fields(cls)) is not None
}


def encode(event: Event, sealer: Sealer | None = None) -> StoredEvent:
    """The stored record of an event, its personal fields sealed by ``sealer``.

    Raises :class:`~caseledger.errors.ConfigurationError` if the event has personal
    data and no ``sealer`` is given. An event decoded without its key (it has a
    ``redaction``) re-encodes to the bytes it was stored with.
    """
    names = _FLAT.get(type(event))
    if names is not None:
        values = event.__dict__
        fields = {name: values[name] for name in names}
    else:
        fields = event.model_dump(exclude=_EXCLUDE)
    if type(event) in _PERSONAL:
        _seal_fields(event, fields, sealer)
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
    Personal fields are never opened here: sealed values come back as None.
    """
    cls, fields = _stored_fields(topic, state)
    if cls in _PERSONAL:
        for path in _personal_paths(cls, fields):
            if isinstance(_get(fields, path), _Sealed):
                _set(fields, path, None)
    return cls, fields


def _stored_fields(topic: str, state: bytes) -> tuple[type[Event], dict[str, Any]]:
    try:
        cls = event_class(topic)
    except KeyError:
        msg = f"unknown event topic {topic!r}"
        raise CorruptRecord(msg) from None
    try:
        fields = unpack(state)
    except Exception as e:
        msg = f"stored bytes of a {cls.__name__} do not decode: {str(e) or type(e).__name__}"
        raise CorruptRecord(msg) from None
    if not isinstance(fields, dict):
        msg = f"stored bytes of a {cls.__name__} are not a map"
        raise CorruptRecord(msg)
    version = fields.pop("_v", 1)
    if isinstance(version, int) and version > cls.class_version:
        msg = (
            f"a stored {cls.__name__} of version {version} was written by a newer caseledger "
            f"(this one reads up to version {cls.class_version}): upgrade caseledger"
        )
        raise CorruptRecord(msg)
    if version != cls.class_version:
        try:
            fields = upcast(cls, version, fields)
        except Exception as e:
            msg = f"a stored {cls.__name__} of version {version!r} does not upcast: {e!r}"
            raise CorruptRecord(msg) from None
    return cls, fields


def _open_fields(
    cls: type[Event],
    fields: dict[str, Any],
    originator_id: UUID,
    version: int,
    opener: Opener | None,
) -> None:
    closed: list[tuple[str, bytes]] = []
    reason: Literal["erased", "withheld"] = "withheld"
    owner = key_owner(originator_id, fields)
    for path in _personal_paths(cls, fields):
        value = _get(fields, path)
        if not isinstance(value, _Sealed):
            msg = f"a stored {cls.__name__} holds personal data that is not sealed ({path})"
            raise CorruptRecord(msg)
        opened = (
            opener.open(owner, value.data, sealed_aad(originator_id, version, path))
            if opener is not None
            else "withheld"
        )
        if isinstance(opened, bytes):
            _set(fields, path, unpack(opened))
        else:
            reason = opened
            closed.append((path, value.data))
            _set(fields, path, None)
    if closed:
        fields["redaction"] = Redaction(
            reason=reason,
            fields=tuple(p for p, _ in closed),
            sealed=tuple(d for _, d in closed),
        )


def decode(record: StoredEvent, opener: Opener | None = None) -> Event:
    """The event a stored record holds, validated.

    Personal fields are opened with ``opener``; without one (or when it declines) they
    are None and the event's ``redaction`` says which and why. A record that does not
    decode raises :class:`~caseledger.errors.CorruptRecord` naming its log position
    (when the record carries one) or its aggregate and version.
    """
    try:
        cls, fields = _stored_fields(record.topic, record.state)
        originator_id = record.originator_id
        if not isinstance(originator_id, UUID):
            originator_id = UUID(str(originator_id))
        if cls in _PERSONAL:
            try:
                _open_fields(cls, fields, originator_id, record.originator_version, opener)
            except (KeyError, TypeError, AttributeError, IndexError) as e:
                msg = f"the personal fields of a stored {cls.__name__} are damaged: {e!r}"
                raise CorruptRecord(msg) from None
        try:
            return cls.model_validate(
                {
                    "originator_id": originator_id,
                    "originator_version": record.originator_version,
                    **fields,
                }
            )
        except ValidationError as e:
            msg = f"stored {cls.__name__} does not match its class: {e.errors()[0]['msg']}"
            raise CorruptRecord(msg) from None
    except CorruptRecord as e:
        raise _located(e, record) from None


def _located(error: CorruptRecord, record: StoredEvent) -> CorruptRecord:
    position = getattr(record, "id", None)
    what = f"the record of {record.originator_id} version {record.originator_version}"
    where = f"log position {position} ({what})" if position else what
    msg = f"{where}: {error}; `caseledger verify` says whether it was changed"
    return CorruptRecord(msg, position=position)
