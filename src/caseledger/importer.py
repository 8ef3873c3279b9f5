"""Import commands given as JSON lines: one command object per line, applied in batches.

Each line is one object of the shape :func:`caseledger.command_json_schema` describes
(its ``command`` field names the verb)::

    {"command": "discover_household", "dong": "중앙동", "district": "동두천시",
     "channel": "outreach_visit", "by": "jungang-officer", "at": "2022-10-04T10:00:00+09:00"}

Lines are applied in batches of ``batch_size`` commands, each batch in one transaction
(:meth:`Ledger.batch <caseledger.Ledger.batch>`). The first bad line (not UTF-8, not
JSON, not a valid command, or refused by the ledger's rules) stops the import with an
:class:`~caseledger.errors.ImportLineError` naming the line: nothing from its batch is
written, the batches before it stay written. Blank lines are skipped. Give commands
``idempotency_key`` values and a file can be imported again safely: what was recorded
already is not recorded twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from pydantic import ValidationError

from caseledger.application import Ledger
from caseledger.commands import COMMAND_CLASSES, command_adapter
from caseledger.errors import CaseLedgerError, ImportLineError, InvalidInput

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "MAX_LINE_BYTES",
    "ImportResult",
    "import_lines",
    "parse_line",
]

#: Commands per transaction when none is given.
DEFAULT_BATCH_SIZE = 500
#: The longest line accepted, in bytes (without its line ending): 1 MiB.
MAX_LINE_BYTES = 1 << 20

_BOM = b"\xef\xbb\xbf"
_COMMAND_NAMES = ", ".join(str(cls.model_fields["command"].default) for cls in COMMAND_CLASSES)


@dataclass(frozen=True)
class ImportResult:
    """What an import applied.

    ``lines`` read (blank ones included), ``commands`` applied, in ``batches``
    transactions, recording ``events`` new events (fewer than ``commands`` when some
    were recorded already under the same idempotency key).
    """

    lines: int
    commands: int
    batches: int
    events: int
    seconds: float


def _reason(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False):
        loc = [str(p) for p in item["loc"]]
        if item["type"] == "union_tag_not_found":
            problems.append(f'no "command" field; expected one of: {_COMMAND_NAMES}')
            continue
        if item["type"] == "union_tag_invalid":
            tag = item.get("ctx", {}).get("tag")
            problems.append(f"unknown command {tag!r}; expected one of: {_COMMAND_NAMES}")
            continue
        if item["type"] == "json_invalid":
            problems.append(f"not valid JSON ({item['ctx'].get('error', item['msg'])})")
            continue
        # The first location is the command's tag (pydantic's union member): say it once.
        path = ".".join(loc[1:]) if len(loc) > 1 else ""
        prefix = f"{loc[0]}: " if loc else ""
        problems.append(f"{prefix}{path + ': ' if path else ''}{item['msg']}")
    first = "; ".join(problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return first + more


def parse_line(data: bytes | str, line: int = 1) -> Any:
    """The command model one JSON line holds; :class:`ImportLineError` if it holds none."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            msg = (
                f"line {line}: not valid UTF-8 (byte 0x{data[e.start]:02x} at byte {e.start + 1}); "
                "save the file as UTF-8"
            )
            raise ImportLineError(msg, line=line) from None
    else:
        text = data
    try:
        return command_adapter().validate_json(text)
    except ValidationError as e:
        raise ImportLineError(f"line {line}: {_reason(e)}", line=line) from None


def _read_line(source: IO[bytes], limit: int) -> tuple[bytes, bool] | None:
    """The next line without its ending, and whether it fits ``limit``; None at the end."""
    raw = source.readline(limit + 2)
    if not raw:
        return None
    if not raw.endswith(b"\n") and len(raw) > limit:
        # Too long: skip the rest of the line without holding it in memory.
        while raw and not raw.endswith(b"\n"):
            raw = source.readline(1 << 16)
        return b"", False
    content = raw[:-1] if raw.endswith(b"\n") else raw
    content = content[:-1] if content.endswith(b"\r") else content
    return content, len(content) <= limit


def import_lines(
    ledger: Ledger,
    source: IO[bytes],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    first_line: int = 1,
    max_line_bytes: int = MAX_LINE_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Apply the JSON-lines commands read from ``source`` (a binary stream) to ``ledger``.

    Lines before ``first_line`` are skipped (to resume after a failed import). After
    each batch is written, ``progress(line, commands)`` is called. Raises
    :class:`ImportLineError` at the first bad line; see the module docstring.
    """
    if batch_size < 1:
        msg = f"batch_size: must be at least 1, not {batch_size}"
        raise InvalidInput(msg, [("batch_size", "less than 1")])
    started = time.perf_counter()
    before = len(ledger)
    line = 0
    applied = 0
    batches = 0
    pending: list[tuple[int, Any]] = []

    def fail(at: int, reason: str, cause: BaseException | None = None) -> ImportLineError:
        batch_start = pending[0][0] if pending else at
        where = f"line {batch_start}" if batch_start == at else f"lines {batch_start}-{at}"
        if applied:
            before_text = (
                f"the {applied} commands before line {batch_start} were applied; "
                f"fix line {at} and resume with first line {batch_start}"
            )
        else:
            before_text = "no command was applied"
        msg = f"{reason}; nothing from {where} was written ({before_text})"
        error = ImportLineError(msg, line=at, applied=applied, resume_at=batch_start)
        error.__cause__ = cause
        return error

    def flush() -> None:
        nonlocal applied, batches
        if not pending:
            return
        current = pending[0][0]
        executing = True
        try:
            with ledger.batch():
                for current, command in pending:  # noqa: B007 - the failing line is reported
                    ledger.execute(command)
                executing = False
        except CaseLedgerError as e:
            if executing:
                reason = f"line {current}: {_one_line(str(e))}"
            else:
                reason = (
                    f"the batch ending at line {current} could not be written: {_one_line(str(e))}"
                )
            raise fail(current, reason, e) from e
        applied += len(pending)
        batches += 1
        if progress is not None:
            progress(pending[-1][0], applied)
        pending.clear()

    while True:
        read = _read_line(source, max_line_bytes)
        if read is None:
            break
        line += 1
        content, fits = read
        if line < first_line:
            continue
        if not fits:
            reason = (
                f"line {line}: longer than {max_line_bytes:,} bytes; "
                "a command fits on one shorter line (is this a JSON-lines file?)"
            )
            raise fail(line, reason)
        if line == 1 and content.startswith(_BOM):
            content = content[len(_BOM) :]
        if not content.strip():
            continue
        try:
            command = parse_line(content, line)
        except ImportLineError as e:
            raise fail(line, str(e)) from None
        pending.append((line, command))
        if len(pending) >= batch_size:
            flush()
    flush()
    return ImportResult(
        lines=line,
        commands=applied,
        batches=batches,
        events=len(ledger) - before,
        seconds=time.perf_counter() - started,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())
