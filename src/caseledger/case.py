"""The case aggregate: its lifecycle state and the rules that guard it.

State changes only by applying events (``on_<Event>`` methods). The ``decide_*``
functions check a command against the state and return the event to record, as an
event class and its fields; they never write anything, so a refused command leaves
nothing behind.

Lifecycle (domain guide)::

    opened ─▶ assessed ─▶ classified ─┬─▶ selected ─▶ planned ─▶ in service ─▶ closed
              (at a meeting)          ├─▶ linkage selected ─▶ linked ───────▶ closed
                                      └─▶ not selected ─────────────────────▶ closed
    closed ─▶ follow-up · reopened (back to opened)  ·  any open stage ─▶ transferred
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from caseledger import commands as c
from caseledger.aggregate import Aggregate
from caseledger.errors import (
    AuthorityError,
    CaseClosedError,
    ReferralNotFound,
    RuleViolation,
    ServiceLinkNotFound,
    StageError,
)
from caseledger.events import (
    CaseClassified,
    CaseClosed,
    CaseOpened,
    CaseReopened,
    CaseTransferred,
    Event,
    FollowUpConducted,
    NeedsAssessed,
    NeedsReassessed,
    ReferralAccepted,
    ReferralCompleted,
    ReferralRejected,
    ReferralRevoked,
    ReferralSent,
    ServiceChecked,
    ServiceLinked,
    ServicePlanAgreed,
    SupervisionRecorded,
)
from caseledger.meeting import CaseMeeting
from caseledger.registry import Organisation, Worker
from caseledger.values import (
    CheckDecision,
    ClosureReason,
    Level,
    PersonalData,
    ReferralStatus,
    Sector,
    Stage,
    Track,
)

__all__ = ["Case", "Decision", "Link", "Referral"]

#: What a decision returns: the event class to record and its fields.
Decision = tuple[type[Event], dict[str, Any]]


@dataclass
class Link:
    """A service linked to the case."""

    link_id: UUID
    provider: str
    sector: Sector
    service: str
    linked_at: datetime
    active: bool = True
    checks: int = 0
    last_checked_at: datetime | None = None


@dataclass
class Referral:
    """A referral of the case to another organisation."""

    referral_id: UUID
    from_organisation: str
    to_organisation: str
    status: ReferralStatus
    sent_at: datetime


class Case(Aggregate):
    """The state of one case."""

    household_id: UUID
    dong: str
    district: str
    organisation: str
    worker: str
    stage: Stage
    track: Track | None
    level: Level | None
    discovered_at: datetime
    opened_at: datetime
    assessed_at: datetime | None
    classified_at: datetime | None
    plan_agreed_at: datetime | None
    plan_revision: int
    closed_at: datetime | None
    closure_reason: ClosureReason | None
    stage_since: datetime
    links: dict[UUID, Link]
    active_link_count: int
    referrals: dict[UUID, Referral]
    last_checked_at: datetime | None
    follow_ups: int
    reopened: int

    @property
    def is_closed(self) -> bool:
        """Whether the case is closed now."""
        return self.stage is Stage.CLOSED

    @property
    def active_links(self) -> list[Link]:
        """Service links not stopped."""
        return [link for link in self.links.values() if link.active]

    # -- applying events -------------------------------------------------------------------

    def _move(self, stage: Stage, at: datetime) -> None:
        if stage is not self.stage:
            self.stage = stage
            self.stage_since = at

    def on_CaseOpened(self, e: CaseOpened) -> None:  # noqa: N802
        self.household_id = e.household_id
        self.dong = e.dong
        self.district = e.district
        self.organisation = e.case_organisation
        self.worker = e.worker
        self.stage = Stage.OPENED
        self.stage_since = e.occurred_at
        self.track = None
        self.level = None
        self.opened_at = e.occurred_at
        self.discovered_at = e.discovered_at
        self.assessed_at = None
        self.classified_at = None
        self.plan_agreed_at = None
        self.plan_revision = 0
        self.closed_at = None
        self.closure_reason = None
        self.links = {}
        self.active_link_count = 0
        self.referrals = {}
        self.last_checked_at = None
        self.follow_ups = 0
        self.reopened = 0

    def on_NeedsAssessed(self, e: NeedsAssessed) -> None:  # noqa: N802
        self.assessed_at = e.occurred_at
        self._move(Stage.ASSESSED, e.occurred_at)

    def on_NeedsReassessed(self, e: NeedsReassessed) -> None:  # noqa: N802
        self.assessed_at = e.occurred_at

    def _stage_for_track(self) -> Stage:
        active = self.active_link_count > 0
        if self.track is Track.CASE_MANAGED:
            if active:
                return Stage.IN_SERVICE
            return Stage.PLANNED if self.plan_agreed_at else Stage.SELECTED
        if self.track is Track.LINKAGE_ONLY:
            return Stage.LINKED if active else Stage.LINKAGE_SELECTED
        return Stage.NOT_SELECTED

    def on_CaseClassified(self, e: CaseClassified) -> None:  # noqa: N802
        self.track = e.track
        self.level = e.level
        self.classified_at = e.occurred_at
        self._move(self._stage_for_track(), e.occurred_at)

    def on_ServicePlanAgreed(self, e: ServicePlanAgreed) -> None:  # noqa: N802
        self.plan_agreed_at = self.plan_agreed_at or e.occurred_at
        self.plan_revision = e.revision
        self._move(self._stage_for_track(), e.occurred_at)

    def on_ServiceLinked(self, e: ServiceLinked) -> None:  # noqa: N802
        self.links[e.link_id] = Link(e.link_id, e.provider, e.sector, e.service, e.occurred_at)
        self.active_link_count += 1
        self._move(self._stage_for_track(), e.occurred_at)

    def on_ServiceChecked(self, e: ServiceChecked) -> None:  # noqa: N802
        link = self.links[e.link_id]
        link.checks += 1
        link.last_checked_at = e.occurred_at
        if self.last_checked_at is None or e.occurred_at > self.last_checked_at:
            self.last_checked_at = e.occurred_at
        if e.decision is CheckDecision.STOP:
            link.active = False
            self.active_link_count -= 1
            self._move(self._stage_for_track(), e.occurred_at)

    def on_ReferralSent(self, e: ReferralSent) -> None:  # noqa: N802
        self.referrals[e.referral_id] = Referral(
            e.referral_id, e.organisation, e.to_organisation, ReferralStatus.SENT, e.occurred_at
        )

    def on_ReferralAccepted(self, e: ReferralAccepted) -> None:  # noqa: N802
        self.referrals[e.referral_id].status = ReferralStatus.ACCEPTED

    def on_ReferralRejected(self, e: ReferralRejected) -> None:  # noqa: N802
        self.referrals[e.referral_id].status = ReferralStatus.REJECTED

    def on_ReferralCompleted(self, e: ReferralCompleted) -> None:  # noqa: N802
        self.referrals[e.referral_id].status = ReferralStatus.COMPLETED

    def on_ReferralRevoked(self, e: ReferralRevoked) -> None:  # noqa: N802
        self.referrals[e.referral_id].status = ReferralStatus.REVOKED

    def on_CaseClosed(self, e: CaseClosed) -> None:  # noqa: N802
        self.closed_at = e.occurred_at
        self.closure_reason = e.reason
        for link in self.links.values():
            link.active = False
        self.active_link_count = 0
        self._move(Stage.CLOSED, e.occurred_at)

    def on_FollowUpConducted(self, e: FollowUpConducted) -> None:  # noqa: N802
        self.follow_ups += 1

    def on_CaseReopened(self, e: CaseReopened) -> None:  # noqa: N802
        self.reopened += 1
        self.worker = e.worker
        self.track = None
        self.level = None
        self.assessed_at = None
        self.classified_at = None
        self.plan_agreed_at = None
        self.closed_at = None
        self.closure_reason = None
        self._move(Stage.OPENED, e.occurred_at)

    def on_CaseTransferred(self, e: CaseTransferred) -> None:  # noqa: N802
        self.organisation = e.to_organisation
        self.worker = e.to_worker
        self.dong = e.to_dong
        self.district = e.to_district

    # -- guards ----------------------------------------------------------------------------

    def require_open(self, what: str) -> None:
        """Raise :class:`CaseClosedError` if the case is closed."""
        if self.is_closed:
            msg = (
                f"case {self.id} was closed on {self.closed_at:%Y-%m-%d}; {what} is not "
                "allowed on a closed case (only follow_up and reopen_case are)"
            )
            raise CaseClosedError(msg)

    def require_track(self, tracks: tuple[Track, ...], what: str) -> None:
        """Raise :class:`StageError` unless the case was classified into one of ``tracks``."""
        if self.track not in tracks:
            wanted = " or ".join(t.value for t in tracks)
            now = self.track.value if self.track else "not yet classified"
            msg = f"{what} needs case {self.id} classified as {wanted} at a meeting; it is {now}"
            raise StageError(msg)

    def referral(self, referral_id: UUID) -> Referral:
        """The referral with this id, or :class:`ReferralNotFound`."""
        try:
            return self.referrals[referral_id]
        except KeyError:
            msg = f"case {self.id} has no referral {referral_id}"
            raise ReferralNotFound(msg) from None

    def link(self, link_id: UUID) -> Link:
        """The service link with this id, or :class:`ServiceLinkNotFound`."""
        try:
            return self.links[link_id]
        except KeyError:
            msg = f"case {self.id} has no service link {link_id}"
            raise ServiceLinkNotFound(msg) from None


def _notes(text: str | None) -> PersonalData | None:
    return PersonalData(notes=text) if text else None


# ---------------------------------------------------------------------------
# Decisions: state + command -> the event to record (or a typed error)


def decide_assess(case: Case, cmd: c.AssessNeeds) -> Decision:
    """Record the first needs assessment of a case at intake."""
    case.require_open("a needs assessment")
    if case.stage is not Stage.OPENED:
        msg = f"case {case.id} is already assessed ({case.stage.value}); use reassess"
        raise StageError(msg)
    return NeedsAssessed, {"needs": cmd.needs, "risk": cmd.risk, "personal": _notes(cmd.notes)}


def decide_reassess(case: Case, cmd: c.Reassess) -> Decision:
    """Record a reassessment of an assessed case."""
    case.require_open("a reassessment")
    if case.assessed_at is None:
        msg = f"case {case.id} has no assessment yet; use assess_needs first"
        raise StageError(msg)
    return NeedsReassessed, {"needs": cmd.needs, "risk": cmd.risk, "personal": _notes(cmd.notes)}


def decide_classify(case: Case, cmd: c.Classify, meeting: CaseMeeting) -> Decision:
    """Record the selection decision of a meeting that had the case on its agenda."""
    case.require_open("a selection decision")
    if case.assessed_at is None:
        msg = f"case {case.id} must be assessed (assess_needs) before it is classified"
        raise StageError(msg)
    meeting.require_authority_for(case.id, cmd.at, "a selection decision")
    return CaseClassified, {
        "meeting_id": meeting.id,
        "track": cmd.track,
        "level": cmd.level,
        "criteria_version": cmd.criteria_version,
        "rationale": cmd.rationale,
        "personal": _notes(cmd.notes),
    }


def decide_agree_plan(case: Case, cmd: c.AgreePlan) -> Decision:
    """Record a service plan (or revision) for a case-managed case."""
    case.require_open("a service plan")
    case.require_track((Track.CASE_MANAGED,), "a service plan")
    return ServicePlanAgreed, {
        "services": cmd.services,
        "goal_count": cmd.goal_count,
        "agreed_on": cmd.agreed_on or cmd.at.date(),
        "revision": case.plan_revision + 1,
        "personal": _notes(cmd.notes),
    }


def decide_link(case: Case, cmd: c.LinkService, provider: Organisation, link_id: UUID) -> Decision:
    """Link a service to a case classified as case-managed or linkage-only."""
    case.require_open("a service link")
    case.require_track((Track.CASE_MANAGED, Track.LINKAGE_ONLY), "a service link")
    if link_id in case.links:
        msg = f"case {case.id} already has a service link {link_id}"
        raise RuleViolation(msg)
    if cmd.referral_id is not None:
        case.referral(cmd.referral_id)
    return ServiceLinked, {
        "link_id": link_id,
        "domain": cmd.domain,
        "service": cmd.service,
        "provider": provider.code,
        "sector": cmd.sector or provider.sector,
        "kind": cmd.kind,
        "amount": cmd.amount,
        "referral_id": cmd.referral_id,
        "meeting_id": cmd.meeting_id,
    }


def decide_refer(case: Case, cmd: c.Refer, actor: Worker, referral_id: UUID) -> Decision:
    """Refer the case to another organisation."""
    case.require_open("a referral")
    if cmd.to == actor.organisation:
        msg = f"cannot refer case {case.id} to the referring organisation itself ({cmd.to})"
        raise RuleViolation(msg)
    if referral_id in case.referrals:
        msg = f"case {case.id} already has a referral {referral_id}"
        raise RuleViolation(msg)
    return ReferralSent, {
        "referral_id": referral_id,
        "to_organisation": cmd.to,
        "domain": cmd.domain,
        "purpose": cmd.purpose,
    }


def _require_receiver(referral: Referral, actor: Worker, what: str) -> None:
    if actor.organisation != referral.to_organisation:
        msg = (
            f"only a worker of {referral.to_organisation} may {what} referral "
            f"{referral.referral_id}; {actor.code} works for {actor.organisation}"
        )
        raise AuthorityError(msg)


def decide_respond(case: Case, cmd: c.RespondToReferral, actor: Worker) -> Decision:
    """Accept or reject a sent referral, as the receiving organisation."""
    case.require_open("a referral response")
    referral = case.referral(cmd.referral_id)
    _require_receiver(referral, actor, "respond to")
    if referral.status is not ReferralStatus.SENT:
        msg = f"referral {referral.referral_id} is {referral.status.value}, not awaiting a response"
        raise StageError(msg)
    if cmd.accept:
        return ReferralAccepted, {"referral_id": referral.referral_id}
    if not cmd.reason:
        msg = "rejecting a referral needs a reason"
        raise RuleViolation(msg)
    return ReferralRejected, {"referral_id": referral.referral_id, "reason": cmd.reason}


def decide_complete_referral(case: Case, cmd: c.CompleteReferral, actor: Worker) -> Decision:
    """Complete an accepted referral, as the receiving organisation."""
    case.require_open("completing a referral")
    referral = case.referral(cmd.referral_id)
    _require_receiver(referral, actor, "complete")
    if referral.status is not ReferralStatus.ACCEPTED:
        msg = (
            f"referral {referral.referral_id} is {referral.status.value}; "
            "only an accepted referral can be completed"
        )
        raise StageError(msg)
    return ReferralCompleted, {"referral_id": referral.referral_id}


def decide_revoke_referral(case: Case, cmd: c.RevokeReferral, actor: Worker) -> Decision:
    """Revoke a referral not yet completed, as the sending organisation."""
    case.require_open("revoking a referral")
    referral = case.referral(cmd.referral_id)
    if actor.organisation != referral.from_organisation:
        msg = (
            f"only the sender {referral.from_organisation} may revoke referral "
            f"{referral.referral_id}; {actor.code} works for {actor.organisation}"
        )
        raise AuthorityError(msg)
    if referral.status not in (ReferralStatus.SENT, ReferralStatus.ACCEPTED):
        msg = (
            f"referral {referral.referral_id} is {referral.status.value} "
            "and can no longer be revoked"
        )
        raise StageError(msg)
    return ReferralRevoked, {"referral_id": referral.referral_id, "reason": cmd.reason}


def decide_check(case: Case, cmd: c.CheckService) -> Decision:
    """Record a check of an active service link."""
    case.require_open("a service check")
    link = case.link(cmd.link_id)
    if not link.active:
        msg = f"service link {link.link_id} was stopped; there is nothing to check"
        raise StageError(msg)
    return ServiceChecked, {
        "link_id": link.link_id,
        "method": cmd.method,
        "progress": cmd.progress,
        "decision": cmd.decision,
        "personal": _notes(cmd.notes),
    }


def decide_supervision(case: Case, cmd: c.RecordSupervision) -> Decision:
    """Record supervision on an open case."""
    case.require_open("supervision")
    return SupervisionRecorded, {"personal": _notes(cmd.notes)}


def decide_close(case: Case, cmd: c.CloseCase, meeting: CaseMeeting) -> Decision:
    """Close an open case as decided at a meeting that had it on its agenda."""
    if case.is_closed:
        msg = f"case {case.id} is already closed (on {case.closed_at:%Y-%m-%d})"
        raise CaseClosedError(msg)
    meeting.require_authority_for(case.id, cmd.at, "closing the case")
    return CaseClosed, {"meeting_id": meeting.id, "reason": cmd.reason}


def decide_follow_up(case: Case, cmd: c.FollowUp) -> Decision:
    """Record follow-up on a closed case."""
    if not case.is_closed:
        msg = f"follow-up is for closed cases; case {case.id} is {case.stage.value}"
        raise StageError(msg)
    return FollowUpConducted, {
        "method": cmd.method,
        "recommend_reopen": cmd.recommend_reopen,
        "personal": _notes(cmd.notes),
    }


def decide_reopen(case: Case, cmd: c.ReopenCase, worker: Worker) -> Decision:
    """Reopen a closed case, assigning a worker."""
    if not case.is_closed:
        msg = f"only a closed case can be reopened; case {case.id} is {case.stage.value}"
        raise StageError(msg)
    return CaseReopened, {"reason": cmd.reason, "worker": worker.code}


def decide_transfer(case: Case, cmd: c.TransferCase, to: Organisation, worker: Worker) -> Decision:
    """Transfer an open case to a worker of another organisation."""
    case.require_open("a transfer")
    if worker.organisation != to.code:
        msg = f"worker {worker.code} belongs to {worker.organisation}, not {to.code}"
        raise RuleViolation(msg)
    if to.code == case.organisation and worker.code == case.worker:
        msg = f"case {case.id} is already with {worker.code} at {to.code}"
        raise RuleViolation(msg)
    return CaseTransferred, {
        "to_organisation": to.code,
        "to_worker": worker.code,
        "to_dong": to.dong or case.dong,
        "to_district": to.district or case.district,
    }
