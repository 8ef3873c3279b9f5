"""The synthetic district: deterministic, in realistic proportions, valid by construction."""

from __future__ import annotations

import contextlib
import io
import random
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from itertools import islice
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from caseledger import InvalidInput, Ledger
from caseledger import commands as c
from caseledger._progress import ProgressBar, showing
from caseledger.cli import main
from caseledger.demo import DemoClock, DemoSummary, _District, commands, generate, size
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
    return expected_log_of(commands(dongs=dongs, seed=seed))


def expected_log_of(stream: Iterator[tuple[object, Any]]) -> list[tuple[str, UUID]]:
    """The (event type, aggregate id) the commands of ``stream`` must record, in order."""
    out = []
    for _, command in stream:
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


def test_the_stages_in_the_summary_are_the_ledgers(
    district: tuple[Ledger, DemoSummary, list[Event]],
) -> None:
    ledger, summary, events = district
    opened = [e.case_id for e in events if isinstance(e, CaseOpened)]
    assert summary.cases_by_stage == dict(
        sorted(Counter(ledger.case(case_id).stage.value for case_id in opened).items())
    )


@pytest.mark.parametrize(
    ("events", "dongs", "years", "sized"),
    [
        (1, None, None, (17, 1)),
        (25_500, None, None, (17, 1)),
        (100_000, None, None, (67, 1)),
        (1_000_000, None, None, (167, 4)),
        (6_000_000, None, None, (200, 20)),
        (1_000_000, 100, None, (100, 7)),
        (1_000_000, None, 4, (167, 4)),
        (10_000, 1, 7, (1, 7)),
    ],
)
def test_events_size_the_district(
    events: int, dongs: int | None, years: int | None, sized: tuple[int, int]
) -> None:
    assert size(events, dongs=dongs, years=years) == sized
    found_dongs, found_years = sized
    assert found_dongs * found_years * 1_500 >= events  # room for the events asked for


@pytest.mark.parametrize(
    ("events", "dongs", "years", "message"),
    [
        (0, None, None, "events: must be at least 1"),
        (6_000_001, None, None, "events: at most 6,000,000"),
        (1_000_000, 1, None, "1 dong would take 667 years"),
        (1_000_000, None, 1, "1 year would take 667 dongs"),
        (1_000_000, 2, 3, "2 dongs over 3 years are too few"),
        (10, 0, None, "dongs: must be between 1 and 200"),
    ],
)
def test_impossible_event_counts_are_refused(
    events: int, dongs: int | None, years: int | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        size(events, dongs=dongs, years=years)
    with Ledger.open(":memory:") as ledger:
        with pytest.raises(InvalidInput, match=re.escape(message)):
            generate(ledger, events=events, dongs=dongs, years=years)
        assert len(ledger) == 0


def test_events_records_exactly_that_many_the_start_of_the_sized_district() -> None:
    batches: list[tuple[date, int]] = []
    clock = DemoClock()
    with Ledger.open(":memory:", clock=clock, master_key=MASTER_KEY) as ledger:
        summary = generate(
            ledger, events=1_234, seed=3, clock=clock, batch_size=500,
            on_batch=lambda day, done: batches.append((day, done)),
        )  # fmt: skip
        log = [(r.topic.rsplit(":", 1)[1], UUID(str(r.originator_id))) for r in ledger.records()]
        *_, final = ledger.events()
    assert summary.events == summary.commands == len(log) == 1_234
    assert sum(summary.events_by_type.values()) == 1_234
    # The same seed gives the same log: the first events of the 17-dong district's year.
    assert summary.dongs == 17
    assert log == _expected(commands(dongs=17, seed=3), 1_234)
    assert summary.end == final.event.recorded_at.date() < date(2022, 12, 31)
    assert [done for _, done in batches] == [500, 1_000, 1_234]
    assert batches[-1][0] == summary.end


def test_events_beyond_what_the_given_district_records_is_an_error() -> None:
    # Seed 11's single dong records fewer than 1,500 events a year: two years are short.
    with Ledger.open(":memory:", master_key=MASTER_KEY) as ledger:
        with pytest.raises(InvalidInput, match="recorded only 1,947 of the 3,000 events"):
            generate(ledger, events=3_000, dongs=1, seed=11)
        assert len(ledger) == 1_947


def test_a_wait_past_the_calendar_is_past_the_end() -> None:
    # A recurring service link can draw a wait of over a year; it used to overrun the
    # calendar (an IndexError with 170 dongs). Now it lands past the end, never happens.
    district = _District(random.Random(0), 1, date(2022, 1, 1), date(2022, 12, 31))
    assert district.after(date(2022, 12, 30), 10_000) > district.end
    district.later(date(2022, 12, 30), 10_000, 10_000, lambda day: None)
    assert not district.todo


def test_the_demo_command_records_exactly_n_events_and_shows_progress_when_asked(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "demo.db")
    code, out, err = _cli("--db", db, "demo", "--events", "300", "--format", "json")
    assert code == 0, err
    assert '"events": 300' in out
    assert "events/s" not in err
    assert "\r" not in err
    with Ledger.open(db) as ledger:
        assert len(ledger) == 300
    db = str(tmp_path / "shown.db")
    code, out, err = _cli("--db", db, "demo", "--events", "300", "--progress")
    assert code == 0, err
    assert "[########################] 100%  300/300 events" in err
    assert err.endswith("\n")
    db = str(tmp_path / "refused.db")
    code, out, err = _cli("--db", db, "demo", "--events", "1000000", "--dongs", "1")
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        "caseledger: error: events: 1,000,000 events need 667 dong-years (counting 1,500 "
        "events a dong and year); 1 dong would take 667 years (at most 20)"
    ]
    assert not Path(db).exists()  # refused before anything was written
    code, out, err = _cli("--db", db, "demo", "--events", "0")
    assert code == 2
    assert "argument --events: must be at least 1" in err


