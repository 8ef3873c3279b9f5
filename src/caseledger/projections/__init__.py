"""Read models derived from the log: caseload, audit trail, KPIs, meetings, due dates.

Each projection is a module here with a :class:`~caseledger.projections.base.Projection`
subclass, registered in :data:`~caseledger.projections.engine.PROJECTIONS`; its tables
live in the same database as the events. By default a ledger updates them inside the
transaction that records each command, so ``ledger.caseload()`` reflects a command as
soon as it returns; a ledger opened with ``projections="follow"`` leaves them to a
follower (``caseledger project --follow``); ``caseledger rebuild`` drops and replays
them all. See :mod:`caseledger.projections.engine`.

Two time axes
-------------

Every event carries when it *occurred* (given by the worker) and when it was
*recorded* (stamped by the ledger). Workers often record a visit days later, so
"what was true on 1 March" has two answers, and the read models give both:

``as_of_recorded=T``
    what the ledger knew at ``T``: only entries recorded by then, as they stood then.
    The auditor's replay: "what did the caseload screen show on the morning of 20 March?"
``as_of=D``
    what was true in the world at ``D``: everything that occurred by then, including
    entries recorded afterwards. The researcher's view: "how many cases were in
    service on 1 March?"

A backdated service check shows the difference. In seed scenario 1 the household with
heavy medical costs is in service from 10 February 2023 (its monthly check falls due
on 10 March). Its worker visits on 2 March but records the visit only on 20 March::

    ledger.check_service(case, link_id=link, method="visit", progress=40,
                         by="jungang-officer", at=datetime(2023, 3, 2, 10, tzinfo=kst))
    # recorded_at: 2023-03-20

    ledger.case_state(case, as_of_recorded=date(2023, 3, 15)).last_checked_at  # None
    ledger.case_state(case, as_of_recorded=date(2023, 3, 15)).next_due         # 10 March
    ledger.case_state(case, as_of=date(2023, 3, 15)).last_checked_at           # 2 March
    ledger.case_state(case, as_of=date(2023, 3, 15)).next_due                  # 2 April
    ledger.kpis("2023-03", as_of_recorded=date(2023, 3, 15)).value("service_checks")  # 0
    ledger.kpis("2023-03").value("service_checks")                                     # 1

On 15 March the ledger did not know of the visit, so the auditor's replay shows the
check overdue since 10 March, as the screen showed it that day; in the world the
household had been visited on 2 March, so a study of how often households are checked
counts it. Both answers are right: they answer different questions. Giving both
``as_of`` and ``as_of_recorded`` asks "what did the ledger know at ``T`` about the world
at ``D``" (computed by folding the history recorded by ``T``, without the indexes).

Dates given as ``as_of`` cover that whole day, in the reporting timezone (default
Asia/Seoul); datetimes must be timezone-aware.
"""

from caseledger.projections.audit import AuditEntry, AuditPage
from caseledger.projections.caseload import CaseloadEntry, WorkerCaseload, WorkerCaseloads
from caseledger.projections.due import Deadlines, DueItem
from caseledger.projections.engine import MODES, PROJECTIONS, ProjectionMode, Projections
from caseledger.projections.kpis import KpiFigure, KpiReport
from caseledger.projections.meetings import MeetingCase, MeetingEntry
from caseledger.projections.periods import Period

__all__ = [
    "MODES",
    "PROJECTIONS",
    "AuditEntry",
    "AuditPage",
    "CaseloadEntry",
    "Deadlines",
    "DueItem",
    "KpiFigure",
    "KpiReport",
    "MeetingCase",
    "MeetingEntry",
    "Period",
    "ProjectionMode",
    "Projections",
    "WorkerCaseload",
    "WorkerCaseloads",
]
