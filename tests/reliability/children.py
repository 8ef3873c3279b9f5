"""The tasks child processes run for the reliability tests (see :mod:`.forkserver`).

Each task opens its own ledger, works, and reports through a *side channel*: a file
opened ``O_APPEND`` to which every line goes with one unbuffered ``write(2)``, so what a
child reported before a SIGKILL is exactly what the parent reads. A command is
reported (acknowledged) only after the ledger call returned.

The writer's workload is a pure function of a sequence number (:func:`plan`), so a
child that starts where the killed one stopped re-sends the same command, with the same
idempotency keys, and the parent can say exactly what the log must hold.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import caseledger
from caseledger import CaseClosedError, ConcurrencyError, Ledger
from caseledger import cli as caseledger_cli
from caseledger.projections.caseload import Caseload
from caseledger.store import StoredEvent, Tx

__all__ = [
    "MASTER_KEY",
    "OFFICER",
    "SUPERVISOR",
    "Plan",
    "case_of",
    "household_of",
    "plan",
    "record_plan",
    "run",
]

KST = ZoneInfo("Asia/Seoul")
#: The master key of every ledger these tests write (fake data only).
MASTER_KEY = bytes(range(32))
OFFICER = "jungang-officer"
SUPERVISOR = "jungang-lead"
_NAMESPACE = UUID("5b6f1d0e-8a55-4c8b-9d3c-2f1e0a7b6c01")
_START = datetime(2022, 3, 1, 9, tzinfo=KST)


class _Channel:
    """The side channel: lines appended with one write(2) each."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def say(self, line: str) -> None:
        os.write(self._fd, (line + "\n").encode())


def _open(url: str, projections: str = "inline") -> Ledger:
    return Ledger.open(url, master_key=MASTER_KEY, projections=projections)


# ---------------------------------------------------------------------------
# The writer's workload


@dataclass(frozen=True)
class Plan:
    """What the writer records for one sequence number.

    ``batch``: a household found, consulted, its case opened and assessed, and
    ``supervisions`` supervision entries, all in one transaction. Otherwise one command:
    a household found (``target`` None) or a supervision on the case of batch ``target``.
    """

    seq: int
    batch: bool
    supervisions: int = 0
    target: int | None = None

    @property
    def commands(self) -> int:
        """How many commands (and idempotency keys) it has."""
        return 4 + self.supervisions if self.batch else 1

    def keys(self) -> list[str]:
        """The idempotency keys of its commands."""
        return [f"w-{self.seq}-{j}" for j in range(self.commands)]

    def events(self) -> dict[UUID, int]:
        """The events it records, per aggregate."""
        if self.batch:
            return {household_of(self.seq): 2, case_of(self.seq): 2 + self.supervisions}
        if self.target is None:
            return {household_of(self.seq): 1}
        return {case_of(self.target): 1}


def household_of(seq: int) -> UUID:
    """The household a plan discovers."""
    return uuid.uuid5(_NAMESPACE, f"household-{seq}")


def case_of(seq: int) -> UUID:
    """The case a batch opens."""
    return uuid.uuid5(_NAMESPACE, f"case-{seq}")


def plan(seq: int) -> Plan:
    """The plan of sequence number ``seq`` (the same every time)."""
    rng = random.Random(seq)
    if seq == 0 or rng.random() < 0.5:
        return Plan(seq, batch=True, supervisions=rng.randint(0, 8))
    if rng.random() < 0.5:
        return Plan(seq, batch=False)
    target = seq - 1
    while not plan(target).batch:
        target -= 1
    return Plan(seq, batch=False, target=target)


