"""The case meeting aggregate (사례회의): who met, which cases, what was decided."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from caseledger.aggregate import Aggregate
from caseledger.errors import MeetingRuleError
from caseledger.events import CaseMeetingHeld
from caseledger.values import MeetingDecision, MeetingKind

__all__ = ["CaseMeeting"]


class CaseMeeting(Aggregate):
    """A case meeting that was held."""

    immutable = True

    kind: MeetingKind
    host: str
    title: str
    held_at: datetime
    attendees: tuple[str, ...]
    agenda: tuple[UUID, ...]
    decisions: dict[UUID, MeetingDecision]

    def on_CaseMeetingHeld(self, e: CaseMeetingHeld) -> None:  # noqa: N802
        self.kind = e.kind
        self.host = e.host
        self.title = e.title
        self.held_at = e.occurred_at
        self.attendees = tuple(a.organisation for a in e.attendees)
        self.agenda = tuple(item.case_id for item in e.agenda)
        self.decisions = {i.case_id: i.decision for i in e.agenda if i.decision is not None}

    def require_authority_for(self, case_id: UUID, at: datetime, what: str) -> None:
        """Raise unless this meeting can authorise ``what`` on the case at ``at``."""
        if case_id not in self.agenda:
            msg = (
                f"meeting {self.id} ({self.held_at:%Y-%m-%d}) did not have case {case_id} "
                f"on its agenda, so it cannot authorise {what}"
            )
            raise MeetingRuleError(msg)
        if at < self.held_at:
            msg = (
                f"{what} is dated {at.isoformat()}, before meeting {self.id} was held "
                f"({self.held_at.isoformat()})"
            )
            raise MeetingRuleError(msg)
