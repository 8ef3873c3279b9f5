"""Workloads for the benchmarks, built through the public Ledger API, and their references.

:func:`build_district` records a small synthetic district, the same for a seed (but for
the fresh ids the ledger gives households, cases and meetings):
households discovered through the usual channels (most never become cases), intake
consultations, consents, cases opened and assessed, monthly case meetings that select them,
classification, service plans, service links from public and private providers, service
checks, supervision, and some closures decided at a later meeting.

The references do the same work another way:

* *eventsourcing defaults*: an eventsourcing ``Application`` (JSON transcoder, no
  compression, no cache, its SQLite recorder) with its own ``Aggregate`` whose event
  classes carry the same fields as ours; :func:`mirror_into` copies a ledger's log into
  one, event for event;
* *raw sqlite3*: rows with the same columns as the stored events table and the same state
  bytes, written with plain ``sqlite3`` (WAL, ``synchronous=FULL``).
"""

from __future__ import annotations

import base64
import enum
import random
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from pydantic import BaseModel

from caseledger import Ledger

__all__ = [
    "AT",
    "RAW_TABLE",
    "SERVICES",
    "District",
    "EsApp",
    "EsCase",
    "build_district",
    "copy_log",
    "es_app",
    "es_synchronous",
    "mirror_into",
    "raw_connection",
]

KST = ZoneInfo("Asia/Seoul")
#: When the benchmarked commands happen: after everything the district recorded.
AT = datetime(2025, 6, 2, 10, tzinfo=KST)

_DONGS = ("중앙동", "생연1동", "생연2동", "보산동")
_DISTRICT = "동두천시"
_PRIVATE = (
    ("welfare-centre", "동두천종합사회복지관", "welfare_centre"),
    ("mental-health", "동두천시 정신건강복지센터", "mental_health_centre"),
    ("senior-centre", "동두천시 노인복지관", "senior_welfare_centre"),
    ("food-bank", "동두천 푸드뱅크", "food_bank"),
)
SERVICES = (
    ("긴급지원 생계비", "economy", "cash", "public"),
    ("긴급지원 의료비", "health", "cash", "public"),
    ("방문간호", "health", "service", "public"),
    ("밑반찬 배달", "daily_living", "in_kind", "private"),
    ("심리상담", "health", "counselling", "private"),
    ("주거환경 개선", "living_environment", "service", "private"),
    ("후원물품", "daily_living", "in_kind", "private"),
    ("노인맞춤돌봄", "social", "service", "private"),
)
_CHANNELS = ("blind_spot_system", "outreach_visit", "partner_referral", "self_application",
             "hotline_129", "safety_net")  # fmt: skip
_SUBDOMAINS = ("health.physical", "health.mental", "economy.income", "economy.debt",
               "social.isolation", "daily_living.self_care",
               "living_environment.housing")  # fmt: skip


@dataclass
class District:
    """What a benchmark needs to know about a recorded district."""

    cases: list[UUID] = field(default_factory=list)
    #: Active service links of open cases, as (case id, link id, provider code).
    links: list[tuple[UUID, UUID, str]] = field(default_factory=list)
    #: Open cases classified for service, which can take new service links.
    linkable: list[UUID] = field(default_factory=list)
    officers: dict[UUID, str] = field(default_factory=dict)
    providers: list[str] = field(default_factory=list)
    events: int = 0


def _dong_code(i: int) -> str:
    return f"dong-{i + 1}"