def record_plan(ledger: Ledger, p: Plan) -> None:
    """Record a plan's commands, with its idempotency keys (a batch in one transaction)."""
    at = _START + timedelta(minutes=p.seq)
    keys = p.keys()
    if not p.batch:
        if p.target is None:
            ledger.discover_household(
                dong="중앙동",
                district="동두천시",
                channel="outreach_visit",
                by=OFFICER,
                at=at,
                household_id=household_of(p.seq),
                idempotency_key=keys[0],
            )
        else:
            ledger.record_supervision(
                case_of(p.target), by=SUPERVISOR, at=at, idempotency_key=keys[0]
            )
        return
    household, case = household_of(p.seq), case_of(p.seq)
    with ledger.batch():
        ledger.discover_household(
            dong="중앙동",
            district="동두천시",
            channel="outreach_visit",
            by=OFFICER,
            at=at,
            household_id=household,
            idempotency_key=keys[0],
            members=[{"member_no": 1, "birth_year": 1950, "personal": {"name": f"가상-{p.seq}"}}],
        )
        ledger.record_consultation(
            household, method="visit", outcome="intake", by=OFFICER, at=at, idempotency_key=keys[1]
        )
        ledger.open_case(household, by=OFFICER, at=at, case_id=case, idempotency_key=keys[2])
        ledger.assess_needs(
            case,
            needs=[{"sub_domain": "health.physical", "urgency": 3}],
            by=OFFICER,
            at=at,
            idempotency_key=keys[3],
        )
        for j in range(p.supervisions):
            ledger.record_supervision(case, by=SUPERVISOR, at=at, idempotency_key=keys[4 + j])


def _recorded_already(ledger: Ledger, key: str) -> bool:
    rows = ledger.store.query("SELECT 1 FROM caseledger_idempotency WHERE key = ?", (key,))
    return bool(rows)


def _writer(params: dict[str, Any]) -> int:
    """Record plans from ``start`` on, forever, acknowledging each after it returned.

    The first plan is the one the previous (killed) writer may have been recording:
    re-sending it is what a client does when it never saw the acknowledgement.
    """
    channel = _Channel(params["channel"])
    ledger = _open(params["url"])
    channel.say("ready")
    seq = int(params["start"])
    first = plan(seq)
    channel.say(f"resend {seq} {int(_recorded_already(ledger, first.keys()[0]))}")
    while True:
        record_plan(ledger, plan(seq))
        channel.say(f"ack {seq}")
        seq += 1


def _commit_then_die(params: dict[str, Any]) -> int:
    """Record one plan, then die by SIGKILL before acknowledging it."""
    channel = _Channel(params["channel"])
    ledger = _open(params["url"])
    channel.say("ready")
    record_plan(ledger, plan(int(params["seq"])))
    os.kill(os.getpid(), signal.SIGKILL)
    channel.say("ack")  # pragma: no cover - never reached
    return 1  # pragma: no cover


class _DieInside:
    """A write hook that kills its process inside the write transaction."""

    def create_statements(self, dialect: str) -> list[str]:
        return []

    def after_insert(
        self, tx: Tx, records: Sequence[StoredEvent], positions: Sequence[int], context: Any
    ) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


def _die_in_commit(params: dict[str, Any]) -> int:
    """Start recording one plan and die inside its transaction, before the commit."""
    channel = _Channel(params["channel"])
    ledger = _open(params["url"])
    ledger.store.add_hook(_DieInside())
    channel.say("ready")
    record_plan(ledger, plan(int(params["seq"])))
    channel.say("ack")  # pragma: no cover - never reached
    return 1  # pragma: no cover


# ---------------------------------------------------------------------------
# The projection follower


def _follower(params: dict[str, Any]) -> int:
    """Apply the log to the read models batch by batch, saying when each begins and ends.

    The same loop as ``caseledger project --follow`` (:meth:`Projections.follow` calls
    :meth:`Projections.project`), one batch per call so the parent can tell whether a
    kill landed inside a batch. With ``pause``, each batch waits that long after the
    caseload rows were written and before the other read models and the tracking row,
    so that most kills land inside a batch, half applied.
    """
    channel = _Channel(params["channel"])
    ledger = _open(params["url"], projections="follow")
    _pause_in_batches(float(params.get("pause", 0)))
    channel.say("ready")
    batch_size = int(params["batch_size"])
    while True:
        channel.say("begin")
        applied = ledger.projections.project(batch_size=batch_size, max_batches=1)
        channel.say(f"end {applied}")
        if not applied:
            channel.say("idle")
            time.sleep(0.01)


