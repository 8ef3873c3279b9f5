"""The directory: registered organisations and workers, for the other read models.

Registered first, so projections applied after it may look up an organisation's
dong and district while applying the same batch (organisations never change once
registered, so the lookup does not depend on batch boundaries). Worker names are
personal data and are not kept here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from caseledger.events import (
    CaseClassified,
    CaseClosed,
    CaseMeetingHeld,
    CaseOpened,
    CaseReopened,
    CaseTransferred,
    ConsentGranted,
    ConsentWithdrawn,
    ConsultationRecorded,
    Event,
    FollowUpConducted,
    HouseholdDiscovered,
    HouseholdErased,
    NeedsAssessed,
    NeedsReassessed,
    OrganisationRegistered,
    ReferralAccepted,
    ReferralCompleted,
    ReferralRejected,
    ReferralRevoked,
    ReferralSent,
    ServiceChecked,
    ServiceLinked,
    ServicePlanAgreed,
    SupervisionRecorded,
    WorkerRegistered,
)
from caseledger.projections.base import Item, Projection, chunks, fetch, placeholders
from caseledger.store import Tx

__all__ = ["Directory"]


class Directory(Projection):
    """Organisations (code, name, sector, kind, dong, district) and workers (code, role)."""

    name: ClassVar[str] = "directory"
    version: ClassVar[int] = 1
    handles: ClassVar[frozenset[type[Event]]] = frozenset(
        {OrganisationRegistered, WorkerRegistered}
    )
    # Only registrations say anything about organisations and workers.
    ignores: ClassVar[frozenset[type[Event]]] = frozenset(
        {
            HouseholdDiscovered, ConsultationRecorded, ConsentGranted, ConsentWithdrawn,
            HouseholdErased, CaseOpened, NeedsAssessed, CaseMeetingHeld, CaseClassified,
            ServicePlanAgreed, ServiceLinked, ReferralSent, ReferralAccepted, ReferralRejected,
            ReferralCompleted, ReferralRevoked, ServiceChecked, NeedsReassessed,
            SupervisionRecorded, CaseClosed, FollowUpConducted, CaseReopened, CaseTransferred,
        }
    )  # fmt: skip
    tables: ClassVar[tuple[str, ...]] = ("caseledger_organisation", "caseledger_worker")

    def create_statements(self) -> list[str]:
        s = self.schema
        return [
            f"CREATE TABLE IF NOT EXISTS {s.t('caseledger_organisation')} ("
            f"code {s.text} PRIMARY KEY, name TEXT NOT NULL, sector TEXT NOT NULL, "
            f"kind TEXT NOT NULL, dong TEXT, district TEXT, registered_at {s.time} NOT NULL, "
            "position BIGINT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {s.t('caseledger_worker')} ("
            f"code {s.text} PRIMARY KEY, organisation {s.text} NOT NULL, role TEXT NOT NULL, "
            f"registered_at {s.time} NOT NULL, position BIGINT NOT NULL)",
        ]

    def apply(self, tx: Tx, items: Sequence[Item]) -> None:
        orgs = []
        workers = []
        for item in items:
            f = item.fields
            if item.cls is OrganisationRegistered:
                orgs.append(
                    (
                        f["code"],
                        f["name"],
                        str(f["sector"]),
                        f["kind"],
                        f.get("dong"),
                        f.get("district"),
                        item.occurred,
                        item.position,
                    )
                )
            elif item.cls is WorkerRegistered:
                workers.append(
                    (
                        f["code"],
                        f["worker_organisation"],
                        str(f["role"]),
                        item.occurred,
                        item.position,
                    )
                )
        s = self.schema
        tx.executemany(
            f"INSERT INTO {s.t('caseledger_organisation')} "
            "(code, name, sector, kind, dong, district, registered_at, position) "
            "VALUES (?,?,?,?,?,?,?,?)",
            orgs,
        )
        tx.executemany(
            f"INSERT INTO {s.t('caseledger_worker')} "
            "(code, organisation, role, registered_at, position) VALUES (?,?,?,?,?)",
            workers,
        )


def organisation_places(
    tx: Tx, prefix: str, codes: Sequence[str]
) -> dict[str, tuple[str | None, str | None]]:
    """Dong and district of each registered organisation among ``codes``."""
    found: dict[str, tuple[str | None, str | None]] = {}
    unique = sorted(set(codes))
    for part in chunks(unique):
        tx.execute(
            f"SELECT code, dong, district FROM {prefix}caseledger_organisation "
            f"WHERE code IN ({placeholders(len(part))})",
            part,
        )
        for code, dong, district in fetch(tx):
            found[code] = (dong, district)
    return found
