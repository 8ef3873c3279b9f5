"""The synthetic district: deterministic, in realistic proportions, valid by construction."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from uuid import UUID

import pytest

from caseledger import InvalidInput, Ledger
from caseledger import commands as c
from caseledger.demo import DemoClock, DemoSummary, commands, generate
from caseledger.events import (
    CaseClassified,
    CaseClosed,
    CaseMeetingHeld,
    CaseOpened,
    CaseTransferred,
    Event,
    HouseholdDiscovered,
    ServiceLinked,
)
from caseledger.registry import organisation_id, worker_id
from tests.conftest import MASTER_KEY


@pytest.fixture(scope="module")
def district() -> Iterator[tuple[Ledger, DemoSummary, list[Event]]]:
    """Two dongs for a year, recorded once for the whole module."""
    clock = DemoClock()
    with Ledger.open(":memory:", clock=clock, master_key=MASTER_KEY) as ledger:
        summary = generate(ledger, dongs=2, years=1, seed=0, clock=clock)
        yield ledger, summary, [entry.event for entry in ledger.events()]


def _fingerprint(stream: Iterator[tuple[object, object]], n: int) -> list[str]:
    out = []
    for _, (recorded, command) in zip(range(n), stream, strict=False):
        out.append(f"{recorded}|{command.model_dump_json()}")  # type: ignore[attr-defined]
    return out


def test_the_same_seed_gives_the_same_commands_and_another_seed_others() -> None:
    first = _fingerprint(commands(dongs=1, seed=7), 1500)
    assert first == _fingerprint(commands(dongs=1, seed=7), 1500)
    assert first != _fingerprint(commands(dongs=1, seed=8), 1500)
    # Registering the organisations does not depend on the seed; what follows does.
    assert first[:10] == _fingerprint(commands(dongs=1, seed=8), 10)


def test_the_summary_adds_up(district: tuple[Ledger, DemoSummary, list[Event]]) -> None:
    ledger, summary, events = district
    assert summary.events == len(ledger) == len(events) == sum(summary.events_by_type.values())
    assert Counter(type(e).__name__ for e in events) == summary.events_by_type
    assert summary.cases == sum(summary.cases_by_stage.values())
    assert summary.cases == summary.events_by_type["CaseOpened"]
    assert summary.households == summary.events_by_type["HouseholdDiscovered"]
    assert summary.meetings == summary.events_by_type["CaseMeetingHeld"]
    assert (summary.start, summary.end) == (date(2022, 1, 1), date(2022, 12, 31))


def test_proportions_follow_the_domain_guide(
    district: tuple[Ledger, DemoSummary, list[Event]],
) -> None:
    _, summary, events = district
    by_type = summary.events_by_type
    # Service links dominate the log.
    assert max(by_type, key=by_type.__getitem__) == "ServiceLinked"
    assert by_type["ServiceLinked"] > 0.3 * summary.events
    # Many more discoveries than selections: selections are about 8-15 % of discoveries.
    tracks = Counter(e.track.value for e in events if isinstance(e, CaseClassified))
    selected = tracks["case_managed"] + tracks["linkage_only"]
    assert 0.05 * summary.households < selected < 0.2 * summary.households
    assert summary.households > 4 * summary.cases
    assert tracks["not_selected"] > 0
    # Case-managed households per dong per year: 10-45.
    assert 10 * 2 <= tracks["case_managed"] <= 45 * 2 * 1.3
    # Support mix: about 60 % private, 32 % counselling, 6 % other public, 2 % benefits.
    links = [e for e in events if isinstance(e, ServiceLinked)]
    counselling = sum(1 for e in links if e.kind.value == "counselling") / len(links)
    assert 0.2 < counselling < 0.45
    private = sum(1 for e in links if e.sector.value == "private") / len(links)
    assert private > 0.5
    public_cash = [e for e in links if e.kind.value == "cash" and e.sector.value == "public"]
    assert 0 < len(public_cash) < 0.06 * len(links)
    channels = Counter(e.channel.value for e in events if isinstance(e, HouseholdDiscovered))
    assert len(channels) == 7
    assert channels["blind_spot_system"] > channels["hotline_129"]


def test_meetings_are_monthly_and_decide_every_selection_and_closure(
    district: tuple[Ledger, DemoSummary, list[Event]],
) -> None:
    _, _, events = district
    meetings: dict[UUID, CaseMeetingHeld] = {}
    decided = 0
    for event in events:
        if isinstance(event, CaseMeetingHeld):
            meetings[event.originator_id] = event
        elif isinstance(event, CaseClosed | CaseClassified):
            meeting = meetings[event.meeting_id]  # held, and recorded before
            assert meeting.has_on_agenda(event.case_id)
            assert meeting.occurred_at <= event.occurred_at
            decided += 1
    assert decided > 100
    held = Counter((m.kind.value, m.host) for m in meetings.values())
    assert held[("integrated", "hb-hwst")] >= 10
    for dong in ("hb-dong-01", "hb-dong-02"):
        assert held[("internal", dong)] >= 9
    assert held[("expert", "hb-hwst")] >= 1


def test_some_entries_are_recorded_late_and_mistakes_are_corrected(
    district: tuple[Ledger, DemoSummary, list[Event]],
) -> None:
    _, _, events = district
    recorded = [e.recorded_at for e in events]
    assert recorded == sorted(recorded)  # the log is in recording order
    delays = [e.recorded_at - e.occurred_at for e in events]
    same_day = sum(1 for e in events if e.recorded_at.date() == e.occurred_at.date())
    assert same_day > 0.6 * len(events)
    assert sum(1 for d in delays if d > timedelta(days=7)) > 0.01 * len(events)
    assert all(d >= timedelta(0) for d in delays)
    # Corrections: a case reclassified at a later meeting, a case moved to the right dong.
    classified = Counter(e.case_id for e in events if isinstance(e, CaseClassified))
    assert any(n > 1 for n in classified.values())
    opened = {e.case_id: e for e in events if isinstance(e, CaseOpened)}
    transfers = [e for e in events if isinstance(e, CaseTransferred)]
    assert any(e.to_dong != opened[e.case_id].dong for e in transfers)


def test_personal_fields_hold_obviously_fake_values() -> None:
    seen = 0
    for _, command in commands(dongs=1, seed=1):
        if not isinstance(command, c.DiscoverHousehold):
            continue
        for member in command.members:
            personal = member.personal
            assert personal is not None
            assert re.fullmatch(r"가상인물-\d{5}", personal.name or "")
            assert (personal.phone or "").startswith("010-0000-")
            if personal.rrn is not None:  # month 00: never a real resident number
                assert re.fullmatch(r"\d{2}00\d{2}-[12]0{6}", personal.rrn)
            seen += 1
    assert seen > 100


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"dongs": 0}, "dongs"), ({"years": 0}, "years"), ({"start_year": 1800}, "start_year")],
)
def test_out_of_range_settings_are_refused(kwargs: dict[str, int], field: str) -> None:
    with Ledger.open(":memory:") as ledger, pytest.raises(InvalidInput, match=field):
        generate(ledger, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=field):
        commands(**kwargs)  # type: ignore[arg-type]


_EVENT_OF = {
    c.RegisterOrganisation: "OrganisationRegistered", c.RegisterWorker: "WorkerRegistered",
    c.DiscoverHousehold: "HouseholdDiscovered", c.RecordConsultation: "ConsultationRecorded",
    c.GrantConsent: "ConsentGranted", c.WithdrawConsent: "ConsentWithdrawn",
    c.OpenCase: "CaseOpened", c.AssessNeeds: "NeedsAssessed", c.HoldMeeting: "CaseMeetingHeld",
    c.Classify: "CaseClassified", c.AgreePlan: "ServicePlanAgreed",
    c.LinkService: "ServiceLinked", c.Refer: "ReferralSent",
    c.CompleteReferral: "ReferralCompleted", c.RevokeReferral: "ReferralRevoked",
    c.CheckService: "ServiceChecked", c.Reassess: "NeedsReassessed",
    c.RecordSupervision: "SupervisionRecorded", c.CloseCase: "CaseClosed",
    c.FollowUp: "FollowUpConducted", c.ReopenCase: "CaseReopened",
    c.TransferCase: "CaseTransferred",
}  # fmt: skip


def expected_log(dongs: int, seed: int) -> list[tuple[str, UUID]]:
    """The (event type, aggregate id) the demo's commands must record, in order."""
    out = []
    for _, command in commands(dongs=dongs, seed=seed):
        if isinstance(command, c.RegisterOrganisation):
            aggregate = organisation_id(command.code)
        elif isinstance(command, c.RegisterWorker):
            aggregate = worker_id(command.code)
        else:
            found = [getattr(command, k, None) for k in ("case_id", "meeting_id", "household_id")]
            aggregate = next(a for a in found if a is not None)
        if isinstance(command, c.RespondToReferral):
            name = "ReferralAccepted" if command.accept else "ReferralRejected"
        else:
            name = _EVENT_OF[type(command)]
        out.append((name, aggregate))
    return out


def test_a_seed_records_the_same_log_on_every_backend(ledger_url: str) -> None:
    months: list[tuple[int, int]] = []

    def progress(day: date, done: int) -> None:
        months.append((day.year, day.month))

    clock = DemoClock()
    with Ledger.open(ledger_url, clock=clock, master_key=MASTER_KEY) as ledger:
        summary = generate(ledger, dongs=1, seed=5, clock=clock, batch_size=400, progress=progress)
        log = [(r.topic.rsplit(":", 1)[1], UUID(str(r.originator_id))) for r in ledger.records()]
    assert len(log) == summary.events > 1000
    assert log == expected_log(dongs=1, seed=5)
    assert Counter(name for name, _ in log) == summary.events_by_type
    assert summary.cases_by_stage.get("closed", 0) > 0
    assert months[0] == (2021, 12)  # registration, the day before the first day
    assert months == sorted(set(months))
    assert (2022, 12) in months