def _pause_in_batches(pause: float) -> None:
    """Make this process wait ``pause`` seconds inside each projection batch."""
    if not pause:
        return
    applying = Caseload.apply

    def slowly(self: Caseload, tx: Tx, items: Sequence[Any]) -> None:
        applying(self, tx, items)
        time.sleep(pause)

    # Patched in this (forked) process only.
    Caseload.apply = slowly  # type: ignore[method-assign]


def _cli(params: dict[str, Any]) -> int:
    """Run the command line with ``argv`` (``pause``: as for the follower)."""
    channel = _Channel(params["channel"])
    _pause_in_batches(float(params.get("pause", 0)))
    channel.say("ready")
    return caseledger_cli.main(params["argv"])


# ---------------------------------------------------------------------------
# Concurrent writers


def _contend(params: dict[str, Any]) -> int:
    """Record supervision on shared cases, racing the other children; report the counts.

    With ``retry`` each entry goes through :func:`caseledger.retry`; without, a
    :class:`ConcurrencyError` is counted and the entry dropped. Any other error is an
    ``unexpected`` one. At the end every child tries to close the same case: one wins.
    """
    rng = random.Random(params["seed"])
    cases = [UUID(c) for c in params["cases"]]
    use_retry = bool(params["retry"])
    ledger = _open(params["url"])
    done: dict[str, int] = {str(c): 0 for c in cases}
    calls = conflicts = 0
    unexpected: list[str] = []
    at = datetime.fromisoformat(params["at"])

    def supervise(case: UUID) -> Callable[[], object]:
        def call() -> object:
            nonlocal calls
            calls += 1
            return ledger.record_supervision(case, by=SUPERVISOR, at=at)

        return call

    _Channel(params["channel"]).say("ready")
    while not os.path.exists(params["go"]):
        time.sleep(0.001)
    for _ in range(int(params["iterations"])):
        case = rng.choice(cases)
        try:
            if use_retry:
                caseledger.retry(supervise(case), attempts=200, backoff=0.001)
            else:
                supervise(case)()
        except ConcurrencyError:
            conflicts += 1
            if use_retry:
                unexpected.append("ConcurrencyError after 200 attempts")
            continue
        except Exception as e:
            unexpected.append(f"{type(e).__name__}: {e}")
            continue
        done[str(case)] += 1
    if use_retry:
        conflicts = calls - sum(done.values()) - len(unexpected)
    close = "none"
    meeting = params.get("meeting")
    if meeting:
        try:
            caseledger.retry(
                lambda: ledger.close_case(
                    UUID(params["close"]),
                    meeting=UUID(meeting),
                    reason="goal_achieved",
                    by=OFFICER,
                    at=at,
                ),
                attempts=200,
                backoff=0.001,
            )
            close = "won"
        except CaseClosedError:
            close = "already closed"
        except Exception as e:
            unexpected.append(f"closing: {type(e).__name__}: {e}")
    ledger.close()
    report = {
        "done": done,
        "conflicts": conflicts,
        "calls": calls,
        "retry": use_retry,
        "close": close,
        "unexpected": unexpected,
    }
    with open(params["result"], "w", encoding="utf-8") as f:
        json.dump(report, f)
    return 0


# ---------------------------------------------------------------------------

_TASKS: dict[str, Callable[[dict[str, Any]], int]] = {
    "writer": _writer,
    "commit_then_die": _commit_then_die,
    "die_in_commit": _die_in_commit,
    "follower": _follower,
    "cli": _cli,
    "contend": _contend,
}


def run(request: dict[str, Any]) -> int:
    """Run the task a request names; return the exit code."""
    # A forked child inherits the server's random state and any threads' absence;
    # reseed so children of one server do not share pseudo-random sequences.
    random.seed()
    assert threading.active_count() == 1
    return _TASKS[request["task"]](request)
