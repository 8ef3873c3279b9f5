"""Organisations and workers: who may act in the ledger, and for which organisation.

Each organisation and each worker is a small aggregate whose id is derived from its
code (:func:`organisation_id`, :func:`worker_id`), so callers use the codes their own
systems already have (``by="jungang-officer-1"``) and lookups need no index.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import lru_cache
from uuid import UUID

from caseledger.aggregate import Aggregate
from caseledger.events import OrganisationRegistered, WorkerRegistered
from caseledger.values import Role, Sector

__all__ = ["Organisation", "Worker", "organisation_id", "worker_id"]

_NAMESPACE = uuid.UUID("6f1d0c5e-8f5a-4c1e-9d55-3b8a6a1f2e10")


# Every command looks up its actor and organisations by code; uuid5 hashes each time.
@lru_cache(maxsize=4096)
def organisation_id(code: str) -> UUID:
    """The aggregate id of the organisation with this code."""
    return uuid.uuid5(_NAMESPACE, "organisation:" + code)


@lru_cache(maxsize=4096)
def worker_id(code: str) -> UUID:
    """The aggregate id of the worker with this code."""
    return uuid.uuid5(_NAMESPACE, "worker:" + code)


class Organisation(Aggregate):
    """A registered organisation."""

    immutable = True

    code: str
    name: str
    sector: Sector
    kind: str
    dong: str | None
    district: str | None
    registered_at: datetime

    def on_OrganisationRegistered(self, e: OrganisationRegistered) -> None:  # noqa: N802
        self.code = e.code
        self.name = e.name
        self.sector = e.sector
        self.kind = e.kind
        self.dong = e.dong
        self.district = e.district
        self.registered_at = e.occurred_at


class Worker(Aggregate):
    """A registered worker account."""

    immutable = True

    code: str
    organisation: str
    role: Role
    registered_at: datetime

    def on_WorkerRegistered(self, e: WorkerRegistered) -> None:  # noqa: N802
        self.code = e.code
        self.organisation = e.worker_organisation
        self.role = e.role
        self.registered_at = e.occurred_at
