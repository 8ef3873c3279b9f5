"""The household aggregate: discovery, consultations and consent of its members."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from caseledger.aggregate import Aggregate
from caseledger.events import (
    ConsentGranted,
    ConsentWithdrawn,
    ConsultationRecorded,
    HouseholdDiscovered,
    HouseholdErased,
)
from caseledger.values import Channel, ConsentScope, ConsultationOutcome

__all__ = ["Consent", "Household"]


@dataclass
class Consent:
    """One consent of a household member, as it stands now."""

    consent_id: UUID
    member_no: int
    scopes: tuple[ConsentScope, ...]
    recipients: tuple[str, ...]
    purpose: str
    granted_at: datetime
    expires_at: datetime | None
    withdrawn_at: datetime | None = None

    def covers(self, scope: ConsentScope, recipient: str | None, at: datetime) -> bool:
        """Whether this consent covers ``scope`` (for ``recipient``) at time ``at``."""
        if scope not in self.scopes or at < self.granted_at:
            return False
        if self.withdrawn_at is not None and at >= self.withdrawn_at:
            return False
        if self.expires_at is not None and at >= self.expires_at:
            return False
        return recipient is None or not self.recipients or recipient in self.recipients


class Household(Aggregate):
    """A household discovered in need."""

    dong: str
    district: str
    channel: Channel
    organisation: str
    discovered_by: str
    discovered_at: datetime
    erased_at: datetime | None
    member_nos: tuple[int, ...]
    consultations: int
    intake_consulted: bool
    consents: dict[UUID, Consent]

    def on_HouseholdDiscovered(self, e: HouseholdDiscovered) -> None:  # noqa: N802
        self.dong = e.dong
        self.district = e.district
        self.channel = e.channel
        self.organisation = e.organisation
        self.discovered_by = e.actor
        self.discovered_at = e.occurred_at
        self.erased_at = None
        self.member_nos = tuple(m.member_no for m in e.members) or (1,)
        self.consultations = 0
        self.intake_consulted = False
        self.consents = {}

    def on_ConsultationRecorded(self, e: ConsultationRecorded) -> None:  # noqa: N802
        self.consultations += 1
        if e.outcome is ConsultationOutcome.INTAKE:
            self.intake_consulted = True

    def on_ConsentGranted(self, e: ConsentGranted) -> None:  # noqa: N802
        self.consents[e.consent_id] = Consent(
            consent_id=e.consent_id,
            member_no=e.member_no,
            scopes=e.scopes,
            recipients=e.recipients,
            purpose=e.purpose,
            granted_at=e.occurred_at,
            expires_at=e.expires_at,
        )

    def on_ConsentWithdrawn(self, e: ConsentWithdrawn) -> None:  # noqa: N802
        self.consents[e.consent_id].withdrawn_at = e.occurred_at

    def on_HouseholdErased(self, e: HouseholdErased) -> None:  # noqa: N802
        self.erased_at = e.occurred_at

    def consent_covers(self, scope: ConsentScope, recipient: str | None, at: datetime) -> bool:
        """Whether any consent of the household covers ``scope`` for ``recipient`` at ``at``."""
        return any(c.covers(scope, recipient, at) for c in self.consents.values())
