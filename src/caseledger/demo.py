"""A realistic synthetic district, recorded through the ledger's public commands.

:func:`generate` simulates one fictional district (한빛구, "Hanbit-gu") of ``dongs``
neighbourhoods for ``years`` years and records everything through
:meth:`Ledger.execute <caseledger.Ledger.execute>`, so it is also the realistic workload
for benchmarks. The proportions follow the domain guide's scale for synthetic data:

* a district Hope Welfare Support Team, a dong welfare centre per dong, a health centre
  and private partners (two community welfare centres, a mental health welfare centre,
  a dementia support centre, a senior welfare centre, a food bank, the community social
  security council), each with workers in their roles;
* 10–45 case-managed households per dong per year, and far more discoveries than
  selections (selections are 8–15 % of discoveries), by channel, including the
  bimonthly blind-spot system batches;
* monthly internal case meetings per dong, monthly integrated meetings at the district,
  a quarterly expert committee; selections by track and level decided at meetings;
* service plans, and service links dominating the log (support mix about 60 % private,
  32 % counselling, 6 % other public services, 2 % public benefits); referrals sent,
  accepted, rejected, completed, revoked; monthly service checks (some overdue),
  reassessments, supervision;
* closures with reasons decided at meetings, follow-ups, a few reopenings and
  transfers, consents granted and a few withdrawn;
* most entries recorded the same day, some days or weeks late; and a few mistakes put
  right by later events (a reclassification at a later meeting, a case transferred to
  the right dong, a referral sent to the wrong organisation and revoked).

Everything is derived from one seeded :class:`random.Random`, ids included, so a seed
always gives the same log. Personal fields hold obviously fake values (``가상인물-00001``,
``010-0000-0001``, ``가상로``, resident numbers with month ``00``).

``recorded_at`` is set by the ledger's clock. Open the ledger with a :class:`DemoClock`
and pass it to :func:`generate`, which moves it to each entry's simulated recording time::

    clock = DemoClock()
    with Ledger.open(":memory:", clock=clock) as ledger:
        summary = generate(ledger, clock=clock, dongs=2)

``generate(ledger, events=1_000_000)`` records exactly that many events, in a district
sized for them (:func:`size`); the simulation stops there. Memory stays flat however many
events are recorded: the simulation keeps only what is still to happen (cases open,
entries awaiting their late recording time, and ordering marks of the last weeks).

The ledger must be empty (the district's organisations are registered first), and it
needs a master key for the (fake) personal fields: an in-memory ledger makes its own;
``caseledger demo`` creates a key file beside a new SQLite file.
"""

from __future__ import annotations

import heapq
import math
import random
import time
import uuid
from bisect import bisect
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import partial
from itertools import accumulate
from typing import Any, TypeVar
from uuid import UUID

from caseledger import commands as c
from caseledger.application import Ledger
from caseledger.errors import InvalidInput
from caseledger.events import Event

__all__ = [
    "DISTRICT",
    "EVENTS_PER_DONG_YEAR",
    "KST",
    "MAX_DONGS",
    "MAX_RECORDING_DELAY",
    "MAX_YEARS",
    "DemoClock",
    "DemoSummary",
    "Progress",
    "commands",
    "generate",
    "period",
    "size",
]

#: Korea Standard Time (no daylight saving since 1988).
KST = timezone(timedelta(hours=9), "KST")
#: The fictional district the demo simulates.
DISTRICT = "한빛구"
#: The latest an entry is recorded after it happened (plus minutes for ordering).
MAX_RECORDING_DELAY = timedelta(days=62)

#: The most dongs a demo district has.
MAX_DONGS = 200
#: The most years a demo simulates.
MAX_YEARS = 20
#: Events per dong and simulated year that :func:`size` counts on (a lower bound).
EVENTS_PER_DONG_YEAR = 1_500

#: Called with the day reached and the commands recorded so far.
Progress = Callable[[date, int], None]

_T = TypeVar("_T")
_PREFIX = "hb"
_CRITERIA = "hanbit-selection-criteria-v2"
_RISK_INSTRUMENT = "위기도 척도"
_RISK_VERSION = "2021.1"
_DONG_NAMES = (
    "중앙동",
    "신흥동",
    "남산동",
    "북부동",
    "동명동",
    "서원동",
    "송정동",
    "대림동",
    "월곡동",
    "신촌동",
    "금호동",
    "상도동",
    "효자동",
    "평화동",
    "산곡동",
    "용두동",
    "청룡동",
    "백운동",
    "매화동",
    "은행동",
    "장미동",
    "소망동",
    "희망동",
    "행복동",
)
# Fixed-date public holidays (lunar holidays vary by year and are left out).
_HOLIDAYS = ((1, 1), (3, 1), (5, 5), (6, 6), (8, 15), (10, 3), (10, 9), (12, 25))
_CRISIS_CODES = (
    "electricity_cut",
    "water_cut",
    "gas_cut",
    "telecom_arrears",
    "health_insurance_arrears",
    "rent_arrears",
    "financial_arrears",
    "medical_costs",
    "job_loss",
    "living_alone_elderly",
)
_CHANNELS = (  # daily discoveries by channel (the blind-spot system comes in batches)
    ("outreach_visit", 40),
    ("safety_net", 18),
    ("partner_referral", 12),
    ("self_application", 16),
    ("proxy_application", 7),
    ("hotline_129", 7),
)
_NEEDS = (
    ("economy.income", 22),
    ("health.physical", 18),
    ("health.mental", 12),
    ("social.isolation", 10),
    ("daily_living.household", 8),
    ("economy.debt", 7),
    ("living_environment.housing", 7),
    ("family.care", 5),
    ("employment.job", 4),
    ("daily_living.self_care", 3),
    ("family.conflict", 2),
    ("living_environment.sanitation", 2),
    ("safety.risk", 2),
    ("legal_rights.legal_aid", 1),
    ("education.child", 1),
    ("safety.violence", 1),
    ("other.other", 1),
)
_CLOSURE_REASONS = (
    ("goal_achieved", 55),
    ("referred", 12),
    ("client_refused", 8),
    ("moved_out", 7),
    ("lost_contact", 5),
    ("entered_facility", 5),
    ("death", 3),
    ("other", 5),
)
_ELDERLY_PARTNERS = ((f"{_PREFIX}-senior", 3), (f"{_PREFIX}-dementia", 2))
_REJECTIONS = (
    "정원 초과로 대기 필요",
    "서비스 대상 기준에 해당하지 않음",
    "대상자가 서비스를 거부함",
)
# Services by support category: (domain, service, kind, provider role).
_PRIVATE = (
    ("daily_living", "밑반찬 지원", "in_kind", "cwc"),
    ("daily_living", "도시락 배달", "service", "cwc"),
    ("economy", "후원물품 지원", "in_kind", "cwc"),
    ("economy", "푸드뱅크 식품 지원", "in_kind", "food"),
    ("economy", "생필품 지원", "in_kind", "food"),
    ("living_environment", "집수리 지원", "service", "cwc"),
    ("living_environment", "방역·청소 지원", "service", "cwc"),
    ("economy", "민간 후원금", "cash", "cwc"),
    ("daily_living", "이미용 서비스", "service", "senior"),
    ("social", "여가·사회활동 프로그램", "service", "senior"),
    ("daily_living", "가사 지원", "service", "senior"),
)
_COUNSELLING = (
    ("health", "정신건강 상담", "mhwc"),
    ("health", "자살예방 상담", "mhwc"),
    ("family", "심리정서 상담", "cwc"),
    ("social", "말벗·정서지원", "senior"),
    ("health", "치매 상담", "dementia"),
    ("other", "사례관리 상담", "own"),
)
_OTHER_PUBLIC = (
    ("health", "방문건강관리", "health"),
    ("daily_living", "노인맞춤돌봄서비스", "dong"),
    ("employment", "공공일자리 연계", "hwst"),
    ("health", "치매 조기검진", "dementia"),
)
_BENEFITS = (
    ("economy", "긴급지원 생계비"),
    ("economy", "기초생활보장 급여"),
    ("living_environment", "주거급여"),
    ("health", "긴급지원 의료비"),
)


