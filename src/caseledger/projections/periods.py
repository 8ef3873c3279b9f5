"""Reporting periods: a year (``2022``), a month (``2022-02``) or a quarter (``2022Q1``).

A period is a span of calendar days in the reporting timezone; its bounds in
stored time are the first instant of its first day and of the day after its last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo

from caseledger.errors import InvalidInput
from caseledger.projections.base import ts
from caseledger.projections.due import add_months

__all__ = ["Period"]

_PATTERN = re.compile(r"^(\d{4})(?:-(\d{2})|-?[Qq]([1-4]))?$")


@dataclass(frozen=True)
class Period:
    """A reporting period: ``Period.parse("2022Q1")``, ``.previous()``, ``.start``, ``.end``."""

    #: ``year``, ``quarter`` or ``month``.
    unit: str
    #: First day of the period.
    start: date

    @classmethod
    def parse(cls, text: str) -> Period:
        """Read ``2022``, ``2022-02`` or ``2022Q1``; :class:`InvalidInput` otherwise."""
        match = _PATTERN.match(text.strip())
        if match is None:
            msg = f"period {text!r} is not a year (2022), a month (2022-02) or a quarter (2022Q1)"
            raise InvalidInput(msg, [("period", "unrecognised")])
        year = int(match.group(1))
        if not 1900 <= year <= 9998:  # the period before, and the day after, must exist too
            msg = f"period {text!r}: the year must be between 1900 and 9998"
            raise InvalidInput(msg, [("period", "year out of range")])
        if match.group(2):
            month = int(match.group(2))
            if not 1 <= month <= 12:
                msg = f"period {text!r}: month {month} does not exist"
                raise InvalidInput(msg, [("period", "no such month")])
            return cls("month", date(year, month, 1))
        if match.group(3):
            return cls("quarter", date(year, 3 * int(match.group(3)) - 2, 1))
        return cls("year", date(year, 1, 1))

    @property
    def months(self) -> int:
        """How many calendar months the period spans."""
        return {"year": 12, "quarter": 3, "month": 1}[self.unit]

    @property
    def end(self) -> date:
        """The first day after the period."""
        return add_months(self.start, self.months)

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        return Period(self.unit, add_months(self.start, -self.months))

    def bounds(self, tz: tzinfo) -> tuple[str, str]:
        """The period as stored-time text ``[start, end)`` in timezone ``tz``."""
        return (
            ts(datetime.combine(self.start, time(), tzinfo=tz)),
            ts(datetime.combine(self.end, time(), tzinfo=tz)),
        )

    def __str__(self) -> str:
        if self.unit == "year":
            return f"{self.start.year}"
        if self.unit == "quarter":
            return f"{self.start.year}Q{(self.start.month - 1) // 3 + 1}"
        return f"{self.start.year}-{self.start.month:02d}"
