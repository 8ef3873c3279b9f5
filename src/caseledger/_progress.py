"""A progress bar for long commands: one line on stderr, redrawn a few times a second.

:class:`ProgressBar` shows how much is done (of a total, when known), the rate and the
time left, and draws only when :func:`showing` says so: on a terminal, or when forced
(``--progress``), never when hidden (``--no-progress``), so captured output stays clean::

    bar = ProgressBar(total, stream=sys.stderr, show=showing(sys.stderr, args.progress))
    with bar:
        for done, item in enumerate(items, 1):
            work(item)
            bar.update(done)

:meth:`ProgressBar.update` is cheap to call often: it only reads the clock until the next
redraw is due (at most every ``interval`` seconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

__all__ = ["ProgressBar", "showing"]


def showing(stream: TextIO, force: bool | None = None) -> bool:
    """Whether to draw progress on ``stream``: ``force`` if given, else if it is a terminal."""
    if force is not None:
        return force
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class ProgressBar:
    """One line of progress: ``[####----]  41%  412,000/1,000,000 events  3,150/s  ETA 3m07s``.

    ``total``: what ``done`` counts up to, or None when unknown (then the share done may
    come from :meth:`update`'s ``fraction``, else only the count and rate are shown).
    ``show``: whether to draw at all (see :func:`showing`; default: if ``stream`` is a
    terminal). ``interval``: the least time between redraws, in seconds. :meth:`close`
    (or leaving a ``with`` block) draws the last state and ends the line.
    """

    def __init__(
        self,
        total: int | None = None,
        *,
        stream: TextIO,
        show: bool | None = None,
        unit: str = "events",
        interval: float = 0.25,
        width: int = 24,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.stream = stream
        self.show = showing(stream, show)
        self.unit = unit
        self.interval = interval
        self.width = width
        self.clock = clock
        self.started = clock()
        self.done = 0
        self.fraction: float | None = None
        self.note = ""
        self._due = self.started  # the next redraw, at the earliest
        self._shown: tuple[int, str, float | None] | None = None  # what was drawn last
        self._closed = False

    def update(self, done: int, note: str = "", fraction: float | None = None) -> None:
        """Record that ``done`` are done (``note``: a few words to show after the figures).

        ``fraction``: the share done (0 to 1) when ``total`` is unknown. Redraws only if
        the last redraw was ``interval`` seconds ago or more.
        """
        self.done, self.note, self.fraction = done, note, fraction
        if not self.show:
            return
        now = self.clock()
        if now >= self._due:
            self._due = now + self.interval
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        """The progress line as it would be drawn now."""
        elapsed = (self.clock() if now is None else now) - self.started
        share = self.fraction
        if self.total:
            share = self.done / self.total
        parts = []
        if share is not None:
            share = min(1.0, max(0.0, share))
            filled = round(share * self.width)
            parts.append(f"[{'#' * filled}{'-' * (self.width - filled)}] {share:4.0%}")
        if self.total:
            parts.append(f"{self.done:,}/{self.total:,} {self.unit}")
        else:
            parts.append(f"{self.done:,} {self.unit}")
        if elapsed > 0:
            parts.append(f"{self.done / elapsed:,.0f}/s")
        if share is not None and 0 < share < 1 and elapsed > 0:
            parts.append(f"ETA {_duration(elapsed * (1 - share) / share)}")
        elif share is not None and share >= 1:
            parts.append(f"in {_duration(elapsed)}")
        if self.note:
            parts.append(self.note)
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        self.stream.write("\r" + self.line(now) + "\033[K")
        self.stream.flush()
        self._shown = (self.done, self.note, self.fraction)

    def close(self) -> None:
        """Draw the last state and end the line (once; nothing if never shown)."""
        if self._closed:
            return
        self._closed = True
        if self.show:
            if self._shown != (self.done, self.note, self.fraction):
                self._draw(self.clock())
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
