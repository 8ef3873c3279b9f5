"""Monitoring KPIs: what district monitoring looks at, per area and period, side by side.

Seed 002 (Uijeongbu) checked four areas per dong on last year's data: new case
discovery, case meetings held, service linkage and service checks. The report
answers them, and the rest of the domain guide's list, per dong, district,
organisation or worker and per year, quarter or month, with the previous period of
the same length beside it.

Every countable event becomes a *fact* (``caseledger_kpi_fact``): its kind, when it
occurred and was recorded, where (the household's or case's dong and district at
the time, or the meeting host's), who recorded it and for which organisation, and a
category or two. Counts are queries over facts by ``occurred_at``; ``as_of`` and
``as_of_recorded`` are filters on the same rows. Open caseload, durations and cases
overdue for a check are states at the end of the period, read from the caseload's
versions.

Metric names (figures are listed per group):

* ``discoveries`` (``.channel.<channel>``), ``consultations`` (``.outcome.<outcome>``),
  ``cases_opened``, ``assessments``, ``reassessments``, ``supervisions``;
* ``selections`` (case-managed and linkage-only; ``.<track>.<level>``), ``not_selected``;
* ``meetings`` (``.kind.<kind>``), ``meetings.cases_discussed``, ``meetings.decision.<decision>``
  (meetings are counted for their host organisation and its dong/district);
* ``service_links`` (``.sector.<sector>``, ``.provider.<code>``), ``referrals_sent``,
  ``referrals_accepted``, ``referrals_rejected``, ``referrals_completed``, ``referrals_revoked``;
* ``service_checks`` (``.decision.<decision>``), ``overdue_checks`` (cases in service at the
  period's end whose monthly check is overdue);
* ``intake_to_plan.count``, ``intake_to_plan.median_days``, ``intake_to_plan.share_on_time``
  (first plan after intake, within ``Deadlines.plan_days``);
* ``closures`` (``.reason.<reason>``, ``.duration.<days>``), ``follow_ups``, ``reopened``,
  ``transfers``;
* ``open_caseload`` (``.stage.<stage>``, ``.duration.<days>``, ``.workers.<bucket>``: how many
  workers carry 0–9, 10–19, 20–29 or 30+ open cases of the group).

Counts are attributed to the acting worker and their organisation; states (open
caseload, overdue checks) to the assigned worker and the case's organisation.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from typing import Any, ClassVar

from caseledger.errors import InvalidInput
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
from caseledger.projections.base import (
    Item,
    Projection,
    Schema,
    chunks,
    fetch,
    from_ts,
    local_date,
    placeholders,
    ts,
)
from caseledger.projections.caseload import _Dues, bucket_of, open_states_at
from caseledger.projections.directory import organisation_places
from caseledger.projections.due import Deadlines
from caseledger.projections.periods import Period
from caseledger.store import Tx

__all__ = ["BY", "KpiFigure", "KpiReport", "Kpis", "kpi_query"]

#: What a report can be broken down by.
BY = ("dong", "district", "organisation", "worker")

_FACT = "caseledger_kpi_fact"
_HOUSEHOLD = "caseledger_kpi_household"
_CASE = "caseledger_kpi_case"

_IGNORED: frozenset[type[Event]] = frozenset(
    {OrganisationRegistered, WorkerRegistered, ConsentGranted, ConsentWithdrawn, HouseholdErased}
)
_HANDLED: frozenset[type[Event]] = frozenset(
    {
        HouseholdDiscovered, ConsultationRecorded, CaseOpened, NeedsAssessed, CaseMeetingHeld,
        CaseClassified, ServicePlanAgreed, ServiceLinked, ReferralSent, ReferralAccepted,
        ReferralRejected, ReferralCompleted, ReferralRevoked, ServiceChecked, NeedsReassessed,
        SupervisionRecorded, CaseClosed, FollowUpConducted, CaseReopened, CaseTransferred,
    }
)  # fmt: skip
_SIMPLE_CASE_FACTS: dict[type[Event], str] = {
    NeedsAssessed: "assessment",
    NeedsReassessed: "reassessment",
    SupervisionRecorded: "supervision",
    ReferralAccepted: "referral_accepted",
    ReferralRejected: "referral_rejected",
    ReferralCompleted: "referral_completed",
    ReferralRevoked: "referral_revoked",
    FollowUpConducted: "follow_up",
}

#: Metrics every group reports, zero when nothing happened.
BASE_METRICS = (
    "discoveries",
    "consultations",
    "cases_opened",
    "selections",
    "not_selected",
    "meetings",
    "meetings.cases_discussed",
    "service_links",
    "referrals_sent",
    "referrals_accepted",
    "referrals_rejected",
    "service_checks",
    "overdue_checks",
    "intake_to_plan.count",
    "intake_to_plan.median_days",
    "intake_to_plan.share_on_time",
    "closures",
    "open_caseload",
)
_COUNTS = {
    "assessment": "assessments",
    "reassessment": "reassessments",
    "supervision": "supervisions",
    "follow_up": "follow_ups",
    "transfer": "transfers",
    "reopened": "reopened",
    "referral_sent": "referrals_sent",
    "referral_accepted": "referrals_accepted",
    "referral_rejected": "referrals_rejected",
    "referral_completed": "referrals_completed",
    "referral_revoked": "referrals_revoked",
}
_RATES = frozenset({"intake_to_plan.median_days", "intake_to_plan.share_on_time"})


def _duration_bucket(days: int) -> str:
    if days <= 90:
        return "0-90d"
    if days <= 180:
        return "91-180d"
    if days <= 365:
        return "181-365d"
    return "366d+"


class Kpis(Projection):
    """Countable facts of the monitoring areas, with where, who and when."""

    name: ClassVar[str] = "kpis"
    version: ClassVar[int] = 1
    handles: ClassVar[frozenset[type[Event]]] = _HANDLED
    # Registrations, consents and erasure are not monitored activity.
    ignores: ClassVar[frozenset[type[Event]]] = _IGNORED
    tables: ClassVar[tuple[str, ...]] = (_FACT, _HOUSEHOLD, _CASE)

    def __init__(self, schema: Schema) -> None:
        super().__init__(schema)
        s = schema
        self._insert_fact = (
            f"INSERT INTO {s.t(_FACT)} (position, item, kind, occurred_at, recorded_at, dong, "
            "district, organisation, worker, case_id, a, b, n, since) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        )
        self._upsert_household = (
            f"INSERT INTO {s.t(_HOUSEHOLD)} (household_id, dong, district) VALUES (?,?,?) "
            "ON CONFLICT (household_id) DO UPDATE SET dong = excluded.dong, "
            "district = excluded.district"
        )
        self._upsert_case = (
            f"INSERT INTO {s.t(_CASE)} (case_id, dong, district, intake_at, planned) "
            "VALUES (?,?,?,?,?) ON CONFLICT (case_id) DO UPDATE SET dong = excluded.dong, "
            "district = excluded.district, intake_at = excluded.intake_at, "
            "planned = excluded.planned"
        )

    def create_statements(self) -> list[str]:
        s = self.schema
        return [
            f"CREATE TABLE IF NOT EXISTS {s.t(_FACT)} ("
            f"position BIGINT NOT NULL, item INTEGER NOT NULL, kind TEXT NOT NULL, "
            f"occurred_at {s.time} NOT NULL, recorded_at {s.time} NOT NULL, dong TEXT, "
            f"district TEXT, organisation {s.text}, worker {s.text}, case_id {s.text}, "
            f"a TEXT, b TEXT, n INTEGER, since {s.time}, PRIMARY KEY (position, item))",
            f"CREATE INDEX IF NOT EXISTS caseledger_kpi_fact_occurred ON {s.t(_FACT)} "
            "(occurred_at)",
            f"CREATE TABLE IF NOT EXISTS {s.t(_HOUSEHOLD)} ("
            f"household_id {s.text} PRIMARY KEY, dong TEXT NOT NULL, district TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {s.t(_CASE)} ("
            f"case_id {s.text} PRIMARY KEY, dong TEXT NOT NULL, district TEXT NOT NULL, "
            f"intake_at {s.time} NOT NULL, planned INTEGER NOT NULL)",
        ]

    def apply(self, tx: Tx, items: Sequence[Item]) -> None:
        households, cases = self._load(tx, items)
        stored = {cid: tuple(state) for cid, state in cases.items()}
        hosts = organisation_places(
            tx, self.schema.prefix, [i.fields["host"] for i in items if i.cls is CaseMeetingHeld]
        )
        facts: list[tuple[Any, ...]] = []
        touched_households: set[str] = set()
        touched_cases: set[str] = set()
        append = facts.append
        for item in items:
            cls = item.cls
            if cls not in _HANDLED:
                continue
            f = item.fields
            subject = item.subject
            position = item.position
            occurred = item.occurred
            recorded = item.recorded
            if cls is HouseholdDiscovered:
                households[subject] = (f["dong"], f["district"])
                touched_households.add(subject)
                append(
                    (position, 0, "discovery", occurred, recorded, f["dong"], f["district"],
                     f["organisation"], f["actor"], None, str(f["channel"]), None, None, None)
                )  # fmt: skip
                continue
            if cls is ConsultationRecorded:
                dong, district = households[subject]
                append(
                    (position, 0, "consultation", occurred, recorded, dong, district,
                     f["organisation"], f["actor"], None, str(f["method"]), str(f["outcome"]),
                     None, None)
                )  # fmt: skip
                continue
            if cls is CaseMeetingHeld:
                host = f["host"]
                host_dong, host_district = hosts.get(host, (None, None))
                actor = f["actor"]
                agenda = f["agenda"]
                append(
                    (position, 0, "meeting", occurred, recorded, host_dong, host_district, host,
                     actor, None, str(f["kind"]), None, len(agenda), None)
                )  # fmt: skip
                for n, entry in enumerate(agenda, start=1):
                    if entry.get("decision") is not None:
                        append(
                            (position, n, "meeting_decision", occurred, recorded, host_dong,
                             host_district, host, actor, str(entry["case_id"]),
                             str(entry["decision"]), None, None, None)
                        )  # fmt: skip
                continue
            # Case events: the case's dong and district as they stand at this event.
            if cls is CaseOpened:
                cases[subject] = [f["dong"], f["district"], occurred, 0]
            state = cases[subject]
            touched_cases.add(subject)
            kind: str
            a = b = since = None
            if cls is ServiceLinked:
                kind, a, b = "service_link", str(f["sector"]), f["provider"]
            elif cls is ServiceChecked:
                kind, a, b = "service_check", str(f["decision"]), str(f["method"])
            elif cls is CaseOpened:
                kind = "case_opened"
            elif cls is CaseClassified:
                kind, a, b = "selection", str(f["track"]), str(f["level"])
            elif cls is ServicePlanAgreed:
                kind = "plan"
                if not state[3]:
                    since = state[2]
                    state[3] = 1
            elif cls is ReferralSent:
                kind, a = "referral_sent", f["to_organisation"]
            elif cls is CaseClosed:
                kind, a, since = "closure", str(f["reason"]), state[2]
            elif cls is CaseReopened:
                kind = "reopened"
                state[2], state[3] = occurred, 0
            elif cls is CaseTransferred:
                kind = "transfer"
                state[0], state[1] = f["to_dong"], f["to_district"]
            else:
                kind = _SIMPLE_CASE_FACTS[cls]
            append(
                (position, 0, kind, occurred, recorded, state[0], state[1], f["organisation"],
                 f["actor"], subject, a, b, None, since)
            )  # fmt: skip
        tx.executemany(self._insert_fact, facts)
        tx.executemany(
            self._upsert_household, [(h, *households[h]) for h in sorted(touched_households)]
        )
        # A case whose row would not change (most events: links, checks) is not written.
        tx.executemany(
            self._upsert_case,
            [(c, *cases[c]) for c in sorted(touched_cases) if stored.get(c) != tuple(cases[c])],
        )

    def _reads(
        self, items: Sequence[Item]
    ) -> tuple[list[tuple[str, Sequence[str]]], list[tuple[str, Sequence[str]]]]:
        """The reads of the households' and the cases' places these items need."""
        want_households = set()
        want_cases = set()
        for item in items:
            if item.cls is ConsultationRecorded:
                want_households.add(item.subject)
            elif "household_id" in item.fields and item.cls is not CaseOpened:
                want_cases.add(item.subject)
        s = self.schema
        households = [
            (
                f"SELECT household_id, dong, district FROM {s.t(_HOUSEHOLD)} "
                f"WHERE household_id IN ({placeholders(len(part))})",
                part,
            )
            for part in chunks(sorted(want_households))
        ]
        cases = [
            (
                f"SELECT case_id, dong, district, intake_at, planned FROM {s.t(_CASE)} "
                f"WHERE case_id IN ({placeholders(len(part))})",
                part,
            )
            for part in chunks(sorted(want_cases))
        ]
        return households, cases

    def prefetch(self, tx: Tx, items: Sequence[Item]) -> None:
        households, cases = self._reads(items)
        for sql, params in (*households, *cases):
            tx.prefetch(sql, params)

    def _load(
        self, tx: Tx, items: Sequence[Item]
    ) -> tuple[dict[str, tuple[str, str]], dict[str, list[Any]]]:
        household_reads, case_reads = self._reads(items)
        households: dict[str, tuple[str, str]] = {}
        cases: dict[str, list[Any]] = {}
        for sql, params in household_reads:
            tx.execute(sql, params)
            for hid, dong, district in fetch(tx):
                households[hid] = (dong, district)
        for sql, params in case_reads:
            tx.execute(sql, params)
            for cid, dong, district, intake, planned in fetch(tx):
                cases[cid] = [dong, district, intake, planned]
        return households, cases


# ---------------------------------------------------------------------------
# The report


Number = int | float


@dataclass(frozen=True)
class KpiFigure:
    """One metric of one group: this period's value, the previous period's, and the change.

    ``group`` is the dong, district, organisation or worker the figure is about
    (None for the whole ledger, or for facts that have no such attribute).
    """

    group: str | None
    metric: str
    value: Number | None
    previous: Number | None
    change: Number | None


@dataclass(frozen=True)
class KpiReport:
    """Monitoring figures for a period, with the previous period side by side."""

    period: str
    previous_period: str | None
    by: str | None
    figures: tuple[KpiFigure, ...]

    def groups(self) -> list[str | None]:
        """The groups reported, in order."""
        return list(dict.fromkeys(f.group for f in self.figures))

    def figure(self, metric: str, group: str | None = None) -> KpiFigure:
        """The figure of ``metric`` for ``group`` (zero when nothing was counted)."""
        for f in self.figures:
            if f.metric == metric and f.group == group:
                return f
        zero = None if metric in _RATES else 0
        return KpiFigure(group, metric, zero, zero if self.previous_period else None, None)

    def value(self, metric: str, group: str | None = None) -> Number | None:
        """This period's value of ``metric`` for ``group``."""
        return self.figure(metric, group).value

    def previous(self, metric: str, group: str | None = None) -> Number | None:
        """The previous period's value of ``metric`` for ``group``."""
        return self.figure(metric, group).previous


