"""Due and overdue: the deadlines of the district flowcharts, applied to case states.

Deadlines are configuration, not data: they are applied when a query runs, to the
case states the caseload projection keeps, so changing them needs no rebuild.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from uuid import UUID

from caseledger.values import Stage

__all__ = ["DUE_KINDS", "Deadlines", "DueItem", "add_months", "due_dates", "due_on"]

#: What can fall due on a case, in lifecycle order.
DUE_KINDS = ("assessment", "selection", "plan", "service_check", "follow_up")


@dataclass(frozen=True)
class Deadlines:
    """How long each step may take (defaults: the district flowcharts in the domain guide).

    >>> Deadlines().plan_days
    30
    >>> Deadlines(plan_days=14).plan_days
    14
    """

    #: Intake (접수) to needs and risk assessment, in days.
    assessment_days: int = 10
    #: A case meeting that discussed the case to its selection decision, in days.
    selection_days: int = 5
    #: Intake to an agreed service plan (case-managed cases), in days.
    plan_days: int = 30
    #: Service checks while in service (or linked): at least every this many months.
    check_months: int = 1
    #: Follow-up (사후관리) after closure: within this many months.
    follow_up_months: int = 3

    def __post_init__(self) -> None:
        for name in ("assessment_days", "selection_days", "plan_days"):
            if getattr(self, name) < 0:
                msg = f"Deadlines.{name} must be zero or more days"
                raise ValueError(msg)
        for name in ("check_months", "follow_up_months"):
            if getattr(self, name) < 1:
                msg = f"Deadlines.{name} must be at least one month"
                raise ValueError(msg)


@dataclass(frozen=True)
class DueItem:
    """Something due on a case: what, by when, and whether it is overdue on ``today``."""

    case_id: UUID
    kind: str
    due_on: date
    overdue: bool
    days_overdue: int
    stage: Stage
    worker: str
    organisation: str
    dong: str
    district: str


def add_months(day: date, months: int) -> date:
    """``day`` plus whole calendar months (the 31st becomes the month's last day)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    last = _MONTH_DAYS[month] + (month == 2 and calendar.isleap(year))
    return date(year, month, min(day.day, last))


#: Days in each month of a common year (index 1–12).
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def due_dates(
    *,
    stage: Stage,
    track: str | None,
    intake: date,
    stage_since: date,
    assessed: date | None,
    meeting: date | None,
    plan: date | None,
    closed: date | None,
    follow_up: date | None,
    last_check: date | None,
    deadlines: Deadlines,
) -> list[tuple[str, date]]:
    """What is due on a case in this state, as ``(kind, due date)`` pairs.

    * ``assessment``: at intake, ``assessment_days`` after intake;
    * ``selection``: assessed and discussed at a meeting (on or after the assessment),
      ``selection_days`` after that meeting;
    * ``plan``: case-managed without a plan yet, ``plan_days`` after intake;
    * ``service_check``: in service or linked, ``check_months`` after the later of the
      last check and the day the service began;
    * ``follow_up``: closed with no follow-up since, ``follow_up_months`` after closure.
    """
    days = {
        "intake": intake,
        "stage_since": stage_since,
        "assessed": assessed,
        "meeting": meeting,
        "plan": plan,
        "closed": closed,
        "follow_up": follow_up,
        "last_check": last_check,
    }
    return due_on(stage, track, days.__getitem__, deadlines)


def due_on(
    stage: Stage,
    track: str | None,
    day: Callable[[str], date | None],
    deadlines: Deadlines,
) -> list[tuple[str, date]]:
    """:func:`due_dates`, asking ``day(name)`` for only the dates this stage needs.

    ``name`` is one of ``due_dates``' date parameters (``"intake"``, ``"meeting"``, …).
    A caseload converts stored times to days this way without converting the ones a
    case's stage does not look at. A case is in one stage, so at most one item is due.
    """
    if stage is Stage.OPENED:
        return [("assessment", _known(day("intake")) + timedelta(days=deadlines.assessment_days))]
    if stage is Stage.ASSESSED:
        meeting = day("meeting")
        if meeting is None:
            return []
        assessed = day("assessed")
        if assessed is not None and meeting < assessed:
            return []
        return [("selection", meeting + timedelta(days=deadlines.selection_days))]
    if stage is Stage.SELECTED:
        if track != "case_managed" or day("plan") is not None:
            return []
        return [("plan", _known(day("intake")) + timedelta(days=deadlines.plan_days))]
    if stage is Stage.IN_SERVICE or stage is Stage.LINKED:
        since = _known(day("stage_since"))
        last_check = day("last_check")
        if last_check is not None and last_check > since:
            since = last_check
        return [("service_check", add_months(since, deadlines.check_months))]
    if stage is Stage.CLOSED:
        closed = day("closed")
        if closed is None:
            return []
        follow_up = day("follow_up")
        if follow_up is not None and follow_up >= closed:
            return []
        return [("follow_up", add_months(closed, deadlines.follow_up_months))]
    return []


def _known(day: date | None) -> date:
    if day is None:  # intake and stage_since are set on every case
        msg = "a case state without its intake or stage date"
        raise ValueError(msg)
    return day
