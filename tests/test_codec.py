"""The canonical stored form: every event round-trips, and the bytes are canonical."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caseledger import CorruptRecord, Ledger
from caseledger.codec import decode, encode, pack, unpack
from caseledger.events import EVENT_CLASSES, topic_of
from caseledger.store import StoredEvent
from tests.scenarios import every_event

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
aware = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=offsets
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.text()
    | st.binary()
    | st.uuids()
    | aware
    | st.dates()
    | st.decimals(allow_nan=False, allow_infinity=False)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(values)
def test_every_value_type_comes_back_equal(value: object) -> None:
    back = unpack(pack(value))
    assert back == value
    assert pack(back) == pack(value)


@given(aware)
def test_datetimes_keep_their_utc_offset(moment: datetime) -> None:
    back = unpack(pack(moment))
    assert back == moment
    assert back.utcoffset() == moment.utcoffset()


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(TypeError, match="timezone"):
        pack(datetime(2022, 1, 1))


def test_every_event_class_round_trips_through_the_codec(memory_ledger: Ledger) -> None:
    every_event(memory_ledger)
    seen = set()
    for record in memory_ledger.records():
        event = decode(record)
        again = encode(event)
        assert again.state == record.state, type(event).__name__
        assert again.topic == record.topic
        assert decode(again) == event
        seen.add(type(event))
    assert seen == set(EVENT_CLASSES), "an event class is not exercised"


def test_undecodable_bytes_are_a_corrupt_record_error() -> None:
    bad = StoredEvent(
        originator_id=__import__("uuid").uuid4(),
        originator_version=1,
        topic=topic_of(EVENT_CLASSES[0]),
        state=b"\xc1garbage",
    )
    with pytest.raises(CorruptRecord, match="do not decode"):
        decode(bad)
    with pytest.raises(CorruptRecord, match="unknown event topic"):
        decode(StoredEvent(bad.originator_id, 1, "caseledger.events:Nope", pack({})))


def test_the_byte_form_is_the_documented_one() -> None:
    """The codec docstring's table, written out independently. A change here changes
    every stored hash, so it must be deliberate."""
    import struct
    from uuid import UUID

    import msgpack

    at = datetime(2022, 2, 9, 14, tzinfo=timezone(timedelta(hours=9)))
    value = {
        "at": at,
        "id": UUID(int=1),
        "amount": Decimal("3000000.50"),
        "on": date(2022, 2, 9),
        "utc": datetime(1970, 1, 1, tzinfo=UTC),
    }
    micros = int(datetime(2022, 2, 9, 5, tzinfo=UTC).timestamp()) * 1_000_000
    expected = msgpack.packb(
        {
            "at": msgpack.ExtType(1, struct.pack(">qi", micros, 9 * 3600)),
            "id": msgpack.ExtType(2, bytes(15) + b"\x01"),
            "amount": msgpack.ExtType(3, b"3000000.50"),
            "on": msgpack.ExtType(4, struct.pack(">i", date(2022, 2, 9).toordinal())),
            "utc": msgpack.ExtType(1, struct.pack(">qi", 0, 0)),
        },
        use_bin_type=True,
    )
    assert pack(value) == expected
