"""Crashes while writing: writers and followers killed with SIGKILL at random moments.

A writer child records commands in a loop (single commands and batches of 4 to 12) and
acknowledges each on its side channel after the call returned; the parent kills it at a
random moment, reopens the ledger and checks that:

* no command is partly visible (a batch's idempotency keys and events are all there or
  none are), every acknowledged command is there exactly once, nothing else is;
* the Merkle log verifies;
* the read models (updated inside each write transaction) equal a rebuild from the log.

The next writer starts by re-sending the command the killed one may have been in the
middle of, with the same idempotency keys, as a client that never saw an acknowledgement
does: when it had in fact been committed, nothing is recorded twice.

The projection follower is killed the same way while it applies batches, and another
follower resumes: the read models must equal a rebuild.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any
from uuid import UUID

from caseledger import Ledger
from caseledger.demo import commands as demo_commands
from tests.reliability.children import MASTER_KEY, plan
from tests.reliability.harness import (
    ForkServer,
    Lines,
    exit_code,
    fork_server,
    read_model_problems,
    record_figures,
    trials,
)

_KILLED = -signal.SIGKILL


def _backend(url: str) -> str:
    return "postgres" if url.startswith("postgresql") else "sqlite"


def _open(url: str, projections: str = "follow") -> Ledger:
    # "follow": opening must not catch the read models up, or a crash that left them
    # behind the log would be repaired before it is seen.
    return Ledger.open(url, master_key=MASTER_KEY, projections=projections)


def _aggregate_counts(ledger: Ledger) -> dict[UUID, tuple[int, int]]:
    """Events and highest version per aggregate, straight from the stored records."""
    rows = ledger.store.query(
        "SELECT originator_id, COUNT(*), MAX(originator_version) FROM stored_events "
        "GROUP BY originator_id"
    )
    return {UUID(str(oid)): (int(n), int(top)) for oid, n, top in rows}


def _positions(ledger: Ledger) -> list[int]:
    return [n.id for n in ledger.records()]


@dataclass
class _Log:
    """What the log holds of the writers' plans, against what was acknowledged."""

    present: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0
    gaps: int = 0


def _check_writes(
    ledger: Ledger, acked: set[int], in_flight: int, baseline: dict[UUID, tuple[int, int]]
) -> _Log:
    log = _Log()
    keys = {row[0] for row in ledger.store.query("SELECT key FROM caseledger_idempotency")}
    known: set[str] = set()
    for seq in range(in_flight + 1):
        wanted = plan(seq).keys()
        known.update(wanted)
        found = sum(k in keys for k in wanted)
        if found == len(wanted):
            log.present.add(seq)
        elif found:
            log.problems.append(f"plan {seq}: {found} of {len(wanted)} commands recorded")
    if keys - known:
        log.problems.append(f"keys of plans never sent: {sorted(keys - known)[:5]}")
    lost = sorted(acked - log.present)
    if lost:
        log.lost += len(lost)
        log.problems.append(f"acknowledged plans missing: {lost[:10]}")
    expected = Counter({oid: n for oid, (n, _) in baseline.items()})
    for seq in log.present:
        expected.update(plan(seq).events())
    found_counts = _aggregate_counts(ledger)
    for oid in set(expected) | set(found_counts):
        have, top = found_counts.get(oid, (0, 0))
        want = expected.get(oid, 0)
        if have > want:
            log.duplicated += have - want
            log.problems.append(f"{oid}: {have} events, expected {want}")
        elif have < want:
            log.lost += want - have
            log.problems.append(f"{oid}: {have} events, expected {want}")
        if have != top:
            log.problems.append(f"{oid}: versions are not 1..{have} (highest {top})")
    positions = _positions(ledger)
    log.gaps = (positions[-1] - len(positions)) if positions else 0
    report = ledger.verify()
    if not report.ok:
        log.problems.extend(report.lines())
    if report.records != sum(n for n, _ in found_counts.values()):
        log.problems.append(f"verification saw {report.records} records")
    log.problems.extend(read_model_problems(ledger))
    return log


def _kill_after(server: ForkServer, channel: Lines, rng: random.Random, longest: float) -> bool:
    """Kill the running child at a random moment; True if it was before it was ready."""
    early = rng.random() < 0.1
    if early:
        time.sleep(rng.uniform(0, 0.05))
    else:
        channel.wait_for("ready")
        time.sleep(rng.uniform(0, longest))
    server.kill()
    return early and "ready" not in channel.read()