class DemoClock:
    """A clock the demo moves to each entry's simulated recording time.

    Call it to read the time (the ledger does, to stamp ``recorded_at``); :func:`generate`
    moves it. Starts at ``now`` (default: 1 January 2022, 09:00 KST).
    """

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2022, 1, 1, 9, tzinfo=KST)

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`generate` recorded.

    ``start`` and ``end``: the first and last simulated day (with ``events``, the day the
    last event was recorded, when that comes before the end of the last year).
    """

    district: str
    dongs: int
    start: date
    end: date
    seed: int
    organisations: int
    workers: int
    households: int
    cases: int
    cases_by_stage: Mapping[str, int]
    meetings: int
    commands: int
    events: int
    events_by_type: Mapping[str, int]
    seconds: float


def period(start_year: int, years: int) -> tuple[date, date]:
    """The first and last simulated day of a demo starting in ``start_year``."""
    _check(1, years, start_year)  # InvalidInput for years no calendar has
    return date(start_year, 1, 1), date(start_year + years - 1, 12, 31)


def _check(dongs: int, years: int, start_year: int) -> None:
    problems = []
    if not 1 <= dongs <= MAX_DONGS:
        problems.append(("dongs", f"must be between 1 and {MAX_DONGS}, not {dongs}"))
    if not 1 <= years <= MAX_YEARS:
        problems.append(("years", f"must be between 1 and {MAX_YEARS}, not {years}"))
    if not 1990 <= start_year <= 2100:
        problems.append(("start_year", f"must be between 1990 and 2100, not {start_year}"))
    if problems:
        raise InvalidInput("; ".join(f"{k}: {m}" for k, m in problems), problems)


def commands(
    *, dongs: int = 17, years: int = 1, seed: int = 0, start_year: int = 2022
) -> Iterator[tuple[datetime, Any]]:
    """The demo's commands as ``(recorded_at, command)`` pairs, in recording order.

    The commands are :mod:`caseledger.commands` models with every id given explicitly;
    executing them in order on an empty ledger records the demo district. Lazy: only the
    entries awaiting their (late) recording time are held in memory.
    """
    _check(dongs, years, start_year)
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible from its seed
    return _District(rng, dongs, *period(start_year, years)).run()


_RESULT_EVENTS: dict[type[Any], str] = {
    c.RegisterOrganisation: "OrganisationRegistered",
    c.RegisterWorker: "WorkerRegistered",
    c.DiscoverHousehold: "HouseholdDiscovered",
    c.OpenCase: "CaseOpened",
    c.HoldMeeting: "CaseMeetingHeld",
    c.GrantConsent: "ConsentGranted",
}


def size(events: int, *, dongs: int | None = None, years: int | None = None) -> tuple[int, int]:
    """The dongs and years :func:`generate` simulates to record ``events`` events.

    The sizing counts on :data:`EVENTS_PER_DONG_YEAR` events per dong and simulated year
    (fewer than the district records: about 1,950 over one year, more over several), so
    the simulation reaches ``events`` before its period ends, and stops there. Given
    neither, the district is the default 17 dongs over one year while that is enough,
    then more dongs (up to 200), then more years; given ``dongs``, the years are chosen;
    given ``years``, the dongs; given both, they are checked. Raises
    :class:`InvalidInput` when ``events`` is less than 1 or needs more than 200 dongs or
    20 years (at most 6,000,000 events).
    """
    _check(1 if dongs is None else dongs, 1 if years is None else years, 2022)
    if events < 1:
        raise InvalidInput(f"events: must be at least 1, not {events}", [("events", "less than 1")])
    rate = EVENTS_PER_DONG_YEAR
    most = MAX_DONGS * MAX_YEARS * rate
    if events > most:
        msg = f"events: at most {most:,} ({MAX_DONGS} dongs over {MAX_YEARS} years), not {events:,}"
        raise InvalidInput(msg, [("events", "more than the largest district records")])
    dong_years = math.ceil(events / rate)
    problem = ""
    if years is None:
        if dongs is None:
            years = math.ceil(dong_years / MAX_DONGS)
            dongs = max(17, math.ceil(dong_years / years))
        else:
            years = math.ceil(dong_years / dongs)
            if years > MAX_YEARS:
                problem = f"{_plural(dongs, 'dong')} would take {years} years (at most {MAX_YEARS})"
    elif dongs is None:
        dongs = math.ceil(dong_years / years)
        if dongs > MAX_DONGS:
            problem = f"{_plural(years, 'year')} would take {dongs} dongs (at most {MAX_DONGS})"
    elif dongs * years < dong_years:
        problem = f"{_plural(dongs, 'dong')} over {_plural(years, 'year')} are too few"
    if problem:
        msg = (
            f"events: {events:,} events need {dong_years:,} dong-years (counting {rate:,} "
            f"events a dong and year); {problem}"
        )
        raise InvalidInput(msg, [("events", "more than the district can record")])
    return dongs, years


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class _Stages:
    """Each case's stage, followed from the commands recorded (as the case aggregate does).

    Per case: ``[stage, track, plan agreed, active links]``; the stage after a command is
    the one :class:`caseledger.case.Case` moves to when it applies the command's event.
    """

    def __init__(self) -> None:
        self.cases: dict[UUID, list[Any]] = {}
        self.on: dict[type[Any], Callable[[Any], None]] = {
            c.OpenCase: self.opened,
            c.AssessNeeds: self.assessed,
            c.Classify: self.classified,
            c.AgreePlan: self.planned,
            c.LinkService: self.linked,
            c.CheckService: self.checked,
            c.CloseCase: self.closed,
            c.ReopenCase: self.reopened,
        }

    @staticmethod
    def _for_track(case: list[Any]) -> None:
        _, track, planned, active = case
        if track == "case_managed":
            case[0] = "in_service" if active else "planned" if planned else "selected"
        elif track == "linkage_only":
            case[0] = "linked" if active else "linkage_selected"
        else:
            case[0] = "not_selected"

    def opened(self, command: Any) -> None:
        self.cases[command.case_id] = ["opened", None, False, 0]

    def assessed(self, command: Any) -> None:
        self.cases[command.case_id][0] = "assessed"

    def classified(self, command: Any) -> None:
        case = self.cases[command.case_id]
        case[1] = command.track.value
        self._for_track(case)

    def planned(self, command: Any) -> None:
        case = self.cases[command.case_id]
        case[2] = True
        self._for_track(case)

    def linked(self, command: Any) -> None:
        case = self.cases[command.case_id]
        case[3] += 1
        self._for_track(case)

    def checked(self, command: Any) -> None:
        if command.decision.value == "stop":
            case = self.cases[command.case_id]
            case[3] -= 1
            self._for_track(case)

    def closed(self, command: Any) -> None:
        case = self.cases[command.case_id]
        case[0], case[3] = "closed", 0

    def reopened(self, command: Any) -> None:
        case = self.cases[command.case_id]
        case[0], case[1], case[2] = "opened", None, False

    def counts(self) -> dict[str, int]:
        found = Counter(case[0] for case in self.cases.values())
        return dict(sorted(found.items()))


def generate(
    ledger: Ledger,
    *,
    dongs: int | None = None,
    years: int | None = None,
    seed: int = 0,
    start_year: int = 2022,
    clock: DemoClock | None = None,
    batch_size: int = 1000,
    progress: Progress | None = None,
    events: int | None = None,
    on_batch: Progress | None = None,
) -> DemoSummary:
    """Record a synthetic district into ``ledger``; see the module docstring.

    ``clock``, the :class:`DemoClock` the ledger was opened with, is moved to each
    entry's simulated recording time; without it the ledger's own clock stamps
    ``recorded_at`` (so every entry looks recorded today). Commands are recorded in
    transactions of ``batch_size``. Deterministic: the same arguments give the same log.

    Without ``events`` the district has ``dongs`` dongs (17) and is simulated for
    ``years`` years (1). With ``events``, exactly that many events are recorded: the
    simulation stops there, and the dongs and years not given are chosen by :func:`size`
    (the summary's ``end`` is then the last day reached). :class:`InvalidInput` if the
    simulated period ends first (only possible with few dongs, given).

    ``progress`` is called with the day reached and the commands so far about once per
    simulated month, ``on_batch`` the same after each transaction (for a progress bar).
    """
    if events is not None:
        dongs, years = size(events, dongs=dongs, years=years)
    dongs = 17 if dongs is None else dongs
    years = 1 if years is None else years
    _check(dongs, years, start_year)
    if batch_size < 1:
        raise InvalidInput("batch_size: must be at least 1", [("batch_size", "less than 1")])
    started = time.perf_counter()
    before = len(ledger)
    wanted = -1 if events is None else events
    by_type: dict[str, int] = {}  # in order of first appearance, for ties in the summary
    counts: dict[type[Any], int] = {}
    stages = _Stages()
    on = stages.on
    done = 0
    month = (0, 0)
    day = date(start_year, 1, 1)
    stream = commands(dongs=dongs, years=years, seed=seed, start_year=start_year)
    execute = ledger.execute
    exhausted = False
    while not exhausted and done != wanted:
        with ledger.batch():
            for _ in range(batch_size if wanted < 0 else min(batch_size, wanted - done)):
                item = next(stream, None)
                if item is None:
                    exhausted = True
                    break
                recorded, command = item
                if clock is not None:
                    clock.now = recorded
                result = execute(command)
                kind = type(command)
                counts[kind] = counts.get(kind, 0) + 1
                follow = on.get(kind)
                if follow is not None:
                    follow(command)
                name = type(result).__name__ if isinstance(result, Event) else _RESULT_EVENTS[kind]
                by_type[name] = by_type.get(name, 0) + 1
                done += 1
                day = recorded.date()
                if progress is not None and (day.year, day.month) != month:
                    month = (day.year, day.month)
                    progress(day, done)
        if on_batch is not None:
            on_batch(day, done)
    if done < wanted:
        msg = (
            f"events: {_plural(dongs, 'dong')} over {_plural(years, 'year')} recorded only "
            f"{done:,} of the {wanted:,} events asked for; give more dongs or years"
        )
        raise InvalidInput(msg, [("events", "more than the simulated period records")])
    start, end = period(start_year, years)
    return DemoSummary(
        district=DISTRICT,
        dongs=dongs,
        start=start,
        end=end if events is None else min(end, day),
        seed=seed,
        organisations=counts.get(c.RegisterOrganisation, 0),
        workers=counts.get(c.RegisterWorker, 0),
        households=counts.get(c.DiscoverHousehold, 0),
        cases=len(stages.cases),
        cases_by_stage=stages.counts(),
        meetings=counts.get(c.HoldMeeting, 0),
        commands=done,
        events=len(ledger) - before,
        events_by_type=dict(sorted(by_type.items(), key=lambda item: item[1], reverse=True)),
        seconds=time.perf_counter() - started,
    )


# The simulation
#
# A day-by-day simulation over working days. Everything that happens later is a
# callback scheduled on a future working day; callbacks of a case carry the case's
# ``cycle`` and do nothing once it changed (a reclassification or a reopening starts a
# new cycle), so stale plans never act. Each command is queued with its recording time;
# a command is recorded after everything it depends on (the earlier commands of the
# same household or case, and the meeting or case it names), so the log is in
# recording order and every command is valid when it is executed.


def _dong_name(index: int) -> str:
    name = _DONG_NAMES[index % len(_DONG_NAMES)]
    if index < len(_DONG_NAMES):
        return name
    return f"{name[:-1]}{index // len(_DONG_NAMES) + 1}동"


@dataclass(eq=False)
class _Dong:
    index: int
    name: str
    centre: str
    officers: list[str]
    lead: str
    cwc: str  # the community welfare centre serving this dong
    discoveries_per_day: float
    blind_spot_batch: float
    intake_share: float
    meeting_day: int
    awaiting: list[_Case] = field(default_factory=list)
    closing: list[_Case] = field(default_factory=list)
    reviews: list[_Case] = field(default_factory=list)
    active: list[_Case] = field(default_factory=list)


@dataclass(eq=False)
class _Household:
    id: UUID
    dong: _Dong
    elderly: bool
    consent: UUID | None = None


@dataclass(eq=False)
class _Case:
    id: UUID
    household: _Household
    dong: _Dong
    organisation: str  # the organisation of ``worker``
    worker: str
    status: str = "opened"  # opened awaiting selected in_service linked closing closed
    cycle: int = 0
    track: str = ""
    planned_track: str = ""
    level: str = "general"
    assessed_on: date | None = None
    needs: tuple[str, ...] = ()
    links: list[tuple[UUID, str]] = field(default_factory=list)
    links_per_month: float = 0.0
    progress: int = 0
    reclassify: str = ""
    wrong_dong: _Dong | None = None
    referrals: dict[UUID, str] = field(default_factory=dict)
    senders: dict[UUID, str] = field(default_factory=dict)


# The mark of an aggregate whose marks were forgotten: all in the past.
_FORGOTTEN = (datetime(1900, 1, 1, tzinfo=KST),) * 3


class _District:
    """The simulation; :meth:`run` yields ``(recorded_at, command)`` in recording order."""

    def __init__(self, rng: random.Random, dongs: int, start: date, end: date) -> None:
        self.rng = rng
        self.start = start
        self.end = end
        self.n_dongs = dongs
        self.queue: list[tuple[datetime, int, Any]] = []
        self.seq = 0
        # Per household or case: last occurred, last core recorded, last recorded.
        self.last: dict[UUID, tuple[datetime, datetime, datetime]] = {}
        self.created: dict[UUID, tuple[datetime, datetime]] = {}  # occurred, recorded
        self.todo: dict[date, list[Callable[[date], None]]] = {}
        self.people = 0
        self.dongs: list[_Dong] = []
        self.sectors: dict[str, str] = {}
        self.partner_workers: dict[str, list[str]] = {}
        self.hwst = f"{_PREFIX}-hwst"
        self.hwst_lead = f"{self.hwst}-lead"
        self.hwst_managers: list[str] = []
        self.complex_awaiting: list[_Case] = []
        self.complex_closing: list[_Case] = []
        self.complex_reviews: list[_Case] = []
        self.weights: dict[int, tuple[Any, list[Any], list[int], float, int]] = {}
        self.bits = rng.getrandbits
        self.random = rng.random
        # Working days from the start to well past the end, for scheduling in working days.
        self.workdays: list[date] = []
        self.next_workday: dict[date, int] = {}  # index of the first working day >= a day
        self.nth: dict[date, int] = {}  # which working day of its month a working day is
        day = start - timedelta(days=7)
        while day <= end + timedelta(days=400):
            self.next_workday[day] = len(self.workdays)
            if self.is_working(day):
                previous = self.workdays[-1] if self.workdays else None
                same_month = previous is not None and previous.month == day.month
                self.nth[day] = self.nth[previous] + 1 if same_month and previous else 1
                self.workdays.append(day)
            day += timedelta(days=1)
        # Past the calendar, and so past the end: what is scheduled there never happens.
        self.beyond = day

    # -- randomness ------------------------------------------------------------------------

    # The helpers below draw exactly what :class:`random.Random`'s ``randint``, ``choice``
    # and ``choices`` draw (so a seed gives the log it always gave), in one call each.

    def uid(self) -> UUID:
        return uuid.UUID(int=self.bits(128), version=4)

    def chance(self, p: float) -> bool:
        return self.random() < p

    def below(self, n: int) -> int:
        """A random int in ``[0, n)``, as ``Random._randbelow_with_getrandbits``."""
        k = n.bit_length()
        r = self.bits(k)
        while r >= n:
            r = self.bits(k)
        return r

    def randint(self, a: int, b: int) -> int:
        n = b - a + 1
        k = n.bit_length()
        r = self.bits(k)
        while r >= n:
            r = self.bits(k)
        return a + r

    def choice(self, seq: Sequence[_T]) -> _T:
        return seq[self.below(len(seq))]

    def pick(self, weighted: tuple[tuple[Any, int], ...]) -> Any:
        """One item of ``(item, weight)`` pairs (``weighted`` must be a constant)."""
        found = self.weights.get(id(weighted))
        if found is None or found[0] is not weighted:
            cumulative = list(accumulate(w[1] for w in weighted))
            found = self.weights[id(weighted)] = (
                weighted,
                [w[0] for w in weighted],
                cumulative,
                cumulative[-1] + 0.0,
                len(weighted) - 1,
            )
        _, items, cumulative, total, hi = found
        return items[bisect(cumulative, self.random() * total, 0, hi)]

    def poisson(self, lam: float) -> int:
        # Knuth's method: lam is small (a dong's discoveries on one day).
        limit, k, p = math.exp(-lam), 0, self.random()
        while p > limit:
            k += 1
            p *= self.random()
        return k

    # -- time ------------------------------------------------------------------------------

    @staticmethod
    def is_working(day: date) -> bool:
        return day.weekday() < 5 and (day.month, day.day) not in _HOLIDAYS

    def after(self, day: date, working_days: int) -> date:
        """The working day ``working_days`` after ``day`` (0: ``day`` or the next one)."""
        index = self.next_workday[day] + working_days
        if index < len(self.workdays):
            return self.workdays[index]
        return self.beyond  # a long wait (a rare long gap between links) ends past the end

    def at(self, day: date, hour: int = 9, spread: int = 480) -> datetime:
        start = datetime(day.year, day.month, day.day, hour, tzinfo=KST)
        return start + timedelta(minutes=self.randint(0, spread))

    def later(self, day: date, lo: int, hi: int, action: Callable[[date], None]) -> None:
        when = self.after(day, self.randint(lo, hi))
        if when <= self.end:
            self.todo.setdefault(when, []).append(action)

    def case_later(
        self, day: date, lo: int, hi: int, case: _Case, action: Callable[[date], None]
    ) -> None:
        cycle = case.cycle

        def act(d: date) -> None:
            if case.cycle == cycle:
                action(d)

        self.later(day, lo, hi, act)

    def delay(self) -> timedelta:
        """How long after it happened an entry is recorded: mostly the same day."""
        r = self.random()
        if r < 0.80:
            return timedelta(minutes=self.randint(3, 240))
        if r < 0.95:
            return timedelta(days=self.randint(1, 7), minutes=self.randint(0, 300))
        if r < 0.99:
            return timedelta(days=self.randint(8, 30), minutes=self.randint(0, 300))
        return timedelta(days=self.randint(31, 60), minutes=self.randint(0, 300))

    # -- recording -------------------------------------------------------------------------

    def emit(
        self,
        cls: type[Any],
        occurred: datetime,
        *,
        chain: tuple[UUID, ...] = (),
        requires: tuple[UUID, ...] = (),
        creates: UUID | None = None,
        ordering: str = "core",
        prompt: bool = False,
        **fields: Any,
    ) -> datetime:
        """Queue a command; return when it occurred (moved after what it depends on).

        ``chain``: the household or case it belongs to; ``requires``: ids that must be
        recorded first (a meeting named, the cases of an agenda, the link checked);
        ``creates``: the new id it records. ``ordering`` says how it is ordered within
        its chain: a ``"core"`` command comes after the earlier core commands; a
        ``"leaf"`` (a check, a supervision note, a service link) too, but later commands
        do not wait for it, so it may be recorded late; a ``"barrier"`` (a closure, a
        reclassification, a transfer) waits for every earlier command, late ones included.
        """
        gap = timedelta(minutes=self.randint(1, 20))
        for aggregate in chain:
            mark = self.last.get(aggregate)
            if mark is not None and occurred <= mark[0]:
                occurred = mark[0] + gap
        for aggregate in requires:
            made = self.created.get(aggregate)
            if made is not None and occurred <= made[0]:
                occurred = made[0] + gap
        recorded = occurred + (timedelta(seconds=30) if prompt else self.delay())
        for aggregate in chain:
            mark = self.last.get(aggregate)
            if mark is not None:
                bound = mark[2] if ordering == "barrier" else mark[1]
                if recorded <= bound:
                    recorded = bound + gap
        for aggregate in requires:
            made = self.created.get(aggregate)
            if made is not None and recorded <= made[1]:
                recorded = made[1] + gap
        command = cls(at=occurred, **fields)
        self.seq += 1
        heapq.heappush(self.queue, (recorded, self.seq, command))
        for aggregate in chain:
            mark = self.last.get(aggregate, _FORGOTTEN)
            core = mark[1] if ordering == "leaf" else recorded
            self.last[aggregate] = (occurred, core, max(mark[2], recorded))
        if creates is not None:
            self.created[creates] = (occurred, recorded)
            self.last.setdefault(creates, (occurred, recorded, recorded))
        return occurred

    def forget(self, before: datetime) -> None:
        """Drop the ordering marks that end before ``before``.

        Everything emitted from then on occurs (and so is recorded) later than such a mark,
        so it no longer orders anything: a forgotten mark acts as :data:`_FORGOTTEN` does.
        Without this the marks of every household, case, meeting and link would be kept.
        """
        self.last = {k: v for k, v in self.last.items() if v[2] >= before}
        self.created = {k: v for k, v in self.created.items() if v[1] >= before}

    def flush(self, before: datetime | None) -> Iterator[tuple[datetime, Any]]:
        while self.queue and (before is None or self.queue[0][0] < before):
            recorded, _, command = heapq.heappop(self.queue)
            yield recorded, command

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> Iterator[tuple[datetime, Any]]:
        self.register(self.start - timedelta(days=1))
        day = self.start
        while day <= self.end:
            if day.day == 1:
                self.forget(datetime(day.year, day.month, day.day, tzinfo=KST))
            if self.is_working(day):
                self.simulate(day)
            day += timedelta(days=1)
            yield from self.flush(datetime(day.year, day.month, day.day, tzinfo=KST))
        yield from self.flush(None)

    def simulate(self, day: date) -> None:
        nth = self.nth[day]
        if nth == 1 and day.month % 2 == 0:
            self.blind_spot_batch(day)
        for dong in self.dongs:
            for _ in range(self.poisson(dong.discoveries_per_day)):
                self.discover(day, dong, self.pick(_CHANNELS))
        self.act(day)
        for dong in self.dongs:
            if nth == dong.meeting_day:
                self.internal_meeting(day, dong)
        if nth == 12:
            self.integrated_meeting(day)
        if nth == 15 and day.month % 3 == 0:
            self.expert_committee(day)
        self.act(day)  # what the meetings decided for today

    def act(self, day: date) -> None:
        """Run the callbacks of ``day``, including those they schedule for the same day."""
        while actions := self.todo.pop(day, None):
            for action in actions:
                action(day)

    # -- organisations and workers -----------------------------------------------------------

    def register(self, day: date) -> None:
        at = datetime(day.year, day.month, day.day, 9, tzinfo=KST)
        orgs: list[tuple[str, str, str, str, str | None]] = [
            (f"{_PREFIX}-office", f"{DISTRICT}청", "public", "district_office", None),
            (self.hwst, f"{DISTRICT} 희망복지지원단", "public", "district_team", None),
            (f"{_PREFIX}-health", f"{DISTRICT} 보건소", "public", "health_centre", None),
            (f"{_PREFIX}-cwc-1", "한빛종합사회복지관", "private", "community_welfare_centre", None),
            (f"{_PREFIX}-cwc-2", "가람종합사회복지관", "private", "community_welfare_centre", None),
            (
                f"{_PREFIX}-mhwc",
                f"{DISTRICT} 정신건강복지센터",
                "private",
                "mental_health_centre",
                None,
            ),
            (f"{_PREFIX}-dementia", f"{DISTRICT} 치매안심센터", "private", "dementia_centre", None),
            (f"{_PREFIX}-senior", "한빛노인복지관", "private", "senior_welfare_centre", None),
            (f"{_PREFIX}-food", "한빛푸드뱅크", "private", "food_bank", None),
            (
                f"{_PREFIX}-council",
                f"{DISTRICT} 지역사회보장협의체",
                "private",
                "community_council",
                None,
            ),
        ]
        for i in range(self.n_dongs):
            name = _dong_name(i)
            orgs.append((self.centre(i), f"{name} 행정복지센터", "public", "dong_centre", name))
        step = timedelta(seconds=10)
        for code, name, sector, kind, dong in orgs:
            self.sectors[code] = sector
            self.emit(
                c.RegisterOrganisation,
                at,
                prompt=True,
                code=code,
                name=name,
                sector=sector,
                kind=kind,
                dong=dong,
                district=DISTRICT,
            )
            at += step

        def worker(code: str, organisation: str, role: str) -> str:
            nonlocal at
            self.people += 1
            self.emit(
                c.RegisterWorker,
                at,
                prompt=True,
                code=code,
                organisation=organisation,
                role=role,
                name=f"가상직원-{self.people:04d}",
            )
            at += step
            return code

        worker(f"{_PREFIX}-office-audit", f"{_PREFIX}-office", "auditor")
        worker(self.hwst_lead, self.hwst, "supervisor")
        for k in range(max(2, math.ceil(self.n_dongs / 4))):
            self.hwst_managers.append(worker(f"{self.hwst}-cm-{k + 1}", self.hwst, "case_manager"))
        for partner in ("cwc-1", "cwc-2", "mhwc", "dementia", "senior", "food"):
            org = f"{_PREFIX}-{partner}"
            self.partner_workers[org] = [
                worker(f"{org}-worker-{k + 1}", org, "partner_worker") for k in range(2)
            ]
        for i in range(self.n_dongs):
            centre = self.centre(i)
            size = self.rng.uniform(0.6, 1.5)
            officers = [
                worker(f"{centre}-officer-{k + 1}", centre, "dong_officer")
                for k in range(2 + round(size))
            ]
            lead = worker(f"{centre}-lead", centre, "supervisor")
            # Per year: 10-45 case-managed households; a third of the selected are
            # linkage only; selections are 8-15 % of discoveries; a quarter of the cases
            # that reach a meeting are not selected; a third of discoveries come from
            # the six blind-spot batches.
            selected = self.rng.uniform(10, 45) / 0.65
            discoveries = selected / self.rng.uniform(0.08, 0.15)
            intake = selected / 0.75
            self.dongs.append(
                _Dong(
                    index=i,
                    name=_dong_name(i),
                    centre=centre,
                    officers=officers,
                    lead=lead,
                    cwc=f"{_PREFIX}-cwc-{1 + i % 2}",
                    discoveries_per_day=discoveries * 0.65 / 245,
                    blind_spot_batch=discoveries * 0.35 / 6,
                    intake_share=min(0.9, intake / (discoveries * 0.9)),
                    meeting_day=6 + i % 10,
                )
            )

    @staticmethod
    def centre(index: int) -> str:
        return f"{_PREFIX}-dong-{index + 1:02d}"

    # -- households ------------------------------------------------------------------------

    def members(self, elderly: bool, dong: _Dong) -> list[dict[str, Any]]:
        count = self.pick(((1, 45), (2, 30), (3, 15), (4, 10)))
        head_year = self.randint(1930, 1957) if elderly else self.randint(1958, 2000)
        road = self.randint(1, 99)
        out = []
        for no in range(1, count + 1):
            self.people += 1
            year = head_year if no == 1 else self.randint(max(head_year - 5, 1930), 2020)
            sex = self.choice("MF")
            personal = {
                "name": f"가상인물-{self.people:05d}",
                "phone": f"010-0000-{self.people % 10000:04d}",
            }
            if no == 1:
                # Month 00 makes the resident number impossible, so never a real one.
                personal["rrn"] = f"{year % 100:02d}0000-{1 if sex == 'M' else 2}000000"
                personal["address"] = f"{DISTRICT} {dong.name} 가상로 {road}길 {count}"
            out.append({"member_no": no, "birth_year": year, "sex": sex, "personal": personal})
        return out

    def officer(self, dong: _Dong) -> str:
        return self.choice(dong.officers)

    def needs(self, count: int) -> list[str]:
        found: list[str] = []
        while len(found) < count:
            need = self.pick(_NEEDS)
            if need not in found:
                found.append(need)
        return found

    def blind_spot_batch(self, day: date) -> None:
        batch = f"{day.year}-{day.month:02d}"
        for dong in self.dongs:
            for _ in range(self.poisson(dong.blind_spot_batch)):
                found = partial(self.discover, dong=dong, channel="blind_spot_system", batch=batch)
                self.later(day, 0, 12, found)

    def discover(self, day: date, dong: _Dong, channel: str, batch: str | None = None) -> None:
        household = _Household(self.uid(), dong, elderly=self.chance(0.45))
        recording = dong
        if self.n_dongs > 1 and self.chance(0.015):
            # A mistake put right later: the neighbouring dong takes the household in.
            recording = self.dongs[(dong.index + 1) % self.n_dongs]
        members = self.members(household.elderly, dong)
        crisis: list[str] = []
        if channel == "blind_spot_system":
            crisis = sorted(self.rng.sample(_CRISIS_CODES, self.randint(1, 3)))
        referred_by = None
        if channel == "partner_referral":
            referred_by = self.choice([dong.cwc, f"{_PREFIX}-mhwc", f"{_PREFIX}-senior"])
        elif channel == "safety_net" and self.chance(0.5):
            referred_by = f"{_PREFIX}-council"
        self.emit(
            c.DiscoverHousehold,
            self.at(day),
            creates=household.id,
            by=self.officer(recording),
            dong=recording.name,
            district=DISTRICT,
            channel=channel,
            members=members,
            crisis_codes=crisis,
            batch=batch,
            referred_by=referred_by,
            household_id=household.id,
            personal={"phone": members[0]["personal"]["phone"]},
        )
        if self.chance(0.8 if channel == "blind_spot_system" else 0.93):
            self.later(day, 0, 8, lambda d: self.consult(d, household, recording))

    def consult(self, day: date, household: _Household, recording: _Dong) -> None:
        intake = self.chance(household.dong.intake_share)
        outcome = "intake" if intake else self.pick((("information_only", 7), ("referred_out", 3)))
        by = self.officer(recording)
        at = self.emit(
            c.RecordConsultation,
            self.at(day),
            chain=(household.id,),
            ordering="core" if intake else "leaf",
            by=by,
            household_id=household.id,
            outcome=outcome,
            problems=sorted({n.split(".")[0] for n in self.needs(self.randint(1, 3))}),
            method=self.pick((("visit", 45), ("phone", 35), ("walk_in", 20))),
            notes=f"합성 상담기록 {self.seq}: 가상 사례",
        )
        if not intake:
            return
        self.grant_consent(at, household, by, chain=(household.id,))
        self.later(day, 0, 2, lambda d: self.open_case(d, household, recording))

    def grant_consent(
        self, at: datetime, household: _Household, by: str, chain: tuple[UUID, ...]
    ) -> None:
        # Providing case data to private partners needs the household's consent.
        household.consent = self.uid()
        recipients: list[str] = []
        if self.chance(0.5):
            partners = ("mhwc", "senior", "dementia", "food")
            recipients = [household.dong.cwc, self.hwst] + [f"{_PREFIX}-{p}" for p in partners]
        self.emit(
            c.GrantConsent,
            at,
            chain=chain,
            by=by,
            household_id=household.id,
            member_no=1,
            scopes=["collect", "use", "provide"],
            recipients=recipients,
            purpose="통합사례관리 서비스 제공",
            consent_id=household.consent,
            expires_at=at + timedelta(days=3 * 365),
        )

    # -- cases: intake to selection --------------------------------------------------------

    def open_case(self, day: date, household: _Household, recording: _Dong) -> None:
        worker = self.officer(recording)
        case = _Case(self.uid(), household, recording, recording.centre, worker)
        self.emit(
            c.OpenCase,
            self.at(day),
            chain=(household.id,),
            creates=case.id,
            by=worker,
            household_id=household.id,
            worker=worker,
            case_id=case.id,
        )
        if recording is not household.dong:
            case.wrong_dong = household.dong
            self.case_later(day, 1, 4, case, lambda d: self.transfer_to_right_dong(d, case))
        else:
            late = self.chance(0.1)  # some assessments miss the 10-day deadline
            self.case_later(
                day, 11 if late else 2, 18 if late else 9, case, lambda d: self.assess(d, case)
            )

    def transfer_to_right_dong(self, day: date, case: _Case) -> None:
        right = case.wrong_dong
        if right is None:  # pragma: no cover - only scheduled for misplaced cases
            return
        worker = self.officer(right)
        self.emit(
            c.TransferCase,
            self.at(day),
            chain=(case.id,),
            ordering="barrier",
            by=case.dong.lead,
            case_id=case.id,
            to_organisation=right.centre,
            to_worker=worker,
        )
        case.dong, case.organisation, case.worker = right, right.centre, worker
        self.case_later(day, 1, 8, case, lambda d: self.assess(d, case))

    def assess(self, day: date, case: _Case) -> None:
        if case.status != "opened":
            return
        needs = self.needs(self.pick(((1, 20), (2, 40), (3, 30), (4, 10))))
        case.needs = tuple(needs)
        score = round(self.rng.uniform(10, 95), 1)
        risk = "high" if score >= 70 else "medium" if score >= 40 else "low"
        self.emit(
            c.AssessNeeds,
            self.at(day),
            chain=(case.id,),
            by=case.worker,
            case_id=case.id,
            needs=[{"sub_domain": n, "urgency": self.randint(1, 5)} for n in needs],
            risk={
                "instrument": _RISK_INSTRUMENT,
                "instrument_version": _RISK_VERSION,
                "score": score,
                "level": risk,
            },
            notes=f"합성 사정기록 {self.seq}",
        )
        case.assessed_on = day
        case.status = "awaiting"
        if self.chance(0.25):
            case.planned_track = "not_selected"
        elif self.chance(0.35):
            case.planned_track = "linkage_only"
        else:
            case.planned_track = "case_managed"
        complex_share = 0.45 if risk == "high" else 0.12
        if case.planned_track == "case_managed" and self.chance(complex_share):
            case.level = "complex"
            self.complex_awaiting.append(case)
        else:
            case.dong.awaiting.append(case)

    # -- meetings --------------------------------------------------------------------------

    def hold(
        self,
        day: date,
        kind: str,
        host: str,
        by: str,
        title: str,
        decisions: dict[UUID, str],
        attendees: list[dict[str, str]],
    ) -> tuple[UUID, datetime]:
        meeting = self.uid()
        at = self.emit(
            c.HoldMeeting,
            self.at(day, 14, 90),
            requires=tuple(decisions),
            creates=meeting,
            by=by,
            kind=kind,
            host=host,
            agenda=list(decisions),
            decisions=decisions,
            attendees=attendees,
            title=title,
            meeting_id=meeting,
        )
        return meeting, at

    def internal_meeting(self, day: date, dong: _Dong) -> None:
        selecting = [k for k in dong.awaiting if k.assessed_on and k.assessed_on < day]
        closing, reviews = dong.closing, dong.reviews
        if dong.active:
            reviews += self.rng.sample(dong.active, min(len(dong.active), self.randint(0, 3)))
        decisions: dict[UUID, str] = {}
        for k in selecting:
            decisions[k.id] = "close" if k.planned_track == "not_selected" else "select"
        for k in closing:
            decisions[k.id] = "close"
        for k in reviews:
            decisions.setdefault(k.id, "select" if k.reclassify else "continue")
        if not decisions:
            return
        attendees = [{"organisation": dong.centre, "role": "맞춤형복지팀"}]
        if self.chance(0.4):
            attendees.append({"organisation": dong.cwc, "role": "사례관리팀"})
        if self.chance(0.3):
            attendees.append({"organisation": self.hwst, "role": "통합사례관리사"})
        meeting, held = self.hold(
            day,
            "internal",
            dong.centre,
            dong.lead,
            f"{day.month}월 내부사례회의",
            decisions,
            attendees,
        )
        dong.awaiting = [k for k in dong.awaiting if k not in selecting]
        dong.closing, dong.reviews = [], []
        self.after_meeting(day, meeting, held, selecting, closing, reviews)

    def integrated_meeting(self, day: date) -> None:
        selecting = [k for k in self.complex_awaiting if k.assessed_on and k.assessed_on < day]
        closing, reviews = self.complex_closing, self.complex_reviews
        active = [k for d in self.dongs for k in d.active if k.level == "complex"]
        linking = self.rng.sample(active, min(len(active), self.randint(1, 4)))
        decisions: dict[UUID, str] = {}
        for k in selecting:
            decisions[k.id] = "select"
        for k in closing:
            decisions[k.id] = "close"
        for k in reviews:
            decisions.setdefault(k.id, "select")
        for k in linking:
            decisions.setdefault(k.id, "link_service")
        if not decisions:
            return
        partners = [f"{_PREFIX}-{p}" for p in ("mhwc", "senior", "dementia", "cwc-1", "cwc-2")]
        attendees = [{"organisation": self.hwst, "role": "통합사례관리사"}] + [
            {"organisation": p, "role": "실무자"}
            for p in self.rng.sample(partners, self.randint(2, 5))
        ]
        meeting, held = self.hold(
            day,
            "integrated",
            self.hwst,
            self.hwst_lead,
            f"{day.year}년 {day.month}월 통합사례회의",
            decisions,
            attendees,
        )
        self.complex_awaiting = [k for k in self.complex_awaiting if k not in selecting]
        self.complex_closing, self.complex_reviews = [], []
        self.after_meeting(day, meeting, held, selecting, closing, reviews)
        for k in linking:
            if decisions[k.id] == "link_service":
                # Each organisation presents what it can provide; one is linked now.
                self.link(day, k, meeting=(meeting, held), category="private")

    def expert_committee(self, day: date) -> None:
        active = [k for d in self.dongs for k in d.active if k.level == "complex"]
        if not active:
            return
        chosen = self.rng.sample(active, min(len(active), self.randint(1, 3)))
        decisions = {k.id: self.pick((("continue", 2), ("refer", 1))) for k in chosen}
        attendees = [
            {"organisation": self.hwst, "role": "통합사례관리사"},
            {"organisation": f"{_PREFIX}-mhwc", "role": "전문가 위원"},
            {"organisation": f"{_PREFIX}-office", "role": "복지정책과"},
        ]
        self.hold(day, "expert", self.hwst, self.hwst_lead, "솔루션위원회", decisions, attendees)
        for k in chosen:
            if decisions[k.id] == "refer":
                self.case_later(day, 1, 5, k, partial(self.refer, case=k))

    def after_meeting(
        self,
        day: date,
        meeting: UUID,
        held: datetime,
        selecting: list[_Case],
        closing: list[_Case],
        reviews: list[_Case],
    ) -> None:
        for case in selecting:
            lo, hi = (0, 4) if self.chance(0.92) else (6, 10)  # the 5-day deadline, mostly met
            decide = partial(self.classify, case=case, meeting=meeting, held=held)
            self.case_later(day, lo, hi, case, decide)
        for case in reviews:
            if case.reclassify:
                decide = partial(self.reclassify, case=case, meeting=meeting, held=held)
                self.case_later(day, 0, 3, case, decide)
        for case in closing:
            decide = partial(self.close, case=case, meeting=meeting, held=held)
            self.case_later(day, 0, 3, case, decide)

    def after_held(self, day: date, held: datetime) -> datetime:
        return max(self.at(day), held + timedelta(minutes=self.randint(30, 120)))

    def classify(self, day: date, case: _Case, meeting: UUID, held: datetime) -> None:
        track = case.planned_track
        at = self.emit(
            c.Classify,
            self.after_held(day, held),
            chain=(case.id,),
            ordering="barrier",
            requires=(meeting,),
            by=case.worker,
            case_id=case.id,
            meeting_id=meeting,
            track=track,
            level=case.level,
            criteria_version=_CRITERIA,
            rationale=f"risk and {len(case.needs)} need domains",
            notes=f"합성 선정사유 {self.seq}",
        )
        case.track = track
        if track == "not_selected":
            self.emit(
                c.CloseCase,
                at,
                chain=(case.id,),
                ordering="barrier",
                requires=(meeting,),
                by=case.worker,
                case_id=case.id,
                meeting_id=meeting,
                reason="not_selected",
            )
            self.closed(day, case, "not_selected")
        elif track == "case_managed":
            case.status = "selected"
            if case.level == "complex" and self.chance(0.5):
                self.case_later(day, 0, 2, case, lambda d: self.transfer_to_district(d, case))
            slow = self.chance(0.15)  # some plans miss the 30-day target
            self.case_later(
                day, 10 if slow else 1, 25 if slow else 8, case, lambda d: self.plan(d, case)
            )
        else:
            case.status = "linked"
            case.links_per_month = self.rng.uniform(0.5, 2.0)
            case.dong.active.append(case)
            self.case_later(day, 0, 5, case, lambda d: self.link(d, case, recurring=True))
            self.case_later(day, 15, 22, case, lambda d: self.check(d, case))
            months = self.randint(1, 4)
            self.case_later(day, 21 * months, 21 * months + 5, case, lambda d: self.due(d, case))
            if self.chance(0.06):
                # A mistake corrected later: the case needed case management after all.
                case.reclassify = "case_managed"
                self.case_later(day, 15, 40, case, lambda d: case.dong.reviews.append(case))

    def reclassify(self, day: date, case: _Case, meeting: UUID, held: datetime) -> None:
        if case.status not in ("linked", "in_service") or not case.reclassify:
            return
        level = "complex" if case.reclassify == "complex" else case.level
        self.emit(
            c.Classify,
            self.after_held(day, held),
            chain=(case.id,),
            ordering="barrier",
            requires=(meeting,),
            by=case.worker,
            case_id=case.id,
            meeting_id=meeting,
            track="case_managed",
            level=level,
            criteria_version=_CRITERIA,
            rationale="reclassified after review",
        )
        was, case.reclassify = case.track, ""
        case.track, case.level = "case_managed", level
        if was == "linkage_only":
            case.cycle += 1  # the linkage-only plans end here
            case.status = "selected"
            case.dong.active.remove(case)
            self.case_later(day, 1, 6, case, lambda d: self.plan(d, case))

    def transfer_to_district(self, day: date, case: _Case) -> None:
        worker = self.choice(self.hwst_managers)
        self.emit(
            c.TransferCase,
            self.at(day),
            chain=(case.id,),
            ordering="barrier",
            by=case.dong.lead,
            case_id=case.id,
            to_organisation=self.hwst,
            to_worker=worker,
        )
        case.organisation, case.worker = self.hwst, worker

    # -- service ---------------------------------------------------------------------------

    def provider(self, role: str, case: _Case) -> str:
        if role == "cwc":
            return case.dong.cwc
        if role == "dong":
            return case.dong.centre
        if role == "own":
            return case.organisation
        return self.hwst if role == "hwst" else f"{_PREFIX}-{role}"

    def plan(self, day: date, case: _Case) -> None:
        services = []
        for _ in range(self.randint(2, 5)):
            domain, name, kind, role = self.choice(_PRIVATE)
            if self.chance(0.35):
                domain, name, role = self.choice(_COUNSELLING)
                kind = "counselling"
            provider = self.provider(role, case)
            services.append(
                {
                    "domain": domain,
                    "service": name,
                    "provider": provider,
                    "sector": self.sectors[provider],
                    "kind": kind,
                    "frequency": self.pick((("주 1회", 3), ("월 2회", 3), ("월 1회", 4))),
                    "months": self.randint(3, 12),
                }
            )
        self.emit(
            c.AgreePlan,
            self.at(day),
            chain=(case.id,),
            by=case.worker,
            case_id=case.id,
            services=services,
            goal_count=self.randint(1, 4),
            agreed_on=day,
            notes=f"합성 서비스계획 {self.seq}",
        )
        case.status = "in_service"
        case.links_per_month = self.rng.uniform(5.0, 16.0)
        case.dong.active.append(case)
        for _ in range(self.randint(1, 3)):
            self.case_later(day, 0, 5, case, lambda d: self.link(d, case))
        self.case_later(day, 1, 10, case, lambda d: self.link(d, case, recurring=True))
        self.case_later(day, 15, 22, case, lambda d: self.check(d, case))
        self.case_later(day, 55, 70, case, lambda d: self.reassess(d, case))
        if self.chance(0.4):
            self.case_later(day, 2, 10, case, lambda d: self.refer(d, case))
        if case.level == "complex" or self.chance(0.3):
            self.case_later(day, 10, 30, case, lambda d: self.supervise(d, case))
        months = self.pick(((3, 15), (4, 15), (5, 15), (6, 20), (8, 15), (10, 10), (12, 10)))
        self.case_later(day, 21 * months, 21 * months + 10, case, lambda d: self.due(d, case))

    @staticmethod
    def serving(case: _Case) -> bool:
        return case.status in ("in_service", "linked")

    def link(
        self,
        day: date,
        case: _Case,
        *,
        meeting: tuple[UUID, datetime] | None = None,
        category: str = "",
        recurring: bool = False,
    ) -> None:
        if not self.serving(case):
            return
        category = category or self.pick(
            (("private", 60), ("counselling", 32), ("public", 6), ("benefit", 2))
        )
        amount: str | None = None
        if category == "private":
            domain, service, kind, role = self.choice(_PRIVATE)
            if kind == "in_kind":
                amount = str(self.randint(2, 20) * 10_000)
            elif kind == "cash":
                amount = str(self.randint(10, 50) * 10_000)
        elif category == "counselling":
            domain, service, role = self.choice(_COUNSELLING)
            kind = "counselling"
        elif category == "public":
            domain, service, role = self.choice(_OTHER_PUBLIC)
            kind = "service"
        else:
            domain, service = self.choice(_BENEFITS)
            kind, role = "cash", "dong"
            amount = str(self.randint(30, 150) * 10_000)
        provider = self.provider(role, case)
        link_id = self.uid()
        at = self.at(day) if meeting is None else self.after_held(day, meeting[1])
        self.emit(
            c.LinkService,
            at,
            chain=(case.id,),
            ordering="leaf",
            requires=(meeting[0],) if meeting else (),
            by=case.worker,
            case_id=case.id,
            service=service,
            provider=provider,
            domain=domain,
            kind=kind,
            amount=amount,
            meeting_id=meeting[0] if meeting else None,
            link_id=link_id,
            creates=link_id,
        )
        case.links.append((link_id, provider))
        if recurring:
            gap = max(1, round(self.rng.expovariate(case.links_per_month / 21)))
            self.case_later(day, gap, gap, case, lambda d: self.link(d, case, recurring=True))

    def check(self, day: date, case: _Case) -> None:
        if not self.serving(case):
            return
        recent = case.links[-6:]
        for link_id, provider in self.rng.sample(recent, min(len(recent), self.randint(1, 2))):
            case.progress = min(100, case.progress + self.randint(0, 20))
            decision = self.pick((("continue", 85), ("adjust", 9), ("stop", 6)))
            method = self.pick(
                (("phone", 45), ("visit", 35), ("provider_report", 15), ("walk_in", 5))
            )
            self.emit(
                c.CheckService,
                self.at(day),
                chain=(case.id,),
                requires=(link_id,),
                ordering="barrier" if decision == "stop" else "leaf",
                by=case.worker,
                case_id=case.id,
                link_id=link_id,
                method=method,
                progress=case.progress,
                decision=decision,
                notes=f"합성 점검기록 {self.seq}",
            )
            if decision == "stop":
                case.links.remove((link_id, provider))
        lo, hi = (18, 23) if self.chance(0.88) else (30, 45)  # some checks come overdue
        self.case_later(day, lo, hi, case, lambda d: self.check(d, case))

    def reassess(self, day: date, case: _Case) -> None:
        if case.status != "in_service":
            return
        needs = self.needs(self.randint(1, 3))
        self.emit(
            c.Reassess,
            self.at(day),
            chain=(case.id,),
            ordering="leaf",
            by=case.worker,
            case_id=case.id,
            needs=[{"sub_domain": n, "urgency": self.randint(1, 5)} for n in needs],
            notes=f"합성 재사정기록 {self.seq}",
        )
        if self.chance(0.15):
            self.case_later(day, 1, 5, case, lambda d: self.revise_plan(d, case))
        if case.level == "general" and not case.reclassify and self.chance(0.05):
            # The level was wrong: the district reclassifies the case as complex.
            case.reclassify = "complex"
            self.complex_reviews.append(case)
        self.case_later(day, 55, 70, case, lambda d: self.reassess(d, case))

    def revise_plan(self, day: date, case: _Case) -> None:
        if case.status != "in_service":
            return
        domain, name, kind, role = self.choice(_PRIVATE)
        provider = self.provider(role, case)
        self.emit(
            c.AgreePlan,
            self.at(day),
            chain=(case.id,),
            ordering="leaf",
            by=case.worker,
            case_id=case.id,
            services=[
                {
                    "domain": domain,
                    "service": name,
                    "provider": provider,
                    "sector": self.sectors[provider],
                    "kind": kind,
                    "months": 3,
                }
            ],
            goal_count=self.randint(1, 3),
            agreed_on=day,
        )

    def supervise(self, day: date, case: _Case) -> None:
        if case.status != "in_service":
            return
        by = self.hwst_lead if case.level == "complex" else case.dong.lead
        self.emit(
            c.RecordSupervision,
            self.at(day),
            chain=(case.id,),
            ordering="leaf",
            by=by,
            case_id=case.id,
            notes=f"합성 슈퍼비전 {self.seq}",
        )
        hi = 30 if case.level == "complex" else 60
        self.case_later(day, 18, hi, case, lambda d: self.supervise(d, case))

    # -- referrals -------------------------------------------------------------------------

    def refer(self, day: date, case: _Case) -> None:
        if not self.serving(case):
            return
        if case.household.elderly:
            to = self.pick(_ELDERLY_PARTNERS)
            domain = "health"
        elif "health.mental" in case.needs:
            to, domain = f"{_PREFIX}-mhwc", "health"
        else:
            to, domain = case.dong.cwc, "social"
        wrong = self.chance(0.04)
        if wrong:  # a mistake: sent to the wrong organisation, revoked and sent again
            to = f"{_PREFIX}-food"
        referral = self.uid()
        self.emit(
            c.Refer,
            self.at(day),
            chain=(case.id,),
            by=case.worker,
            case_id=case.id,
            to=to,
            domain=domain,
            purpose="전문 서비스 제공 의뢰",
            referral_id=referral,
        )
        case.referrals[referral] = "sent"
        case.senders[referral] = case.worker
        if wrong:
            self.case_later(
                day, 1, 4, case, lambda d: self.revoke(d, case, referral, "의뢰기관 착오")
            )
            self.case_later(day, 5, 8, case, lambda d: self.refer(d, case))
            return
        r = self.rng.random()
        if r < 0.95:
            accept = r < 0.80
            self.case_later(day, 2, 8, case, lambda d: self.respond(d, case, referral, to, accept))
        else:
            self.case_later(
                day, 15, 25, case, lambda d: self.revoke(d, case, referral, "회신 없음")
            )

    def revoke(self, day: date, case: _Case, referral: UUID, reason: str) -> None:
        if not self.serving(case) or case.referrals.get(referral) != "sent":
            return
        # Only the sending organisation may revoke: the worker who sent it does.
        self.emit(
            c.RevokeReferral,
            self.at(day),
            chain=(case.id,),
            by=case.senders[referral],
            case_id=case.id,
            referral_id=referral,
            reason=reason,
        )
        case.referrals[referral] = "revoked"

    def respond(self, day: date, case: _Case, referral: UUID, to: str, accept: bool) -> None:
        if not self.serving(case) or case.referrals.get(referral) != "sent":
            return
        worker = self.choice(self.partner_workers[to])
        self.emit(
            c.RespondToReferral,
            self.at(day),
            chain=(case.id,),
            by=worker,
            case_id=case.id,
            referral_id=referral,
            accept=accept,
            reason="" if accept else self.choice(_REJECTIONS),
        )
        if not accept:
            case.referrals[referral] = "rejected"
            return
        case.referrals[referral] = "accepted"
        for _ in range(self.randint(1, 3)):
            self.case_later(
                day, 1, 15, case, lambda d: self.partner_link(d, case, referral, to, worker)
            )
        self.case_later(day, 20, 80, case, lambda d: self.complete(d, case, referral, worker))

    def partner_link(self, day: date, case: _Case, referral: UUID, to: str, worker: str) -> None:
        if not self.serving(case) or case.referrals.get(referral) != "accepted":
            return
        offered = [
            (d, s, "counselling") for d, s, r in _COUNSELLING if self.provider(r, case) == to
        ]
        offered += [(d, s, k) for d, s, k, r in _PRIVATE if self.provider(r, case) == to]
        domain, service, kind = self.choice(offered or [("other", "전문 서비스", "service")])
        link_id = self.uid()
        self.emit(
            c.LinkService,
            self.at(day),
            chain=(case.id,),
            ordering="core",  # its partner is related to the case only until completion
            by=worker,
            case_id=case.id,
            service=service,
            provider=to,
            domain=domain,
            kind=kind,
            referral_id=referral,
            link_id=link_id,
            creates=link_id,
        )
        case.links.append((link_id, to))

    def complete(self, day: date, case: _Case, referral: UUID, worker: str) -> None:
        if not self.serving(case) or case.referrals.get(referral) != "accepted":
            return
        self.emit(
            c.CompleteReferral,
            self.at(day),
            chain=(case.id,),
            by=worker,
            case_id=case.id,
            referral_id=referral,
        )
        case.referrals[referral] = "completed"

    # -- closure and after -----------------------------------------------------------------

    def due(self, day: date, case: _Case) -> None:
        if not self.serving(case):
            return
        case.status = "closing"
        case.dong.active.remove(case)
        if case.level == "complex":
            self.complex_closing.append(case)
        else:
            case.dong.closing.append(case)

    def close(self, day: date, case: _Case, meeting: UUID, held: datetime) -> None:
        if case.status != "closing":
            return
        reason = self.pick(_CLOSURE_REASONS)
        self.emit(
            c.CloseCase,
            self.after_held(day, held),
            chain=(case.id,),
            ordering="barrier",
            requires=(meeting,),
            by=case.worker,
            case_id=case.id,
            meeting_id=meeting,
            reason=reason,
        )
        self.closed(day, case, reason)

    def closed(self, day: date, case: _Case, reason: str) -> None:
        case.status = "closed"
        case.cycle += 1
        case.links = []
        household = case.household
        if household.consent is not None and self.chance(0.03):
            consent, household.consent = household.consent, None
            self.later(day, 5, 40, lambda d: self.withdraw(d, household, consent))
        if reason in ("death", "moved_out"):
            return
        if self.chance(0.3 if reason == "not_selected" else 0.85):
            self.case_later(day, 20, 60, case, lambda d: self.follow_up(d, case, again=True))

    def withdraw(self, day: date, household: _Household, consent: UUID) -> None:
        self.emit(
            c.WithdrawConsent,
            self.at(day),
            chain=(household.id,),
            ordering="leaf",
            by=self.officer(household.dong),
            household_id=household.id,
            consent_id=consent,
        )

    def follow_up(self, day: date, case: _Case, *, again: bool) -> None:
        reopen = case.track != "not_selected" and self.chance(0.05)
        self.emit(
            c.FollowUp,
            self.at(day),
            chain=(case.id,),
            ordering="core" if reopen else "leaf",
            by=self.officer(case.dong),
            case_id=case.id,
            method=self.pick((("phone", 6), ("visit", 4))),
            recommend_reopen=reopen,
            notes=f"합성 사후관리 {self.seq}",
        )
        if reopen:
            self.case_later(day, 3, 10, case, lambda d: self.reopen(d, case))
        elif again and self.chance(0.3):
            self.case_later(day, 40, 70, case, lambda d: self.follow_up(d, case, again=False))

    def reopen(self, day: date, case: _Case) -> None:
        worker = self.officer(case.dong)
        at = self.emit(
            c.ReopenCase,
            self.at(day),
            chain=(case.id,),
            ordering="barrier",
            by=worker,
            case_id=case.id,
            reason="위기 재발생",
            worker=worker,
        )
        # A new consent for the new episode (the old one may be withdrawn or expire).
        self.grant_consent(at, case.household, worker, chain=(case.household.id, case.id))
        case.cycle += 1
        case.status, case.track, case.level, case.reclassify = "opened", "", "general", ""
        case.organisation, case.worker = case.dong.centre, worker
        case.referrals, case.senders = {}, {}
        self.case_later(day, 2, 9, case, lambda d: self.assess(d, case))