def _register(ledger: Ledger, district: District) -> None:
    at = datetime(2024, 1, 2, 9, tzinfo=KST)
    with ledger.batch():
        for i, dong in enumerate(_DONGS):
            ledger.register_organisation(_dong_code(i), name=f"{dong} 행정복지센터",
                                         sector="public", kind="dong_centre", dong=dong,
                                         district=_DISTRICT, at=at)  # fmt: skip
            ledger.register_worker(f"officer-{i + 1}", organisation=_dong_code(i),
                                   role="dong_officer", at=at)  # fmt: skip
            ledger.register_worker(f"lead-{i + 1}", organisation=_dong_code(i),
                                   role="supervisor", at=at)  # fmt: skip
        ledger.register_organisation("hope-team", name="동두천시 희망복지지원단",
                                     sector="public", kind="district_team",
                                     district=_DISTRICT, at=at)  # fmt: skip
        for code, name, kind in _PRIVATE:
            ledger.register_organisation(code, name=name, sector="private", kind=kind,
                                         district=_DISTRICT, at=at)  # fmt: skip
    district.providers = [_dong_code(0), "hope-team", *(p[0] for p in _PRIVATE)]


def build_district(ledger: Ledger, *, cases: int, seed: int = 7) -> District:
    """Record a district with about ``cases`` selected cases (roughly 13 events per case).

    Work is recorded a month at a time, one ``ledger.batch()`` per month, as an import
    of a month's records would be.
    """
    rng = random.Random(seed)
    district = District()
    _register(ledger, district)
    months = 12
    per_month = max(1, cases // months)
    start = datetime(2024, 1, 8, 10, tzinfo=KST)
    for month in range(months):
        month_start = start + timedelta(days=30 * month)
        count = per_month if month < months - 1 else cases - per_month * (months - 1)
        with ledger.batch():
            _record_month(ledger, district, rng, month_start, count)
    district.events = len(ledger)
    return district


def _record_month(
    ledger: Ledger, district: District, rng: random.Random, start: datetime, count: int
) -> None:
    by_dong: dict[int, list[UUID]] = {}
    for n in range(count):
        dong = rng.randrange(len(_DONGS))
        officer = f"officer-{dong + 1}"
        found = start + timedelta(days=rng.randrange(14), hours=rng.randrange(8))
        # Most discovered households never become cases (information only, referred out).
        for _ in range(2):
            other = ledger.discover_household(
                dong=_DONGS[dong], district=_DISTRICT, channel=rng.choice(_CHANNELS),
                by=officer, at=found,
                members=[{"member_no": 1, "birth_year": rng.randrange(1935, 2000)}],
            )  # fmt: skip
            ledger.record_consultation(other, method=rng.choice(("visit", "phone")),
                                       outcome=rng.choice(("information_only", "referred_out")),
                                       by=officer, at=found)  # fmt: skip
        household = ledger.discover_household(
            dong=_DONGS[dong], district=_DISTRICT, channel=rng.choice(_CHANNELS), by=officer,
            at=found, crisis_codes=["단전", "건강보험료 체납"][: rng.randrange(3)],
            members=[{"member_no": m + 1, "birth_year": rng.randrange(1935, 2015),
                      "personal": {"name": f"가구원{n}-{m}"}} for m in range(rng.randrange(1, 4))],
        )  # fmt: skip
        ledger.record_consultation(household, method="visit", outcome="intake", by=officer,
                                   at=found, problems=["health", "economy"],
                                   notes="초기상담: 생계 및 건강 문제 호소")  # fmt: skip
        # Services from private partners need the household's consent to share its data.
        ledger.grant_consent(household, scopes=["collect", "use", "provide"],
                             purpose="통합사례관리", by=officer, at=found)  # fmt: skip
        case = ledger.open_case(household, by=officer, at=found)
        ledger.assess_needs(case, by=officer, at=found + timedelta(days=3),
                            needs=[{"sub_domain": s, "urgency": rng.randrange(1, 6)}
                                   for s in rng.sample(_SUBDOMAINS, 2)],
                            risk={"instrument": "위기도", "instrument_version": "2022",
                                  "score": rng.randrange(5, 30), "level": "medium"})  # fmt: skip
        district.cases.append(case)
        district.officers[case] = officer
        by_dong.setdefault(dong, []).append(case)

    meeting_at = start + timedelta(days=20)
    for dong, agenda in by_dong.items():
        officer = f"officer-{dong + 1}"
        meeting = ledger.hold_meeting(
            kind="internal", host=_dong_code(dong), agenda=agenda,
            decisions=dict.fromkeys(agenda, "select"), by=f"lead-{dong + 1}", at=meeting_at,
            title=f"{meeting_at:%Y-%m} 내부사례회의",
        )  # fmt: skip
        for case in agenda:
            managed = rng.random() < 0.7
            ledger.classify(case, meeting=meeting,
                            track="case_managed" if managed else "linkage_only",
                            criteria_version="2024", by=officer, at=meeting_at,
                            rationale="복합 욕구" if managed else "단순 연계")  # fmt: skip
            chosen = rng.sample(SERVICES, rng.randrange(2, 4))
            if managed:
                ledger.agree_plan(case, by=officer, at=meeting_at + timedelta(days=1),
                                  services=[{"domain": d, "service": s, "provider":
                                             _provider(rng, sec), "sector": sec, "kind": k}
                                            for s, d, k, sec in chosen])  # fmt: skip
            for service, domain, kind, sector in chosen:
                provider = _provider(rng, sector)
                linked = ledger.link_service(
                    case, service=service, provider=provider, domain=domain, kind=kind,
                    amount=300000 if kind == "cash" else None, by=officer,
                    at=meeting_at + timedelta(days=2),
                )  # fmt: skip
                link_id: UUID = linked.link_id  # type: ignore[attr-defined]
                district.links.append((case, link_id, provider))
                ledger.check_service(case, link_id=link_id, method="phone",
                                     progress=rng.randrange(10, 60), by=officer,
                                     at=meeting_at + timedelta(days=16))  # fmt: skip
            if managed and rng.random() < 0.3:
                ledger.record_supervision(case, by=f"lead-{dong + 1}", notes="사례 슈퍼비전",
                                          at=meeting_at + timedelta(days=18))  # fmt: skip
            district.linkable.append(case)
        # A few cases are closed at the next month's meeting, their goals achieved.
        closing = [case for case in agenda if rng.random() < 0.15]
        if closing:
            closed_at = meeting_at + timedelta(days=28)
            review = ledger.hold_meeting(
                kind="internal", host=_dong_code(dong), agenda=closing,
                decisions=dict.fromkeys(closing, "close"), by=f"lead-{dong + 1}", at=closed_at,
            )  # fmt: skip
            for case in closing:
                ledger.close_case(case, meeting=review, reason="goal_achieved", by=officer,
                                  at=closed_at)  # fmt: skip
            gone = set(closing)
            district.linkable = [c for c in district.linkable if c not in gone]
            district.links = [link for link in district.links if link[0] not in gone]


def _provider(rng: random.Random, sector: str) -> str:
    if sector == "public":
        return rng.choice((_dong_code(0), "hope-team"))
    return rng.choice([p[0] for p in _PRIVATE])


# ---------------------------------------------------------------------------
# eventsourcing with its defaults


class EsCase(Aggregate):
    """A case in eventsourcing's own style: an ``Aggregate`` with ``@event`` methods.

    ``record`` mirrors any of our events as (kind, payload); the two commands the
    benchmarks time have their own event classes with the same fields as ours.
    """

    def __init__(self, kind: str, payload: dict[str, Any]) -> None:
        self.links: set[UUID] = set()
        self.household_id: UUID | None = payload.get("household_id")
        self.count = 1

    @event("Recorded")
    def record(self, kind: str, payload: dict[str, Any]) -> None:
        self.count += 1
        if kind == "ServiceLinked":
            self.links.add(payload["link_id"])

    @event("ServiceChecked")
    def check_service(
        self,
        link_id: UUID,
        method: str,
        progress: int,
        decision: str,
        personal: dict[str, Any] | None,
        occurred_at: datetime,
        recorded_at: datetime,
        actor: str,
        organisation: str,
        policy_version: str,
        taxonomy_version: str,
        household_id: UUID,
    ) -> None:
        self.count += 1

    @event("ServiceLinked")
    def link_service(
        self,
        link_id: UUID,
        domain: str,
        service: str,
        provider: str,
        sector: str,
        kind: str,
        amount: Any,
        referral_id: UUID | None,
        meeting_id: UUID | None,
        occurred_at: datetime,
        recorded_at: datetime,
        actor: str,
        organisation: str,
        policy_version: str,
        taxonomy_version: str,
        household_id: UUID,
    ) -> None:
        self.links.add(link_id)
        self.count += 1


class EsApp(Application[UUID]):
    """An eventsourcing application with every default left as it is."""


def es_app(path: Path) -> EsApp:
    """An eventsourcing application on an SQLite file (its defaults otherwise)."""
    return EsApp(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})


