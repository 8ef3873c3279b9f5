"""The base of every aggregate: state rebuilt by applying its events in order.

Applying an event never reads the clock or does I/O, so replaying the same events
always gives the same state. Decisions (the functions that turn a command into new
events) live beside each aggregate and only read state.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Self
from uuid import UUID

from caseledger.events import Event

__all__ = ["Aggregate"]


class Aggregate:
    """State of one aggregate at ``version`` (the number of events applied)."""

    id: UUID
    version: int
    #: True for aggregates that never change after their first event: a cached state
    #: of one is never re-read from the store.
    immutable: bool = False

    def __init__(self, aggregate_id: UUID) -> None:
        self.id = aggregate_id
        self.version = 0

    def apply(self, event: Event) -> None:
        """Apply one event; the event must be the next version of this aggregate."""
        if event.originator_version != self.version + 1:
            msg = (
                f"event version {event.originator_version} does not follow "
                f"version {self.version} of {self.id}"
            )
            raise ValueError(msg)
        handler = getattr(self, "on_" + type(event).__name__, None)
        if handler is not None:
            handler(event)
        self.version = event.originator_version

    @classmethod
    def replay(cls, aggregate_id: UUID, events: Iterable[Event]) -> Self:
        """The state after applying ``events`` to a new aggregate."""
        state = cls(aggregate_id)
        for event in events:
            state.apply(event)
        return state

    def clone(self) -> Self:
        """An independent copy, for a unit of work to change."""
        memo: dict[int, Any] = {}
        twin = object.__new__(type(self))
        twin.__dict__.update({k: _copy(v, memo) for k, v in self.__dict__.items()})
        return twin

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} v{self.version}>"

    def _fields(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


#: Values that never change in place: a copy may share them.
_IMMUTABLE = frozenset(
    {str, int, float, bool, bytes, type(None), UUID, datetime, date, time, timedelta, Decimal}
)


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    """A deep copy of ``value`` that shares immutable values (``copy.deepcopy``, faster)."""
    kind = type(value)
    if kind in _IMMUTABLE or isinstance(value, Enum):
        return value
    found = memo.get(id(value))
    if found is not None:
        return found
    if kind is dict:
        out: Any = {}
        memo[id(value)] = out
        for k, v in value.items():
            out[_copy(k, memo)] = _copy(v, memo)
    elif kind is list:
        out = []
        memo[id(value)] = out
        out.extend(_copy(v, memo) for v in value)
    elif kind is tuple:
        out = tuple(_copy(v, memo) for v in value)
    elif kind is set or kind is frozenset:
        out = kind(_copy(v, memo) for v in value)
    elif hasattr(kind, "__dataclass_fields__") and hasattr(value, "__dict__"):
        out = object.__new__(kind)
        memo[id(value)] = out
        out.__dict__.update({k: _copy(v, memo) for k, v in value.__dict__.items()})
    else:
        return copy.deepcopy(value, memo)
    memo[id(value)] = out
    # deepcopy keeps what it copied alive while the memo lives; so must this.
    memo.setdefault(id(memo), []).append(value)
    return out
