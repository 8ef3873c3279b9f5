"""Hypothesis strategies: random, valid case-management histories through the public API.

A *program* is a list of :class:`Step`; :class:`Runner` plays it against a ledger,
turning each step into a command that is valid for the case it picks (it asks the
ledger for the case's state), so every generated history is one the lifecycle
allows. Some steps are deliberately invalid commands: the runner checks that each is
refused with a :class:`~caseledger.CaseLedgerError` and writes nothing.

Ids come from a seeded generator and the clock is driven by the runner, so the same
program recorded twice gives the same log, byte for byte.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol
from uuid import UUID

from hypothesis import strategies as st

from caseledger import CaseLedgerError, Ledger, Stage
from tests.scenarios import KST

ACTIONS = (
    "discover",
    "discover",
    "assess",
    "classify",
    "plan",
    "link",
    "link",
    "check",
    "check",
    "close",
    "follow_up",
    "reopen",
    "transfer",
    "refer",
    "respond",
    "supervise",
    "reassess",
    "invalid",
)

DONGS = (("d1", "가동", "d1-officer", "d1-manager"), ("d2", "나동", "d2-officer", "d2-manager"))
DISTRICT = "가나구"
PARTNER = "partner"
PARTNER_WORKER = "partner-worker"
HWST = "hwst"
HWST_WORKER = "hwst-manager"
START = datetime(2022, 1, 10, 9, tzinfo=KST)


@dataclass(frozen=True)
class Step:
    """One step of a program: what to do, to which case, and when."""

    action: str
    #: Which of the eligible cases (modulo their number).
    pick: int
    #: Days that pass in the world before this step.
    days: int
    #: Days the entry is backdated: it occurred that much before "now".
    backdate: int
    #: Days between it occurring and the ledger recording it (recorded late).
    delay: int
    #: A small number choosing variants (track, decision, reason, provider…).
    choice: int
    #: Record together with the previous step in one transaction.
    batch: bool


def steps() -> st.SearchStrategy[Step]:
    """One step."""
    return st.builds(
        Step,
        action=st.sampled_from(ACTIONS),
        pick=st.integers(0, 7),
        days=st.integers(0, 40),
        backdate=st.sampled_from((0, 0, 0, 0, 2, 9, 45)),
        delay=st.sampled_from((0, 0, 0, 1, 6)),
        choice=st.integers(0, 11),
        batch=st.booleans(),
    )


def programs(min_size: int = 8, max_size: int = 40) -> st.SearchStrategy[list[Step]]:
    """A list of steps."""
    return st.lists(steps(), min_size=min_size, max_size=max_size)


class Clock(Protocol):
    now: datetime


@dataclass
class Played:
    """What a run did: commands recorded, and refused commands checked."""

    recorded: int = 0
    refused: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def register(ledger: Ledger, at: datetime) -> None:
    """Two dongs with two workers each, the district team, and one private partner."""
    with ledger.batch():
        for code, dong, officer, manager in DONGS:
            ledger.register_organisation(
                code, name=f"{dong} 행정복지센터", sector="public", kind="dong_centre",
                dong=dong, district=DISTRICT, at=at,
            )  # fmt: skip
            ledger.register_worker(officer, organisation=code, role="dong_officer", at=at)
            ledger.register_worker(manager, organisation=code, role="case_manager", at=at)
        ledger.register_organisation(
            HWST, name="희망복지지원단", sector="public", kind="district_team",
            district=DISTRICT, at=at,
        )  # fmt: skip
        ledger.register_worker(HWST_WORKER, organisation=HWST, role="case_manager", at=at)
        ledger.register_organisation(
            PARTNER, name="종합사회복지관", sector="private", kind="welfare_centre",
            district=DISTRICT, at=at,
        )  # fmt: skip
        ledger.register_worker(PARTNER_WORKER, organisation=PARTNER, role="partner_worker", at=at)


class Runner:
    """Plays programs against one ledger whose clock it drives."""

    def __init__(self, ledger: Ledger, clock: Clock, seed: int = 0) -> None:
        self.ledger = ledger
        self.clock = clock
        self.rng = random.Random(seed)
        self.world = START
        self.cases: list[UUID] = []
        self.played = Played()
        clock.now = START
        register(ledger, START - timedelta(days=5))

    def _id(self) -> UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def run(self, program: list[Step]) -> Played:
        """Play every step; consecutive ``batch`` steps share a transaction."""
        group: list[Step] = []
        for step in program:
            if step.action == "invalid":
                self._flush(group)
                group = []
                self._advance(step)
                self._invalid(step)
                continue
            if group and not step.batch:
                self._flush(group)
                group = []
            group.append(step)
        self._flush(group)
        return self.played

    def _flush(self, group: list[Step]) -> None:
        if not group:
            return
        if len(group) == 1:
            self._advance(group[0])
            self._valid(group[0])
            return
        with self.ledger.batch():
            for step in group:
                self._advance(step)
                self._valid(step)

    def _advance(self, step: Step) -> None:
        self.world += timedelta(days=step.days, hours=step.choice % 3)
        recorded = self.world + timedelta(days=step.delay)
        self.clock.now = max(self.clock.now, recorded)

    def _at(self, step: Step, case_id: UUID) -> datetime:
        # Backdated, but never before the household was found.
        at = self.world - timedelta(days=step.backdate)
        return max(at, self.ledger.case(case_id).discovered_at)

    def _eligible(self, wanted: Any) -> list[UUID]:
        return [c for c in self.cases if wanted(self.ledger.case(c))]

    def _pick(self, step: Step, wanted: Any) -> UUID | None:
        found = self._eligible(wanted)
        if not found:
            self.played.skipped += 1
            self._progress(step)
            return None
        return found[step.pick % len(found)]

    def _progress(self, step: Step) -> None:
        """When a step finds no case it fits, move some case one step along instead."""
        if not self.cases or step.choice % 4 == 0:
            self._discover(step)
            return
        state = self.ledger.case(self.cases[step.pick % len(self.cases)])
        if state.stage is Stage.OPENED:
            self._assess(step)
        elif state.stage is Stage.ASSESSED:
            self._classify(step)
        elif state.stage is Stage.SELECTED:
            self._plan(step)
        elif state.stage in (Stage.PLANNED, Stage.LINKAGE_SELECTED):
            self._link(step)
        elif state.stage in (Stage.IN_SERVICE, Stage.LINKED):
            self._check(step)
        elif state.stage is Stage.NOT_SELECTED:
            self._close(step)
        else:
            self._follow_up(step)

    # -- valid commands ----------------------------------------------------------------------

    def _valid(self, step: Step) -> None:
        getattr(self, "_" + step.action)(step)

    def _discover(self, step: Step) -> None:
        _, dong, officer, manager = DONGS[step.choice % 2]
        at = self.world - timedelta(days=step.backdate)
        channels = ("outreach_visit", "blind_spot_system", "safety_net", "partner_referral")
        household = self.ledger.discover_household(
            dong=dong, district=DISTRICT, channel=channels[step.choice % 4], by=officer, at=at,
            household_id=self._id(),
            referred_by=PARTNER if step.choice % 4 == 3 else None,
        )  # fmt: skip
        outcome = "information_only" if step.choice in (5, 11) else "intake"
        self.ledger.record_consultation(
            household, method="visit", outcome=outcome, by=officer, at=at, problems=["health"]
        )
        self.played.recorded += 2
        if outcome == "intake":
            # The private partner may only be referred to or linked with consent.
            self.ledger.grant_consent(
                household, scopes=["collect", "use", "provide"], recipients=[PARTNER],
                purpose="통합사례관리", by=officer, at=at, consent_id=self._id(),
            )  # fmt: skip
            self.played.recorded += 1
        if outcome == "intake":
            worker = manager if step.choice % 3 == 0 else officer
            case = self.ledger.open_case(
                household, by=officer, at=at, worker=worker, case_id=self._id()
            )
            self.cases.append(case)
            self.played.recorded += 1

    def _assess(self, step: Step) -> None:
        case = self._pick(step, lambda c: c.stage is Stage.OPENED)
        if case is None:
            return
        self.ledger.assess_needs(
            case, needs=[{"sub_domain": "health.mental", "urgency": 1 + step.choice % 5}],
            by=self.ledger.case(case).worker, at=self._at(step, case),
        )  # fmt: skip
        self.played.recorded += 1

    def _meeting(self, step: Step, case: UUID, decision: str, at: datetime) -> UUID:
        state = self.ledger.case(case)
        if step.choice % 4 == 0:
            kind, host, by = "integrated", HWST, HWST_WORKER
            attendees = [{"organisation": PARTNER, "role": "사회복지사"}]
        else:
            kind, host, by = "internal", state.organisation, state.worker
            attendees = []
        meeting = self.ledger.hold_meeting(
            kind=kind, host=host, agenda=[case], decisions={case: decision}, attendees=attendees,
            by=by, at=at, meeting_id=self._id(),
        )  # fmt: skip
        self.played.recorded += 1
        return meeting

    def _classify(self, step: Step) -> None:
        case = self._pick(step, lambda c: c.stage is Stage.ASSESSED)
        if case is None:
            return
        at = self._at(step, case)
        meeting = self._meeting(step, case, "select", at)
        track = ("case_managed", "case_managed", "linkage_only", "not_selected")[step.choice % 4]
        self.ledger.classify(
            case, meeting=meeting, track=track, level="complex" if step.choice > 8 else "general",
            criteria_version="test-1", by=self.ledger.case(case).worker, at=at,
        )  # fmt: skip
        self.played.recorded += 1

    def _plan(self, step: Step) -> None:
        case = self._pick(step, lambda c: not c.is_closed and c.track == "case_managed")
        if case is None:
            return
        provider = PARTNER if step.choice % 2 else DONGS[0][0]
        self.ledger.agree_plan(
            case,
            services=[{"domain": "health", "service": "방문상담", "provider": provider,
                       "sector": "private" if provider == PARTNER else "public",
                       "kind": "counselling"}],
            by=self.ledger.case(case).worker, at=self._at(step, case),
        )  # fmt: skip
        self.played.recorded += 1

    def _link(self, step: Step) -> None:
        case = self._pick(
            step, lambda c: not c.is_closed and c.track in ("case_managed", "linkage_only")
        )
        if case is None:
            return
        provider = (PARTNER, DONGS[0][0], DONGS[1][0])[step.choice % 3]
        self.ledger.link_service(
            case, service="식품 지원", provider=provider, domain="economy", kind="in_kind",
            by=self.ledger.case(case).worker, at=self._at(step, case), link_id=self._id(),
        )  # fmt: skip
        self.played.recorded += 1

    def _check(self, step: Step) -> None:
        case = self._pick(step, lambda c: not c.is_closed and c.active_links)
        if case is None:
            return
        state = self.ledger.case(case)
        link = state.active_links[step.pick % len(state.active_links)]
        decision = ("continue", "continue", "adjust", "stop")[step.choice % 4]
        self.ledger.check_service(
            case, link_id=link.link_id, method="visit", progress=10 * (step.choice % 10),
            decision=decision, by=state.worker, at=self._at(step, case),
        )  # fmt: skip
        self.played.recorded += 1

    def _close(self, step: Step) -> None:
        case = self._pick(step, lambda c: not c.is_closed)
        if case is None:
            return
        at = self._at(step, case)
        meeting = self._meeting(step, case, "close", at)
        reasons = ("goal_achieved", "client_refused", "moved_out", "lost_contact")
        self.ledger.close_case(
            case, meeting=meeting, reason=reasons[step.choice % 4],
            by=self.ledger.case(case).worker, at=at,
        )  # fmt: skip
        self.played.recorded += 1

    def _follow_up(self, step: Step) -> None:
        case = self._pick(step, lambda c: c.is_closed)
        if case is None:
            return
        self.ledger.follow_up(case, by=self.ledger.case(case).worker, at=self._at(step, case))
        self.played.recorded += 1

    def _reopen(self, step: Step) -> None:
        case = self._pick(step, lambda c: c.is_closed)
        if case is None:
            return
        self.ledger.reopen_case(
            case, by=self.ledger.case(case).worker, at=self._at(step, case), reason="재발"
        )
        self.played.recorded += 1

    def _transfer(self, step: Step) -> None:
        case = self._pick(step, lambda c: not c.is_closed)
        if case is None:
            return
        state = self.ledger.case(case)
        target = DONGS[1] if state.organisation == DONGS[0][0] else DONGS[0]
        self.ledger.transfer_case(
            case, to_organisation=target[0], to_worker=target[2 + step.choice % 2],
            by=state.worker, at=self._at(step, case),
        )  # fmt: skip
        self.played.recorded += 1

    def _refer(self, step: Step) -> None:
        case = self._pick(step, lambda c: not c.is_closed)
        if case is None:
            return
        self.ledger.refer(
            case, to=PARTNER, domain="social", by=self.ledger.case(case).worker,
            at=self._at(step, case), referral_id=self._id(),
        )  # fmt: skip
        self.played.recorded += 1

    def _respond(self, step: Step) -> None:
        def waiting(c: Any) -> bool:
            return not c.is_closed and any(r.status == "sent" for r in c.referrals.values())

        case = self._pick(step, waiting)
        if case is None:
            return
        state = self.ledger.case(case)
        referral = next(r for r in state.referrals.values() if r.status == "sent")
        accept = step.choice % 3 != 0
        self.ledger.respond_to_referral(
            case, referral.referral_id, accept=accept, reason="" if accept else "정원 초과",
            by=PARTNER_WORKER, at=self._at(step, case),
        )  # fmt: skip
        self.played.recorded += 1

    def _supervise(self, step: Step) -> None:
        case = self._pick(step, lambda c: not c.is_closed)
        if case is None:
            return
        self.ledger.record_supervision(case, by=HWST_WORKER, at=self._at(step, case))
        self.played.recorded += 1

    def _reassess(self, step: Step) -> None:
        case = self._pick(step, lambda c: not c.is_closed and c.assessed_at is not None)
        if case is None:
            return
        self.ledger.reassess(
            case, needs=[{"sub_domain": "economy.debt", "urgency": 2}],
            by=self.ledger.case(case).worker, at=self._at(step, case),
        )  # fmt: skip
        self.played.recorded += 1

    # -- refused commands ----------------------------------------------------------------------

    def _invalid(self, step: Step) -> None:
        attempts = self._refusable(step)
        what, attempt = attempts[step.choice % len(attempts)]
        before = len(self.ledger)
        try:
            attempt()
        except CaseLedgerError:
            self.played.refused += 1
        else:
            self.played.errors.append(f"{what} was accepted")
        if len(self.ledger) != before:
            self.played.errors.append(f"{what} wrote {len(self.ledger) - before} events")

    def _refusable(self, step: Step) -> list[tuple[str, Callable[[], object]]]:
        """Commands the lifecycle refuses, for the case the step picks."""
        ledger = self.ledger
        officer = DONGS[0][2]
        unknown = uuid.UUID(int=2)
        attempts: list[tuple[str, Callable[[], object]]] = [
            (
                "an unknown case",
                partial(ledger.assess_needs, unknown, by=officer, at=self.world,
                        needs=[{"sub_domain": "health.mental", "urgency": 1}]),
            )
        ]  # fmt: skip
        if not self.cases:
            return attempts
        case = self.cases[step.pick % len(self.cases)]
        state = ledger.case(case)
        at = self._at(step, case)
        attempts += [
            ("check an unknown link", partial(ledger.check_service, case, link_id=unknown,
                                              method="phone", progress=0, by=officer, at=at)),
            ("an entry in the future", partial(ledger.record_supervision, case, by=HWST_WORKER,
                                               at=self.clock.now + timedelta(days=2))),
        ]  # fmt: skip
        if state.is_closed:
            attempts += [
                ("link on a closed case", partial(ledger.link_service, case, service="x",
                                                  provider=DONGS[0][0], domain="health",
                                                  by=officer, at=at)),
                ("reassess a closed case", partial(ledger.reassess, case, by=officer, at=at,
                                                   needs=[{"sub_domain": "health.mental",
                                                           "urgency": 1}])),
            ]  # fmt: skip
        else:
            attempts += [
                ("follow-up on an open case", partial(ledger.follow_up, case, by=officer,
                                                      at=at)),
                ("reopen an open case", partial(ledger.reopen_case, case, by=officer, at=at)),
            ]  # fmt: skip
            if state.track != "case_managed":
                service = {"domain": "health", "service": "x", "provider": DONGS[0][0],
                           "sector": "public", "kind": "service"}  # fmt: skip
                attempts.append(
                    ("plan without case-managed selection",
                     partial(ledger.agree_plan, case, services=[service], by=officer, at=at))
                )  # fmt: skip
        return attempts