def _measure(
    tx: Tx,
    schema: Schema,
    *,
    period: Period,
    by: str | None,
    filters: dict[str, str | None],
    as_of: str | None,
    as_of_recorded: str | None,
    tz: tzinfo,
    deadlines: Deadlines,
) -> dict[str | None, dict[str, Number | None]]:
    start, end = period.bounds(tz)
    out: dict[str | None, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    where = ["occurred_at >= ?", "occurred_at < ?"]
    params: list[Any] = [start, end]
    if as_of is not None:
        where.append("occurred_at <= ?")
        params.append(as_of)
    if as_of_recorded is not None:
        where.append("recorded_at <= ?")
        params.append(as_of_recorded)
    for column, value in filters.items():
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    clause = " AND ".join(where)
    group = f"{by}, " if by else ""
    tx.execute(
        f"SELECT {group}kind, a, b, COUNT(*), SUM(n) FROM {schema.t(_FACT)} "
        f"WHERE {clause} GROUP BY {group}kind, a, b",
        params,
    )
    for row in fetch(tx):
        key = row[0] if by else None
        kind, a, b, count, total = row[-5:]
        m = out[key]
        if kind == "discovery":
            m["discoveries"] += count
            m[f"discoveries.channel.{a}"] += count
        elif kind == "consultation":
            m["consultations"] += count
            m[f"consultations.outcome.{b}"] += count
        elif kind == "case_opened":
            m["cases_opened"] += count
        elif kind == "selection":
            if a == "not_selected":
                m["not_selected"] += count
            else:
                m["selections"] += count
                m[f"selections.{a}.{b}"] += count
        elif kind == "meeting":
            m["meetings"] += count
            m[f"meetings.kind.{a}"] += count
            m["meetings.cases_discussed"] += total or 0
        elif kind == "meeting_decision":
            m[f"meetings.decision.{a}"] += count
        elif kind == "service_link":
            m["service_links"] += count
            m[f"service_links.sector.{a}"] += count
            m[f"service_links.provider.{b}"] += count
        elif kind == "service_check":
            m["service_checks"] += count
            m[f"service_checks.decision.{a}"] += count
        elif kind == "closure":
            m["closures"] += count
            m[f"closures.reason.{a}"] += count
        elif kind == "plan":
            m["plans"] += count
        else:
            m[_COUNTS[kind]] += count
    tx.execute(
        f"SELECT {group}kind, occurred_at, since FROM {schema.t(_FACT)} "
        f"WHERE {clause} AND kind IN ('plan', 'closure') AND since IS NOT NULL",
        params,
    )
    plan_days: dict[str | None, list[int]] = defaultdict(list)
    for row in fetch(tx):
        key = row[0] if by else None
        kind, occurred, since = row[-3:]
        days = (local_date(occurred, tz) - local_date(since, tz)).days
        if kind == "plan":
            plan_days[key].append(days)
        else:
            out[key][f"closures.duration.{_duration_bucket(days)}"] += 1
    for key, days_list in plan_days.items():
        m = out[key]
        m["intake_to_plan.count"] = len(days_list)
        m["intake_to_plan.median_days"] = statistics.median(days_list)
        on_time = sum(1 for d in days_list if d <= deadlines.plan_days)
        m["intake_to_plan.share_on_time"] = on_time / len(days_list)

    # States at the end of the period (or at as_of, if that is earlier).
    moment = ts(from_ts(end) - timedelta(microseconds=1))
    if as_of is not None and as_of < moment:
        moment = as_of
    day = local_date(moment, tz)
    found = open_states_at(
        tx,
        schema,
        as_of=moment,
        as_of_recorded=as_of_recorded,
        filters=filters,
        include_closed=False,
    )

    per_worker: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    dues = _Dues(tz, deadlines)
    for f in found:
        s = f.state
        key = getattr(s, by) if by else None
        m = out[key]
        m["open_caseload"] += 1
        m[f"open_caseload.stage.{s.stage}"] += 1
        age = (day - local_date(s.intake_at, tz)).days
        m[f"open_caseload.duration.{_duration_bucket(age)}"] += 1
        per_worker[key][s.worker] += 1
        for kind, due_on in dues(f):
            if kind == "service_check" and due_on < day:
                m["overdue_checks"] += 1
    for key, workers in per_worker.items():
        for count in workers.values():
            out[key][f"open_caseload.workers.{bucket_of(count)}"] += 1
    result: dict[str | None, dict[str, Number | None]] = {}
    for key, metrics in out.items():
        figures: dict[str, Number | None] = dict.fromkeys(BASE_METRICS, 0)
        figures["intake_to_plan.median_days"] = None
        figures["intake_to_plan.share_on_time"] = None
        figures.update(metrics)
        result[key] = figures
    return result


def _sort_key(group: str | None) -> tuple[int, str]:
    return (1, "") if group is None else (0, group)


def _metric_order(metric: str) -> tuple[int, str]:
    base = BASE_METRICS.index(metric) if metric in BASE_METRICS else None
    if base is not None:
        return (base * 2, "")
    root = next((i for i, m in enumerate(BASE_METRICS) if metric.startswith(m + ".")), None)
    if root is None:
        return (len(BASE_METRICS) * 2, metric)
    return (root * 2 + 1, metric)


def kpi_query(
    tx: Tx,
    schema: Schema,
    period: str | Period,
    *,
    by: str | None = None,
    compare_previous: bool = True,
    dong: str | None = None,
    district: str | None = None,
    organisation: str | None = None,
    worker: str | None = None,
    as_of: str | None = None,
    as_of_recorded: str | None = None,
    tz: tzinfo,
    deadlines: Deadlines,
) -> KpiReport:
    """The monitoring report for ``period`` (see the module docstring for the metrics)."""
    if by is not None and by not in BY:
        msg = f"by: {by!r} is not one of {', '.join(BY)}"
        raise InvalidInput(msg, [("by", "unknown breakdown")])
    current = period if isinstance(period, Period) else Period.parse(period)
    filters = {"dong": dong, "district": district, "organisation": organisation, "worker": worker}
    kwargs: dict[str, Any] = {
        "by": by,
        "filters": filters,
        "as_of": as_of,
        "as_of_recorded": as_of_recorded,
        "tz": tz,
        "deadlines": deadlines,
    }
    now = _measure(tx, schema, period=current, **kwargs)
    before: dict[str | None, dict[str, Number | None]] = {}
    previous = current.previous() if compare_previous else None
    if previous is not None:
        before = _measure(tx, schema, period=previous, **kwargs)
    figures = []
    for key in sorted(set(now) | set(before), key=_sort_key):
        mine = now.get(key, {})
        theirs = before.get(key, {})
        for metric in sorted(set(mine) | set(theirs), key=_metric_order):
            value = mine.get(metric, None if metric in _RATES else 0)
            prior = theirs.get(metric, None if metric in _RATES else 0) if previous else None
            if metric not in BASE_METRICS and not value and not prior:
                continue
            change = value - prior if value is not None and prior is not None else None
            figures.append(KpiFigure(key, metric, value, prior, change))
    return KpiReport(str(current), str(previous) if previous else None, by, tuple(figures))
