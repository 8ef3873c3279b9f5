"""The base of every aggregate: state rebuilt by applying its events in order.

Applying an event never reads the clock or does I/O, so replaying the same events
always gives the same state. Decisions (the functions that turn a command into new
events) live beside each aggregate and only read state.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
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
        return copy.deepcopy(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} v{self.version}>"

    def _fields(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}
