"""De-identification of exports: keyed pseudonyms, coarse dates, small-cell suppression.

What a de-identified export does (``docs/exports.md`` says what it does *not* protect):

* every identifier (household, case, meeting, service link, referral, consent, and the
  aggregate ids of organisations and workers) is replaced by a **keyed pseudonym**:
  the first 24 hex digits (96 bits) of HMAC-SHA256 under a secret key. The same id gets
  the same pseudonym throughout one export, so rows still join; without the key a
  pseudonym cannot be turned back into the id, nor an id into its pseudonym. The key is
  drawn at random for each export and never written anywhere, so two exports do not
  link up, unless the caller keeps a key in a file (:func:`load_secret`) to make
  pseudonyms stable across exports of one study;
* worker codes and free text (rationales, purposes, reasons, service names, meeting
  titles) are left out: see :data:`~caseledger.export.columns.Column.protect`;
* optionally, every date and time is cut to the first day of its month, in the
  reporting timezone (:meth:`Deidentifier.coarse`);
* in aggregate tables, counts below a threshold (default 5) are suppressed
  (:meth:`Deidentifier.suppress`).
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Callable, Sequence
from datetime import date, datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any
from uuid import UUID

from caseledger.errors import ConfigurationError, InvalidInput
from caseledger.export.columns import Column

__all__ = [
    "DEFAULT_MIN_CELL",
    "SECRET_BYTES",
    "Deidentifier",
    "load_secret",
]

#: Counts below this are suppressed in de-identified aggregate tables.
DEFAULT_MIN_CELL = 5
#: Length of a pseudonym key.
SECRET_BYTES = 32
_DOMAIN = b"caseledger:pseudonym:1\x00"
_PSEUDONYM_HEX = 24


def load_secret(path: str | Path, *, create: bool = True) -> tuple[bytes, bool]:
    """The pseudonym key kept in ``path``, and whether it was created now.

    A missing file is created with :data:`SECRET_BYTES` random bytes, readable by its
    owner only (``create=False`` refuses instead). Keep the file apart from the exports:
    whoever holds it can tell whether a pseudonym belongs to an id they know.
    """
    file = Path(path)
    if not file.exists():
        if not create:
            msg = f"no pseudonym key file at {file}"
            raise ConfigurationError(msg)
        try:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as e:
            msg = f"cannot create the pseudonym key file {file}: {e.strerror or e}"
            raise ConfigurationError(msg) from None
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(SECRET_BYTES))
        return file.read_bytes(), True
    if file.is_dir():
        msg = f"{file} is a directory; give the pseudonym key file"
        raise ConfigurationError(msg)
    try:
        data = file.read_bytes()
    except OSError as e:
        msg = f"cannot read the pseudonym key file {file}: {e.strerror or e}"
        raise ConfigurationError(msg) from None
    if len(data) < SECRET_BYTES:
        msg = (
            f"the pseudonym key file {file} holds {len(data)} bytes; it needs at least "
            f"{SECRET_BYTES} random bytes (delete it to have a new one made)"
        )
        raise ConfigurationError(msg)
    return data, False


class Deidentifier:
    """Turns exported values into their de-identified form.

    ``secret`` keys the pseudonyms (default: fresh random bytes, forgotten afterwards);
    ``coarsen_dates`` cuts times and dates to their month in ``tz``; ``min_cell`` is the
    smallest count an aggregate table shows.
    """

    def __init__(
        self,
        *,
        tz: tzinfo,
        secret: bytes | None = None,
        coarsen_dates: bool = False,
        min_cell: int = DEFAULT_MIN_CELL,
    ) -> None:
        if secret is not None and len(secret) < SECRET_BYTES:
            msg = f"secret: a pseudonym key needs at least {SECRET_BYTES} bytes"
            raise InvalidInput(msg, [("secret", "too short")])
        if min_cell < 1:
            msg = f"min_cell: must be at least 1, not {min_cell}"
            raise InvalidInput(msg, [("min_cell", "less than 1")])
        key = secret if secret is not None else secrets.token_bytes(SECRET_BYTES)
        self.tz = tz
        self.coarsen_dates = coarsen_dates
        self.min_cell = min_cell
        # A small cache: an id's rows are usually near each other in the log (a case's
        # events, a meeting's agenda), and a bounded cache keeps memory flat on big logs.
        self.pseudonym: Callable[[UUID | str], str] = lru_cache(maxsize=16_384)(
            lambda value: _pseudonym(key, value)
        )

    def coarse(self, value: datetime | date) -> date:
        """The first day of the month of ``value`` (a datetime in the reporting timezone)."""
        if isinstance(value, datetime):
            value = value.astimezone(self.tz).date()
        return value.replace(day=1)

    def event_id(self, text: str) -> str:
        """``<id>:<n>`` with the id pseudonymised."""
        head, _, version = text.rpartition(":")
        return f"{self.pseudonym(head)}:{version}"

    def ids(self, text: str) -> str:
        """A ``;``-separated list of ids, each pseudonymised."""
        return ";".join(self.pseudonym(part) for part in text.split(";")) if text else text

    def row_transform(self, columns: Sequence[Column]) -> Callable[[dict[str, Any]], None]:
        """A function de-identifying one row (a dict) of ``columns`` in place."""
        ids = [c.name for c in columns if c.protect == "id"]
        lists = [c.name for c in columns if c.protect == "ids"]
        events = [c.name for c in columns if c.protect == "event_id"]
        times = [c.name for c in columns if c.protect == "time"] if self.coarsen_dates else []
        dropped = [c.name for c in columns if c.dropped_when_deidentified]
        pseudonym = self.pseudonym
        groups = (("id", ids), ("ids", lists), ("event_id", events), ("time", times),
                  ("drop", dropped))  # fmt: skip
        kinds = {name: kind for kind, names in groups for name in names}
        protected = frozenset(kinds)

        def transform(row: dict[str, Any]) -> None:
            # Rows are sparse: visit only the protected columns this row has.
            for name in row.keys() & protected:
                kind = kinds[name]
                if kind == "drop":
                    del row[name]
                    continue
                value = row[name]
                if value is None:
                    continue
                if kind == "id":
                    row[name] = pseudonym(value)
                elif kind == "ids":
                    if value:
                        row[name] = self.ids(value)
                elif kind == "event_id":
                    row[name] = self.event_id(value)
                else:
                    row[name] = self.coarse(value)

        return transform

    def suppress(self, value: float | None) -> tuple[float | None, bool]:
        """``(value, False)``, or ``(None, True)`` for a count from 1 to ``min_cell - 1``."""
        if value is not None and 0 < value < self.min_cell:
            return None, True
        return value, False


def _pseudonym(key: bytes, value: UUID | str) -> str:
    # Ids reach here as UUIDs or as their canonical text (lower-case, hyphenated):
    # both are keyed on that text, so the same id always gets the same pseudonym.
    data = str(value).encode("ascii", "backslashreplace")
    # hmac.digest: the one-shot HMAC, the same bytes as hmac.new(...).digest(), faster.
    return hmac.digest(key, _DOMAIN + data, "sha256").hex()[:_PSEUDONYM_HEX]
