"""A stateful model test: the ledger against a simple in-memory model of the domain.

Hypothesis drives a :class:`~hypothesis.stateful.RuleBasedStateMachine` through the
whole lifecycle (discovery, consultation, intake, assessment, meetings, selection,
plans, service links and checks, referrals and their responses, closure, follow-up,
reopening, transfer, supervision), consent (granted, withdrawn) and erasure. Rules pick
*any* household, case, meeting, link or referral, so many commands are invalid: the
model says, before each command, whether the ledger must accept it or refuse it and with
which typed error. After every step the ledger's cases, households and read models
(caseload, meeting register) must equal the model, and the log must have grown by
exactly the events of the accepted commands; a refused command writes nothing.

Signed checkpoints taken along the way must stay consistent with each other and with
the log (``integrity.verify_consistency`` over leaves recomputed from the records), and
at the end the read models must equal a rebuild.

``CASELEDGER_RELIABILITY_EXAMPLES`` sets how many programs run (see ``docs/reliability.md``).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from caseledger import (
    AuthorityError,
    CaseClosedError,
    CaseLedgerError,
    CaseNotFound,
    ConsentError,
    IdempotencyConflict,
    Ledger,
    MeetingRuleError,
    ReferralNotFound,
    RetentionError,
    RuleViolation,
    ServiceLinkNotFound,
    StageError,
    TimeError,
)
from caseledger.integrity import (
    consistency_proof_from_hashes,
    generate_key,
    leaf_hash,
    parse_checkpoint,
    root_from_leaf_hashes,
    verify_consistency,
)
from caseledger.merkle_log import record_leaf
from tests.conftest import FixedClock
from tests.reliability.harness import examples, read_model_problems, record_figures
from tests.scenarios import KST

SIGNER, VERIFIER = generate_key("example.org/caseledger/model")
DISTRICT = "가나구"
OFFICERS = {"d1": "d1-officer", "d2": "d2-officer"}
DONGS = {"d1": "가동", "d2": "나동"}
LEAD = "d1-lead"
PARTNER = "partner"
PARTNER_WORKER = "partner-worker"
START = datetime(2022, 1, 3, 9, tzinfo=KST)
#: A signed checkpoint is taken after every this many accepted commands.
CHECKPOINT_EVERY = 7

#: Figures of every state machine run in this session.
_RUNS = {"programs": 0, "steps": 0, "accepted": 0, "refused": 0, "checkpoints": 0}
#: Accepted and refused commands per kind (accepted) or per error class (refused).
_KINDS: Counter[str] = Counter()


@dataclass
class MCase:
    """The model of a case: what the ledger must say about it."""

    household: UUID
    organisation: str = "d1"
    worker: str = "d1-officer"
    stage: str = "opened"
    track: str | None = None
    assessed: bool = False
    planned: bool = False
    links: dict[UUID, bool] = field(default_factory=dict)  # link id -> active
    providers: dict[UUID, str] = field(default_factory=dict)  # link id -> provider
    referrals: dict[UUID, str] = field(default_factory=dict)  # referral id -> status
    events: int = 1

    @property
    def closed(self) -> bool:
        return self.stage == "closed"

    @property
    def active_links(self) -> int:
        return sum(self.links.values())

    def settle(self) -> None:
        """The stage the track and the links put the case in (``Case._stage_for_track``)."""
        if self.track == "case_managed":
            if self.active_links:
                self.stage = "in_service"
            else:
                self.stage = "planned" if self.planned else "selected"
        elif self.track == "linkage_only":
            self.stage = "linked" if self.active_links else "linkage_selected"
        else:
            self.stage = "not_selected"

    def related_to_partner(self) -> bool:
        """Whether the partner holds an active referral or service link (policy relationship)."""
        return any(s in ("sent", "accepted") for s in self.referrals.values()) or any(
            active and self.providers[link] == PARTNER for link, active in self.links.items()
        )


@dataclass
class MHousehold:
    """The model of a household."""

    intake: bool
    erased: bool = False
    consents: dict[UUID, bool] = field(default_factory=dict)  # consent id -> withdrawn
    cases: list[UUID] = field(default_factory=list)

    def consents_to_partner(self) -> bool:
        return any(not withdrawn for withdrawn in self.consents.values())


picks = st.integers(min_value=0, max_value=1_000)


class LedgerModel(RuleBasedStateMachine):
    """The ledger, driven side by side with the model."""

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.clock = FixedClock(START)
        self.ledger = Ledger.open(":memory:", clock=self.clock)
        self.households: dict[UUID, MHousehold] = {}
        self.cases: dict[UUID, MCase] = {}
        self.meetings: dict[UUID, set[UUID]] = {}
        self.events = 0
        self.checkpoints: list[str] = []
        self.keyed: tuple[str, str, Callable[[str, str], Any], UUID] | None = None
        self.ids = 0
        _RUNS["programs"] += 1

    def teardown(self) -> None:
        try:
            if self.events:
                report = self.ledger.verify(self.checkpoints, VERIFIER)
                assert report.ok, report.lines()
                assert read_model_problems(self.ledger) == []
        finally:
            self.ledger.close()

    # -- helpers ----------------------------------------------------------------------------

    def _tick(self) -> datetime:
        self.now += timedelta(hours=1)
        self.clock.now = self.now + timedelta(minutes=1)
        return self.now

    def _id(self) -> UUID:
        self.ids += 1
        return uuid.UUID(int=self.ids, version=4)

    def _attempt(
        self, expected: type[CaseLedgerError] | None, events: int, call: Callable[[], Any]
    ) -> Any:
        """Run one command; it must succeed and write ``events``, or fail with ``expected``."""
        _RUNS["steps"] += 1
        before = len(self.ledger)
        if expected is None:
            result = call()
            self.events += events
            assert len(self.ledger) == before + events
            _RUNS["accepted"] += 1
            _KINDS[f"accepted {sys._getframe(1).f_code.co_name}"] += 1
            if _RUNS["accepted"] % CHECKPOINT_EVERY == 0:
                self._checkpoint()
            return result
        with pytest.raises(expected) as refused:
            call()
        assert len(self.ledger) == before, "a refused command wrote something"
        _RUNS["refused"] += 1
        _KINDS[f"refused {type(refused.value).__name__}"] += 1
        return None

    def _pick(self, items: dict[UUID, Any], n: int) -> UUID | None:
        if not items:
            return None
        keys = list(items)
        return keys[n % len(keys)]

    # -- setup --------------------------------------------------------------------------------

    @initialize()
    def register(self) -> None:
        at = self._tick()
        with self.ledger.batch():
            for code, dong in DONGS.items():
                self.ledger.register_organisation(
                    code,
                    name=f"{dong} 행정복지센터",
                    sector="public",
                    kind="dong_centre",
                    dong=dong,
                    district=DISTRICT,
                    at=at,
                )
                self.ledger.register_worker(
                    OFFICERS[code], organisation=code, role="dong_officer", at=at
                )
            self.ledger.register_worker(LEAD, organisation="d1", role="supervisor", at=at)
            self.ledger.register_organisation(
                PARTNER,
                name="종합사회복지관",
                sector="private",
                kind="welfare_centre",
                district=DISTRICT,
                at=at,
            )
            self.ledger.register_worker(
                PARTNER_WORKER, organisation=PARTNER, role="partner_worker", at=at
            )
        self.events = len(self.ledger)

    # -- households ---------------------------------------------------------------------------

    @rule(intake=st.booleans(), dong=st.sampled_from(sorted(DONGS)), open_now=st.booleans())
    def discover(self, intake: bool, dong: str, open_now: bool) -> None:
        at = self._tick()
        household = self._id()
        outcome = "intake" if intake else "information_only"
        officer = OFFICERS[dong]

        def call() -> None:
            with self.ledger.batch():
                self.ledger.discover_household(
                    dong=DONGS[dong],
                    district=DISTRICT,
                    channel="outreach_visit",
                    by=officer,
                    at=at,
                    household_id=household,
                    members=[
                        {
                            "member_no": 1,
                            "birth_year": 1950,
                            "personal": {"name": f"가상-{household.int}"},
                        }
                    ],
                )
                self.ledger.record_consultation(
                    household, method="visit", outcome=outcome, by=officer, at=at
                )

        self._attempt(None, 2, call)
        self.households[household] = MHousehold(intake=intake)
        if open_now:
            self.open_case(len(self.households) - 1)

    @precondition(lambda self: bool(self.households))
    @rule(h=picks)
    def open_case(self, h: int) -> None:
        household = self._pick(self.households, h)
        if household is None:
            return
        model = self.households[household]
        at = self._tick()
        case = self._id()
        expected = None if model.intake else StageError
        self._attempt(
            expected,
            1,
            lambda: self.ledger.open_case(household, by=OFFICERS["d1"], at=at, case_id=case),
        )
        if expected is None:
            self.cases[case] = MCase(household=household)
            model.cases.append(case)

    @precondition(lambda self: bool(self.households))
    @rule(h=picks)
    def grant_consent(self, h: int) -> None:
        household = self._pick(self.households, h)
        if household is None:
            return
        at = self._tick()
        consent = self._id()
        self._attempt(
            None,
            1,
            lambda: self.ledger.grant_consent(
                household,
                scopes=["collect", "use", "provide"],
                recipients=[PARTNER],
                purpose="통합사례관리",
                by=OFFICERS["d1"],
                at=at,
                consent_id=consent,
            ),
        )
        self.households[household].consents[consent] = False

    @precondition(lambda self: bool(self.households))
    @rule(h=picks, c=picks)
    def withdraw_consent(self, h: int, c: int) -> None:
        household = self._pick(self.households, h)
        if household is None:
            return
        model = self.households[household]
        consent = self._pick(model.consents, c)
        if consent is None:
            return
        at = self._tick()
        expected = RuleViolation if model.consents[consent] else None
        self._attempt(
            expected,
            1,
            lambda: self.ledger.withdraw_consent(household, consent, by=OFFICERS["d1"], at=at),
        )
        if expected is None:
            model.consents[consent] = True

    @precondition(lambda self: bool(self.households))
    @rule(h=picks)
    def erase(self, h: int) -> None:
        household = self._pick(self.households, h)
        if household is None:
            return
        model = self.households[household]
        at = self._tick()
        expected: type[CaseLedgerError] | None = None
        if model.erased:
            expected = RuleViolation
        elif any(not self.cases[c].closed for c in model.cases):
            expected = RetentionError
        self._attempt(
            expected,
            1,
            lambda: self.ledger.erase_household(household, reason="보존기간 경과", by=LEAD, at=at),
        )
        if expected is None:
            model.erased = True

    # -- cases -----------------------------------------------------------------------------------

    def _case(self, n: int) -> tuple[UUID, MCase] | None:
        case = self._pick(self.cases, n)
        return None if case is None else (case, self.cases[case])

    @precondition(lambda self: bool(self.cases))
    @rule(c=picks)
    def assess(self, c: int) -> None:
        found = self._case(c)
        if found is None:
            return
        case, model = found
        at = self._tick()
        expected: type[CaseLedgerError] | None = None
        if model.closed:
            expected = CaseClosedError
        elif model.stage != "opened":
            expected = StageError
        self._attempt(
            expected,
            1,
            lambda: self.ledger.assess_needs(
                case,
                needs=[{"sub_domain": "health.mental", "urgency": 3}],
                by=OFFICERS["d1"],
                at=at,
            ),
        )
        if expected is None:
            model.assessed = True
            model.stage = "assessed"
            model.events += 1

    @precondition(lambda self: bool(self.cases))
    @rule(c=picks, decision=st.sampled_from(["select", "close", "link_service", "continue"]))
    def hold_meeting(self, c: int, decision: str) -> None:
        found = self._case(c)
        if found is None:
            return
        case, _ = found
        at = self._tick()
        meeting = self._id()
        self._attempt(
            None,
            1,
            lambda: self.ledger.hold_meeting(
                kind="internal",
                host="d1",
                agenda=[case],
                decisions={case: decision},
                by=OFFICERS["d1"],
                at=at,
                meeting_id=meeting,
            ),
        )
        self.meetings[meeting] = {case}

    @precondition(lambda self: bool(self.cases) and bool(self.meetings))
    @rule(c=picks, m=picks, track=st.sampled_from(["case_managed", "linkage_only", "not_selected"]))
    def classify(self, c: int, m: int, track: str) -> None:
        found = self._case(c)
        meeting = self._pick(self.meetings, m)
        if found is None or meeting is None:
            return
        case, model = found
        at = self._tick()
        expected: type[CaseLedgerError] | None = None
        if model.closed:
            expected = CaseClosedError
        elif not model.assessed:
            expected = StageError
        elif case not in self.meetings[meeting]:
            expected = MeetingRuleError
        self._attempt(
            expected,
            1,
            lambda: self.ledger.classify(
                case,
                meeting=meeting,
                track=track,
                criteria_version="model-1",
                by=OFFICERS["d1"],
                at=at,
            ),
        )
        if expected is None:
            model.track = track
            model.settle()
            model.events += 1

    @precondition(lambda self: bool(self.cases))
    @rule(c=picks)
    def agree_plan(self, c: int) -> None:
        found = self._case(c)
        if found is None:
            return
        case, model = found
        at = self._tick()
        expected: type[CaseLedgerError] | None = None
        if model.closed:
            expected = CaseClosedError
        elif model.track != "case_managed":
            expected = StageError
        service = {
            "domain": "health",
            "service": "방문간호",
            "provider": "d1",
            "sector": "public",
            "kind": "service",
        }
        self._attempt(
            expected,
            1,
            lambda: self.ledger.agree_plan(case, services=[service], by=OFFICERS["d1"], at=at),
        )
        if expected is None:
            model.planned = True
            model.settle()
            model.events += 1

    @precondition(lambda self: bool(self.cases))
    @rule(c=picks, private=st.booleans())
    def link_service(self, c: int, private: bool) -> None:
        found = self._case(c)
        if found is None:
            return
        case, model = found
        at = self._tick()
        provider = PARTNER if private else "d2"
        link = self._id()
        household = self.households[model.household]
        expected: type[CaseLedgerError] | None = None
        if private and not household.consents_to_partner():
            expected = ConsentError  # the policy is checked before the lifecycle
        elif model.closed:
            expected = CaseClosedError
        elif model.track not in ("case_managed", "linkage_only"):
            expected = StageError
        self._attempt(
            expected,
            1,
            lambda: self.ledger.link_service(
                case,
                service="식품 지원",
                provider=provider,
                domain="economy",
                kind="in_kind",
                by=OFFICERS["d1"],
                at=at,
                link_id=link,
            ),
        )
        if expected is None:
            model.links[link] = True
            model.providers[link] = provider
            model.settle()
            model.events += 1

    @precondition(lambda self: bool(self.cases))
    @rule(c=picks, ln=picks, stop=st.booleans(), unknown=st.booleans())
    def check_service(self, c: int, ln: int, stop: bool, unknown: bool) -> None:
        found = self._case(c)
        if found is None:
            return
        case, model = found
        link = None if unknown else self._pick(model.links, ln)
        link = link or uuid.UUID(int=3)
        at = self._tick()
        expected: type[CaseLedgerError] | None = None
        if model.closed:
            expected = CaseClosedError
        elif link not in model.links:
            expected = ServiceLinkNotFound
        elif not model.links[link]:
            expected = StageError
        decision = "stop" if stop else "continue"
        self._attempt(
            expected,
            1,
            lambda: self.ledger.check_service(
                case,
                link_id=link,
                method="visit",
                progress=50,
                decision=decision,
                by=OFFICERS["d1"],
                at=at,
            ),
        )
        if expected is None:
            model.events += 1
            if stop:
                model.links[link] = False
                model.settle()

    @precondition(lambda self: bool(self.cases))
    @rule(c=picks)
    def refer(self, c: int) -> None:
        found = self._case(c)
        if found is None:
            return
        case, model = found
        at = self._tick()
        referral = self._id()
        expected: type[CaseLedgerError] | None = None
        if not self.households[model.household].consents_to_partner():
            expected = ConsentError
        elif model.closed:
            expected = CaseClosedError
        self._attempt(
            expected,
            1,
            lambda: self.ledger.refer(
                case, to=PARTNER, domain="social", by=OFFICERS["d1"], at=at, referral_id=referral
            ),
        )
        if expected is None:
            model.referrals[referral] = "sent"
            model.events += 1

    @precondition(lambda self: bool(self.cases))
    @rule(c=picks, r=picks, accept=st.booleans(), unknown=st.booleans())
    def respond(self, c: int, r: int, accept: bool, unknown: bool) -> None:
        found = self._case(c)
        if found is None:
            return
        case, model = found
        referral = None if unknown else self._pick(model.referrals, r)
        referral = referral or uuid.UUID(int=4)
        at = self._tick()
        expected: type[CaseLedgerError] | None = None
        if not model.related_to_partner():
            expected = AuthorityError
        elif not self.households[model.household].consents_to_partner():
            expected = ConsentError
        elif model.closed:
            expected = CaseClosedError
        elif referral not in model.referrals:
            expected = ReferralNotFound
        elif model.referrals[referral] != "sent":
            expected = StageError
        self._attempt(
            expected,
            1,
            lambda: self.ledger.respond_to_referral(
                case,
                referral,
                accept=accept,
                reason="" if accept else "정원 초과",
                by=PARTNER_WORKER,
                at=at,
            ),
        )
        if expected is None:
            model.referrals[referral] = "accepted" if accept else "rejected"
            model.events += 1

    @precondition(lambda self: bool(self.cases) and bool(self.meetings))
    @rule(c=picks, m=picks)
    def close(self, c: int, m: int) -> None:
        found = self._case(c)
        meeting = self._pick(self.meetings, m)
        if found is None or meeting is None:
            return
        case, model = found
        at = self._tick()
        expected: type[CaseLedgerError] | None = None
        if model.closed:
            expected = CaseClosedError
        elif case not in self.meetings[meeting]:
            expected = MeetingRuleError
        self._attempt(
            expected,
            1,
            lambda: self.ledger.close_case(
                case, meeting=meeting, reason="goal_achieved", by=OFFICERS["d1"], at=at
            ),
        )
        if expected is None:
            model.stage = "closed"
            model.links = dict.fromkeys(model.links, False)
            model.events += 1

    @precondition(lambda self: bool(self.cases))
    @rule(c=picks, notes=st.booleans())
    def follow_up(self, c: int, notes: bool) -> None:
        found = self._case(c)
        if found is None:
            return
        case, model = found
        at = self._tick()
        expected: type[CaseLedgerError] | None = None
        if not model.closed:
            expected = StageError
        elif notes and self.households[model.household].erased:
            expected = RuleViolation  # no personal data for an erased household
        self._attempt(
            expected,
            1,
            lambda: self.ledger.follow_up(
                case, by=OFFICERS["d1"], at=at, notes="전화 상담" if notes else None
            ),
        )
        if expected is None:
            model.events += 1

    @precondition(lambda self: bool(self.cases))
    @rule(c=picks)
    def reopen(self, c: int) -> None:
        found = self._case(c)
        if found is None:
            return
        case, model = found
        at = self._tick()
        expected = None if model.closed else StageError
        self._attempt(
            expected,
            1,
            lambda: self.ledger.reopen_case(case, by=OFFICERS["d1"], at=at, reason="재발"),
        )
        if expected is None:
            model.stage = "opened"
            model.track = None
            model.assessed = model.planned = False
            model.worker = OFFICERS["d1"]
            model.events += 1

    @precondition(lambda self: bool(self.cases))
    @rule(c=picks)
    def transfer(self, c: int) -> None:
        found = self._case(c)
        if found is None:
            return
        case, model = found
        at = self._tick()
        to = "d2" if model.organisation == "d1" else "d1"
        expected = CaseClosedError if model.closed else None
        self._attempt(
            expected,
            1,
            lambda: self.ledger.transfer_case(
                case, to_organisation=to, to_worker=OFFICERS[to], by=OFFICERS["d1"], at=at
            ),
        )
        if expected is None:
            model.organisation, model.worker = to, OFFICERS[to]
            model.events += 1

    @precondition(lambda self: bool(self.cases))
    @rule(c=picks)
    def supervise(self, c: int) -> None:
        found = self._case(c)
        if found is None:
            return
        case, model = found
        at = self._tick()
        expected = CaseClosedError if model.closed else None
        self._attempt(expected, 1, lambda: self.ledger.record_supervision(case, by=LEAD, at=at))
        if expected is None:
            model.events += 1

    @precondition(lambda self: bool(self.cases))
    @rule(
        c=picks,
        track=st.sampled_from(["case_managed", "linkage_only", "not_selected"]),
        choice=st.integers(0, 3),
        steps=st.integers(1, 5),
    )
    def advance(self, c: int, track: str, choice: int, steps: int) -> None:
        """Move a case up to ``steps`` steps along its lifecycle (so programs get deep)."""
        for _ in range(steps):
            self._step(c, track, choice)

    @precondition(lambda self: bool(self.cases))
    @rule(
        c=picks,
        track=st.sampled_from(["case_managed", "linkage_only"]),
        choice=st.integers(0, 3),
        steps=st.integers(3, 8),
    )
    def advance_far(self, c: int, track: str, choice: int, steps: int) -> None:
        """The same, further: a second rule makes Hypothesis choose it more often."""
        self.advance(c, track, choice, steps)

    def _step(self, c: int, track: str, choice: int) -> None:
        found = self._case(c)
        assert found is not None
        case, model = found
        index = list(self.cases).index(case)
        if model.stage == "opened":
            self.assess(index)
        elif model.stage == "assessed":
            self.hold_meeting(index, "select")
            self.classify(index, len(self.meetings) - 1, track)
        elif model.stage == "selected":
            self.agree_plan(index)
        elif model.stage in ("planned", "linkage_selected"):
            self.link_service(index, private=choice == 0)
        elif model.stage in ("in_service", "linked") and choice == 0:
            # Refer to the private partner under a consent, and have the partner accept.
            self.grant_consent(list(self.households).index(model.household))
            self.refer(index)
            self.respond(index, len(model.referrals) - 1, accept=True, unknown=False)
        elif model.stage in ("in_service", "linked"):
            self.check_service(index, choice, stop=choice == 1, unknown=False)
        elif model.stage == "closed":
            if choice == 0:
                self.reopen(index)
            else:
                self.follow_up(index, notes=choice == 1)
        else:
            self.hold_meeting(index, "close")
            self.close(index, len(self.meetings) - 1)

    # -- refusals that do not depend on the state ---------------------------------------------

    @precondition(lambda self: bool(self.cases))
    @rule(c=picks, unknown=st.booleans())
    def refused_whatever_the_state(self, c: int, unknown: bool) -> None:
        """An unknown case, or an entry dated in the future."""
        found = self._case(c)
        assert found is not None
        self._tick()
        if unknown:
            at = self.now
            self._attempt(
                CaseNotFound,
                0,
                lambda: self.ledger.record_supervision(uuid.UUID(int=5), by=LEAD, at=at),
            )
        else:
            future = self.clock.now + timedelta(days=1)
            self._attempt(
                TimeError, 0, lambda: self.ledger.record_supervision(found[0], by=LEAD, at=future)
            )

    @precondition(lambda self: self.keyed is None)
    @rule(dong=st.sampled_from(sorted(DONGS)))
    def keyed_discovery(self, dong: str) -> None:
        """A command with an idempotency key (re-sent and reused by the next rules)."""
        at = self._tick()
        key = f"key-{self._id().int}"

        def call(idempotency_key: str, dong: str) -> Any:
            return self.ledger.discover_household(
                dong=DONGS[dong],
                district=DISTRICT,
                channel="safety_net",
                by=OFFICERS[dong],
                at=at,
                idempotency_key=idempotency_key,
            )

        household = self._attempt(None, 1, lambda: call(key, dong))
        self.households[household] = MHousehold(intake=False)
        self.keyed = (key, dong, call, household)

    @precondition(lambda self: self.keyed is not None)
    @rule(same=st.booleans())
    def resend_keyed(self, same: bool) -> None:
        assert self.keyed is not None
        key, dong, call, household = self.keyed
        self._tick()
        if same:  # the same command again: the original result, nothing written
            assert self._attempt(None, 0, lambda: call(key, dong)) == household
        else:  # another command under the same key
            other = "d2" if dong == "d1" else "d1"
            self._attempt(IdempotencyConflict, 0, lambda: call(key, other))

    # -- integrity ------------------------------------------------------------------------------

    def _checkpoint(self) -> None:
        """Sign a checkpoint; every checkpoint so far must be consistent with the log."""
        self.checkpoints.append(self.ledger.checkpoint(SIGNER))
        _RUNS["checkpoints"] += 1
        hashes = [
            leaf_hash(
                record_leaf(
                    r.id, UUID(str(r.originator_id)), r.originator_version, r.topic, r.state
                )
            )
            for r in self.ledger.records()
        ]
        heads = [parse_checkpoint(note)[0] for note in self.checkpoints]
        for head in heads:
            assert root_from_leaf_hashes(hashes[: head.size]) == head.root
        for old, new in pairwise(heads):
            proof = consistency_proof_from_hashes(hashes[: new.size], old.size)
            verify_consistency(old.size, new.size, old.root, new.root, proof)

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def the_log_holds_the_accepted_commands(self) -> None:
        assert len(self.ledger) == self.events

    @invariant()
    def cases_and_households_match_the_model(self) -> None:
        for case, model in self.cases.items():
            state = self.ledger.case(case)
            assert (state.stage.value, state.organisation, state.worker) == (
                model.stage,
                model.organisation,
                model.worker,
            )
            assert (state.track.value if state.track else None) == model.track
            assert state.version == model.events
            assert {link.link_id for link in state.active_links} == {
                link for link, active in model.links.items() if active
            }
            assert {r: s.status.value for r, s in state.referrals.items()} == model.referrals
        for household, kept in self.households.items():
            found = self.ledger.household(household)
            assert (found.erased_at is not None) == kept.erased
            assert {c: w.withdrawn_at is not None for c, w in found.consents.items()} == (
                kept.consents
            )

    @invariant()
    def read_models_match_the_model(self) -> None:
        caseload = self.ledger.caseload(include_closed=True)
        assert {e.case_id: (e.stage.value, e.worker, e.organisation) for e in caseload} == {
            c: (m.stage, m.worker, m.organisation) for c, m in self.cases.items()
        }
        register = self.ledger.meetings()
        assert {m.meeting_id: {x.case_id for x in m.cases} for m in register} == self.meetings


def test_the_ledger_behaves_like_its_model() -> None:
    started = time.perf_counter()
    programs = examples(ci=40, per_trial=2)
    LedgerModel.TestCase.settings = settings(
        max_examples=programs,
        stateful_step_count=50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    before = dict(_RUNS)
    LedgerModel.TestCase().runTest()
    ran = {k: _RUNS[k] - before[k] for k in _RUNS}
    record_figures(
        "stateful model",
        backend="memory",
        programs=ran["programs"],
        commands=ran["steps"],
        accepted=ran["accepted"],
        refused_with_the_predicted_error=ran["refused"],
        checkpoints=ran["checkpoints"],
        kinds=dict(sorted(_KINDS.items())),
        seconds=round(time.perf_counter() - started, 1),
    )
    assert ran["refused"] > 0
    assert ran["accepted"] > 0