def es_synchronous(app: EsApp) -> int:
    """The ``PRAGMA synchronous`` of the application's SQLite connections (2 is FULL)."""
    with app.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
        cursor.execute("PRAGMA synchronous")
        return int(cursor.fetchone()[0])


def _plain(value: Any) -> Any:
    """A value eventsourcing's default JSON transcoder takes (UUID, datetime, Decimal stay)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, BaseModel):
        return _plain(value.model_dump())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


_NOT_FIELDS = ("originator_id", "originator_version", "redaction")


def payload_of(e: Any) -> dict[str, Any]:
    """An event's fields (all but its id and version) for the eventsourcing mirror."""
    return {
        name: _plain(getattr(e, name)) for name in type(e).model_fields if name not in _NOT_FIELDS
    }


def _mirrored_payload(e: Any) -> dict[str, Any]:
    payload = payload_of(e)
    redaction = getattr(e, "redaction", None)
    if redaction is not None:
        # Read without the key, personal fields are None; carry their sealed bytes instead,
        # so the mirrored rows hold as much as ours.
        payload["sealed"] = [base64.b64encode(b).decode("ascii") for b in redaction.sealed]
    return payload


def mirror_into(app: EsApp, ledger: Ledger, chunk: int = 2000) -> dict[UUID, UUID]:
    """Copy the ledger's log into ``app`` event for event; returns our id -> its id.

    Aggregates are saved ``chunk`` events at a time, in log order. They stay in memory
    between saves (an aggregate holds a few fields), so copying a long log never
    replays one from the store.
    """
    ids: dict[UUID, UUID] = {}
    live: dict[UUID, EsCase] = {}
    pending: dict[UUID, EsCase] = {}
    for count, entry in enumerate(ledger.events(), start=1):
        e = entry.event
        payload = _mirrored_payload(e)
        kind = type(e).__name__
        found = live.get(e.originator_id)
        if found is None:
            found = EsCase(kind, payload)
            ids[e.originator_id] = found.id
            live[e.originator_id] = found
        else:
            found.record(kind, payload)
        pending[e.originator_id] = found
        if count % chunk == 0:
            app.save(*pending.values())
            pending.clear()
    if pending:
        app.save(*pending.values())
    return ids


# ---------------------------------------------------------------------------
# raw sqlite3

#: The same columns as the stored events table of eventsourcing's SQLite recorder.
RAW_TABLE = (
    "CREATE TABLE IF NOT EXISTS stored_events (originator_id TEXT, originator_version INTEGER, "
    "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
)


def raw_connection(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection: WAL, ``synchronous=FULL``, explicit transactions."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(RAW_TABLE)
    return conn


def copy_log(ledger: Ledger, conn: sqlite3.Connection) -> int:
    """Copy the ledger's stored records into a raw table; returns how many."""
    rows = [
        (n.originator_id.hex if isinstance(n.originator_id, UUID) else str(n.originator_id),
         n.originator_version, n.topic, n.state)
        for n in ledger.records()
    ]  # fmt: skip
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO stored_events VALUES (?,?,?,?)", rows)
    conn.execute("COMMIT")
    return len(rows)