def test_the_progress_bar_draws_on_a_terminal_or_when_forced_a_few_times_a_second() -> None:
    quiet = io.StringIO()
    assert not showing(quiet)
    assert showing(quiet, True)
    assert not showing(quiet, False)
    with ProgressBar(10, stream=quiet) as bar:
        bar.update(5)
    assert quiet.getvalue() == ""  # not a terminal, not forced
    now = [100.0]
    out = io.StringIO()
    with ProgressBar(1_000, stream=out, show=True, width=10, clock=lambda: now[0]) as bar:
        now[0] = 110.0
        bar.update(250, "2022-03")
        now[0] = 110.1
        bar.update(300)  # too soon after the last: not drawn
        assert out.getvalue().count("\r") == 1
        now[0] = 120.0
        bar.update(500)
    lines = out.getvalue().split("\r")[1:]
    assert lines[0] == "[##--------]  25%  250/1,000 events  25/s  ETA 30s  2022-03\033[K"
    assert lines[1] == "[#####-----]  50%  500/1,000 events  25/s  ETA 20s\033[K\n"
    out = io.StringIO()
    bar = ProgressBar(stream=out, show=True, unit="rows", clock=lambda: now[0])
    now[0] += 3_600
    bar.update(7_200, fraction=0.5)
    assert bar.line() == "[############------------]  50%  7,200 rows  2/s  ETA 1h00m"
    bar.update(9_000)
    assert bar.line() == "9,000 rows  2/s"
    bar.close()
    bar.close()
    assert out.getvalue().count("\n") == 1


def _expected(stream: Iterator[tuple[object, Any]], n: int) -> list[tuple[str, UUID]]:
    return expected_log_of(islice(stream, n))


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_the_demo_command_leaves_read_models_equal_to_keeping_them_inline(
    tmp_path: Path,
) -> None:
    # The command writes the log without read models and builds them once at the end.
    db = str(tmp_path / "bulk.db")
    code, _, err = _cli("--db", db, "demo", "--events", "1500", "--format", "json")
    assert code == 0, err
    with Ledger.open(db, projections="follow") as built:
        assert set(built.projections.positions().values()) == {len(built)}
        from_the_command = built.projections.dump()
    inline = tmp_path / "inline.db"
    clock = DemoClock()
    with Ledger.open(inline, master_key=MASTER_KEY, clock=clock) as ledger:
        dongs, years = size(1500)
        generate(ledger, dongs=dongs, years=years, seed=0, clock=clock, events=1500)
        assert ledger.projections.dump() == from_the_command
