"""The columns of the exported tables: names, types, meaning, and how each is protected.

Exported tables are a public contract, as the events are: add columns freely, never
rename one. Every column is declared here once, with its type and a ``protect`` tag
that says what de-identification (:mod:`caseledger.export.deidentify`) does to it:

``id``
    an identifier (a UUID): replaced by a keyed pseudonym;
``ids``
    a ``;``-separated list of identifiers: each replaced by its pseudonym;
``event_id``
    ``<aggregate id>:<version>``: the aggregate id replaced by its pseudonym;
``worker``
    a worker's code: left out of de-identified exports;
``free_text``
    text a worker typed (a rationale, a purpose, a reason, a service's name): left out
    of de-identified exports, since nothing stops it from naming a person;
``time``
    a point in time: kept, or cut to its month when dates are coarsened;
``""``
    structural (codes, categories, counts, dong and district): kept as is.

Personal fields (``personal``, the members' ``personal``) are never columns at all:
exports read the stored records without keys, so those fields are sealed and unread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CASE_COLUMNS",
    "EVENT_COLUMNS",
    "KPI_COLUMNS",
    "Column",
    "ColumnType",
    "Protection",
    "columns_of",
]

#: The type of a column's values (mapped to Arrow types by :mod:`caseledger.export.tables`).
ColumnType = Literal["string", "int", "float", "bool", "time", "date", "decimal"]
#: What de-identification does to a column (see the module docstring).
Protection = Literal["", "id", "ids", "event_id", "worker", "free_text", "time"]


@dataclass(frozen=True)
class Column:
    """One column of an exported table."""

    name: str
    type: ColumnType
    doc: str
    protect: Protection = ""

    @property
    def dropped_when_deidentified(self) -> bool:
        """Whether de-identified exports leave this column out."""
        return self.protect in ("worker", "free_text")


def _c(name: str, type_: ColumnType, doc: str, protect: Protection = "") -> Column:
    if type_ in ("time", "date") and not protect:
        protect = "time"
    return Column(name, type_, doc, protect)


#: One row per event, in log order.
EVENT_COLUMNS: tuple[Column, ...] = (
    # -- what and when
    _c("position", "int", "log position (1, 2, 3, …): the order the ledger recorded events in"),
    _c("event_id", "string", "event id: aggregate id and version, `<id>:<n>`", "event_id"),
    _c("event_type", "string", "event class, e.g. `CaseOpened` (see docs/events.md)"),
    _c("aggregate_kind", "string", "household, case, meeting, organisation or worker"),
    _c("aggregate_id", "string", "the household, case, meeting, organisation or worker", "id"),
    _c("aggregate_version", "int", "the event's position within its aggregate (1, 2, …)"),
    _c("household_id", "string", "the household (household and case events)", "id"),
    _c("case_id", "string", "the case (case events)", "id"),
    _c("occurred_at", "time", "when it happened in the world (UTC)"),
    _c("recorded_at", "time", "when the ledger recorded it (UTC)"),
    # -- where and who
    _c(
        "dong",
        "string",
        "dong of the household or case (after this event), or of the meeting host or organisation",
    ),
    _c("district", "string", "district (시군구), as for dong"),
    _c("organisation", "string", "code of the organisation the actor acted for"),
    _c("organisation_sector", "string", "public or private: sector of that organisation"),
    _c(
        "actor",
        "string",
        "code of the worker who recorded it (`system` for registrations)",
        "worker",
    ),
    _c("actor_role", "string", "that worker's role (dong_officer, case_manager, …)"),
    _c("policy_version", "string", "authority policy in force when recorded"),
    _c("taxonomy_version", "string", "vocabulary version the codes belong to"),
    # -- registration
    _c("registered_organisation", "string", "OrganisationRegistered: its code"),
    _c("organisation_name", "string", "OrganisationRegistered: its name"),
    _c("organisation_kind", "string", "OrganisationRegistered: dong_centre, district_team, …"),
    _c("registered_worker", "string", "WorkerRegistered: the worker's code", "worker"),
    _c("worker_organisation", "string", "WorkerRegistered: the worker's organisation"),
    _c("worker_role", "string", "WorkerRegistered: the worker's role"),
    # -- households
    _c("channel", "string", "HouseholdDiscovered: discovery channel (발굴 경로)"),
    _c("crisis_codes", "string", "HouseholdDiscovered: blind-spot crisis codes, `;`-separated"),
    _c("blind_spot_batch", "string", "HouseholdDiscovered: blind-spot system batch (2022-02)"),
    _c("referred_by", "string", "HouseholdDiscovered: referring organisation"),
    _c("member_count", "int", "HouseholdDiscovered: household members recorded"),
    _c("method", "string", "consultation, service check or follow-up method"),
    _c("outcome", "string", "ConsultationRecorded: intake, information_only, referred_out"),
    _c("problems", "string", "ConsultationRecorded: presenting problems (need domains)"),
    _c("consent_id", "string", "ConsentGranted / ConsentWithdrawn: the consent", "id"),
    _c("member_no", "int", "ConsentGranted: the consenting member (1 = head)"),
    _c("consent_scopes", "string", "ConsentGranted: collect, use, provide; `;`-separated"),
    _c("consent_recipients", "string", "ConsentGranted: recipient organisations (empty: any)"),
    _c("consent_expires_at", "time", "ConsentGranted: when it expires"),
    _c("purpose", "string", "ConsentGranted / ReferralSent: purpose as written", "free_text"),
    _c(
        "reason_text",
        "string",
        "reason as written (erasure, referral rejection or revocation, reopening)",
        "free_text",
    ),
    # -- cases
    _c("case_organisation", "string", "CaseOpened: organisation holding the case"),
    _c("worker", "string", "CaseOpened / CaseReopened: assigned worker", "worker"),
    _c("discovered_at", "time", "CaseOpened: when the household was discovered"),
    _c("needs", "string", "assessment: rated sub-domains, `sub_domain:urgency;…`"),
    _c("need_count", "int", "assessment: number of rated needs"),
    _c("max_urgency", "int", "assessment: highest urgency (1–5)"),
    _c("risk_instrument", "string", "assessment: crisis risk instrument"),
    _c("risk_instrument_version", "string", "assessment: its version"),
    _c("risk_score", "float", "assessment: risk score"),
    _c("risk_level", "string", "assessment: risk level"),
    _c("meeting_id", "string", "the case meeting (held, or deciding this)", "id"),
    _c("track", "string", "CaseClassified: case_managed, linkage_only, not_selected"),
    _c("level", "string", "CaseClassified: general or complex"),
    _c("criteria_version", "string", "CaseClassified: selection criteria version"),
    _c("rationale", "string", "CaseClassified: rationale as written", "free_text"),
    _c("plan_revision", "int", "ServicePlanAgreed: plan revision (1 = first plan)"),
    _c("goal_count", "int", "ServicePlanAgreed: number of goals"),
    _c("service_count", "int", "ServicePlanAgreed: planned services"),
    _c("plan_public_services", "int", "ServicePlanAgreed: planned services of the public sector"),
    _c("plan_private_services", "int", "ServicePlanAgreed: planned services of the private sector"),
    _c("plan_domains", "string", "ServicePlanAgreed: need domains planned for, `;`-separated"),
    _c("agreed_on", "date", "ServicePlanAgreed: day the client agreed"),
    _c("link_id", "string", "ServiceLinked / ServiceChecked: the service link", "id"),
    _c("need_domain", "string", "ServiceLinked / ReferralSent: need domain"),
    _c("service", "string", "ServiceLinked: the service's name as written", "free_text"),
    _c("provider", "string", "ServiceLinked: providing organisation"),
    _c(
        "sector",
        "string",
        "ServiceLinked: the service's sector; OrganisationRegistered: its sector",
    ),
    _c("service_kind", "string", "ServiceLinked: cash, in_kind, service, counselling"),
    _c("amount", "decimal", "ServiceLinked: amount (won), four decimal places"),
    _c("referral_id", "string", "referral events, ServiceLinked: the referral", "id"),
    _c("to_organisation", "string", "ReferralSent / CaseTransferred: receiving organisation"),
    _c("progress", "int", "ServiceChecked: percent toward the plan's goals"),
    _c("check_decision", "string", "ServiceChecked: continue, adjust, stop"),
    _c("closure_reason", "string", "CaseClosed: closure reason (종결 사유)"),
    _c("recommend_reopen", "bool", "FollowUpConducted: recommends reopening"),
    _c("to_worker", "string", "CaseTransferred: receiving worker", "worker"),
    _c("to_dong", "string", "CaseTransferred: receiving dong"),
    _c("to_district", "string", "CaseTransferred: receiving district"),
    # -- meetings
    _c("meeting_kind", "string", "CaseMeetingHeld: internal, integrated, expert"),
    _c("host", "string", "CaseMeetingHeld: host organisation"),
    _c("title", "string", "CaseMeetingHeld: title as written", "free_text"),
    _c("attendee_count", "int", "CaseMeetingHeld: attending organisations"),
    _c("attendee_organisations", "string", "CaseMeetingHeld: attending organisations, `;`-sep."),
    _c("agenda_count", "int", "CaseMeetingHeld: cases on the agenda"),
    _c("agenda_case_ids", "string", "CaseMeetingHeld: cases on the agenda, `;`-separated", "ids"),
    _c("agenda_decisions", "string", "CaseMeetingHeld: decision per agenda case (`-`: none)"),
)

#: One row per case: its state at the end of the export's window.
CASE_COLUMNS: tuple[Column, ...] = (
    _c("case_id", "string", "the case", "id"),
    _c("household_id", "string", "its household", "id"),
    _c("dong", "string", "dong holding the case (after transfers)"),
    _c("district", "string", "district holding the case"),
    _c("organisation", "string", "organisation holding the case"),
    _c("worker", "string", "assigned worker", "worker"),
    _c("stage", "string", "stage: opened, assessed, selected, planned, in_service, linked, …"),
    _c("track", "string", "track of the latest classification"),
    _c("level", "string", "level of the latest classification"),
    _c("discovered_at", "time", "household discovered"),
    _c("opened_at", "time", "first intake (접수)"),
    _c("intake_at", "time", "latest intake: the opening, or the latest reopening"),
    _c("assessed_at", "time", "first needs assessment since the latest intake"),
    _c("classified_at", "time", "latest classification since the latest intake"),
    _c("plan_agreed_at", "time", "first service plan since the latest intake"),
    _c("first_linked_at", "time", "first service link since the latest intake"),
    _c("closed_at", "time", "closure, if closed"),
    _c("closure_reason", "string", "closure reason, if closed"),
    _c("days_intake_to_plan", "int", "calendar days from the latest intake to its first plan"),
    _c("days_intake_to_closure", "int", "calendar days from the latest intake to closure"),
    _c("reopened", "int", "times reopened"),
    _c("transfers", "int", "times transferred"),
    _c("service_links", "int", "service links, all time"),
    _c("public_links", "int", "service links to public-sector services"),
    _c("private_links", "int", "service links to private-sector services"),
    _c("active_links", "int", "service links not stopped"),
    _c("service_checks", "int", "service checks"),
    _c("referrals", "int", "referrals sent"),
    _c("reassessments", "int", "reassessments"),
    _c("supervisions", "int", "supervisions recorded"),
    _c("follow_ups", "int", "follow-ups after closure"),
    _c("meetings", "int", "case meetings that had the case on their agenda"),
    _c("events", "int", "events of the case"),
    _c("last_event_at", "time", "when the latest event of the case occurred"),
)

#: One row per (group, metric): the monitoring figures of :meth:`caseledger.Ledger.kpis`.
KPI_COLUMNS: tuple[Column, ...] = (
    _c("period", "string", "the period (2022, 2022Q1, 2022-02)"),
    _c("previous_period", "string", "the period compared with"),
    _c("group_by", "string", "what the groups are: dong, district, organisation, worker"),
    _c("group", "string", "the dong (district, …); empty for facts with none (district meetings)"),
    _c("metric", "string", "metric name (see caseledger.projections.kpis)"),
    _c("value", "float", "this period's value (empty when suppressed)"),
    _c("previous", "float", "the previous period's value (empty when suppressed)"),
    _c("change", "float", "value − previous (empty when either is suppressed)"),
    _c("suppressed", "bool", "whether a small count was suppressed in this row"),
)

_TABLES = {"events": EVENT_COLUMNS, "cases": CASE_COLUMNS, "kpis": KPI_COLUMNS}


def columns_of(table: str, *, deidentified: bool = False) -> tuple[Column, ...]:
    """The columns of ``table`` (``events``, ``cases`` or ``kpis``) as exported."""
    columns = _TABLES[table]
    if deidentified:
        return tuple(c for c in columns if not c.dropped_when_deidentified)
    return columns