def test_killed_writers_lose_and_duplicate_nothing(durable_url: str, tmp_path: Path) -> None:
    backend = _backend(durable_url)
    kills = trials()
    rng = random.Random(f"writers-{backend}")
    started = time.perf_counter()
    with _open(durable_url) as ledger:
        baseline = _aggregate_counts(ledger)
    acked: set[int] = set()
    next_seq = 0
    recovered = resent = during_open = gaps = 0
    with fork_server(tmp_path / "children.log") as server:
        for trial in range(kills):
            channel = Lines(tmp_path / f"writer-{trial}.log")
            server.start("writer", url=durable_url, channel=str(channel.path), start=next_seq)
            during_open += _kill_after(server, channel, rng, 0.4)
            assert exit_code(server.wait()) == _KILLED, server.errors()
            lines = channel.read()
            new = [int(line.split()[1]) for line in lines if line.startswith("ack ")]
            assert new == list(range(next_seq, next_seq + len(new)))
            for line in lines:
                if line.startswith("resend "):
                    resent += 1
                    recovered += line.endswith(" 1")
            acked.update(new)
            next_seq += len(new)
            with _open(durable_url) as ledger:
                log = _check_writes(ledger, acked, next_seq, baseline)
            assert log.problems == [], f"after kill {trial + 1}: {log.problems}"
            gaps = log.gaps
    commands = sum(plan(seq).commands for seq in acked)
    record_figures(
        "crash: killed writers",
        backend=backend,
        trials=kills,
        faults=kills,
        killed_while_opening=during_open,
        commands_acknowledged=commands,
        batches_acknowledged=sum(plan(seq).batch for seq in acked),
        resent_after_kill=resent,
        committed_but_unacknowledged=recovered,
        lost=log.lost,
        duplicated=log.duplicated,
        position_gaps=gaps,
        seconds=round(time.perf_counter() - started, 1),
    )
    assert commands > 0


def _demo_chunks(size: int) -> Iterator[list[Any]]:
    """The demo district's commands (three dongs, a year: about 9,000), ``size`` at a time."""
    stream = demo_commands(dongs=3, seed=7)
    while chunk := [command for _, command in islice(stream, size)]:
        yield chunk


def test_killed_followers_resume_without_applying_an_event_twice(
    durable_url: str, tmp_path: Path
) -> None:
    backend = _backend(durable_url)
    kills = max(4, trials() // 2)
    rng = random.Random(f"followers-{backend}")
    started = time.perf_counter()
    chunks = _demo_chunks(120)
    mid_batch = 0
    catch_up = 0.3  # seconds a follower needs for one chunk; measured as it goes
    with _open(durable_url) as writer, fork_server(tmp_path / "children.log") as server:
        for trial in range(kills):
            with writer.batch():
                for command in next(chunks):
                    writer.execute(command)
            before = min(writer.projections.positions().values())
            channel = Lines(tmp_path / f"follower-{trial}.log")
            server.start(
                "follower", url=durable_url, channel=str(channel.path), batch_size=25, pause=0.02
            )
            channel.wait_for("ready")
            time.sleep(rng.uniform(0, catch_up))
            server.kill()
            assert exit_code(server.wait()) == _KILLED, server.errors()
            marks = [m for m in channel.read() if m.split()[0] in ("begin", "end")]
            mid_batch += bool(marks) and marks[-1] == "begin"
            positions = set(writer.projections.positions().values())
            assert len(positions) == 1, positions  # every projection moves in one transaction
            assert before <= min(positions) <= writer.store.max_position()
            # Another follower resumes where the killed one stopped.
            channel = Lines(tmp_path / f"resume-{trial}.log")
            resumed = time.monotonic()
            server.start("follower", url=durable_url, channel=str(channel.path), batch_size=25)
            channel.wait_for("idle", timeout=120)
            catch_up = max(0.05, time.monotonic() - resumed)
            server.kill()
            assert exit_code(server.wait()) == _KILLED, server.errors()
        # Compared once, at the end: an event applied twice after any of the kills would
        # still be counted twice now (only a rebuild would put it right).
        problems = read_model_problems(writer)
        events = len(writer)
    assert problems == []
    record_figures(
        "crash: killed followers",
        backend=backend,
        trials=kills,
        faults=kills,
        killed_mid_batch=mid_batch,
        events_in_log=events,
        read_model_differences=len(problems),
        seconds=round(time.perf_counter() - started, 1),
    )
    assert mid_batch > 0


def test_a_killed_caseledger_project_follow_resumes_where_it_stopped(
    durable_url: str, tmp_path: Path
) -> None:
    """The same through the command line: ``caseledger project --follow``, killed, resumed."""
    started = time.perf_counter()
    with _open(durable_url) as writer, fork_server(tmp_path / "children.log") as server:
        with writer.batch():
            for command in next(_demo_chunks(200)):
                writer.execute(command)
        follow = [
            "--db",
            durable_url,
            "project",
            "--follow",
            "--batch-size",
            "10",
            "--poll",
            "0.01",
        ]
        channel = Lines(tmp_path / "cli.log")
        server.start("cli", argv=follow, channel=str(channel.path), pause=0.02)
        channel.wait_for("ready")
        deadline = time.monotonic() + 60
        while min(writer.projections.positions().values()) < 20:
            assert time.monotonic() < deadline, "the follower made no progress"
            time.sleep(0.005)
        server.kill()
        assert exit_code(server.wait()) == _KILLED, server.errors()
        reached = set(writer.projections.positions().values())
        assert len(reached) == 1
        assert 20 <= min(reached) < writer.store.max_position()
        once = ["--db", durable_url, "project", "--once", "--batch-size", "10"]
        assert server.run("cli", argv=once, channel=str(tmp_path / "once.log")) == 0
        assert set(writer.projections.positions().values()) == {writer.store.max_position()}
        assert read_model_problems(writer) == []
    record_figures(
        "crash: killed `caseledger project --follow`",
        backend=_backend(durable_url),
        trials=1,
        faults=1,
        killed_at_position=min(reached),
        read_model_differences=0,
        seconds=round(time.perf_counter() - started, 1),
    )
