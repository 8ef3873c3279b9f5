"""The due rules of the district flowcharts, against the rules as the domain guide states them.

``due_dates`` (every date given) and ``due_on`` (dates asked for by name, only those the
stage needs) must agree with each other and with a plain reading of the rules below,
for any stage, track, dates and deadlines.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from caseledger import Deadlines, Stage
from caseledger.projections.due import add_months, due_dates, due_on

_NAMES = ("intake", "stage_since", "assessed", "meeting", "plan", "closed", "follow_up",
          "last_check")  # fmt: skip
_days = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


def _expected(stage: Stage, track: str | None, d: dict[str, date | None],
              deadlines: Deadlines) -> list[tuple[str, date]]:  # fmt: skip
    """The rules as the domain guide words them, one independent clause each."""
    found: list[tuple[str, date]] = []
    intake, since = d["intake"], d["stage_since"]
    assert intake is not None
    assert since is not None
    meeting, assessed, closed = d["meeting"], d["assessed"], d["closed"]
    if stage is Stage.OPENED:
        found.append(("assessment", intake + timedelta(days=deadlines.assessment_days)))
    if (
        stage is Stage.ASSESSED
        and meeting is not None
        and (assessed is None or meeting >= assessed)
    ):
        found.append(("selection", meeting + timedelta(days=deadlines.selection_days)))
    if stage is Stage.SELECTED and track == "case_managed" and d["plan"] is None:
        found.append(("plan", intake + timedelta(days=deadlines.plan_days)))
    if stage in (Stage.IN_SERVICE, Stage.LINKED):
        check = d["last_check"]
        start = since if check is None else max(check, since)
        found.append(("service_check", add_months(start, deadlines.check_months)))
    follow_up = d["follow_up"]
    if stage is Stage.CLOSED and closed is not None and (follow_up is None or follow_up < closed):
        found.append(("follow_up", add_months(closed, deadlines.follow_up_months)))
    return found


@given(
    stage=st.sampled_from(list(Stage)),
    track=st.sampled_from([None, "case_managed", "linkage_only", "not_selected"]),
    required=st.tuples(_days, _days),
    optional=st.lists(st.none() | _days, min_size=6, max_size=6),
    deadlines=st.builds(
        Deadlines,
        assessment_days=st.integers(0, 60),
        selection_days=st.integers(0, 30),
        plan_days=st.integers(0, 90),
        check_months=st.integers(1, 12),
        follow_up_months=st.integers(1, 12),
    ),
)
def test_due_rules_agree_with_the_guide(
    stage: Stage,
    track: str | None,
    required: tuple[date, date],
    optional: list[date | None],
    deadlines: Deadlines,
) -> None:
    days: dict[str, date | None] = dict(zip(_NAMES, [*required, *optional], strict=True))
    expected = _expected(stage, track, days, deadlines)
    assert due_dates(stage=stage, track=track, deadlines=deadlines, **days) == expected  # type: ignore[arg-type]
    asked: list[str] = []

    def day(name: str) -> date | None:
        asked.append(name)
        return days[name]

    assert due_on(stage, track, day, deadlines) == expected
    # A stage asks for no more than its own rule reads.
    assert len(asked) <= 2
    assert len(expected) <= 1


@given(day=st.dates(), months=st.integers(0, 240))
def test_add_months_keeps_the_day_or_takes_the_months_last(day: date, months: int) -> None:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    if year > 9999:
        return
    last = calendar.monthrange(year, month)[1]
    assert add_months(day, months) == date(year, month, min(day.day, last))
