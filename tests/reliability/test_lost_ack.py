"""Lost acknowledgements: a command re-sent with its idempotency key records nothing twice.

A client that never heard back re-sends the command. Three ways it can happen:

* the worker process died right after the commit, before it could report (a child
  records, then SIGKILLs itself);
* the worker died inside the transaction, before the commit (a write hook kills it):
  then nothing was recorded and the re-send records it, once;
* the connection dropped after the commit (PostgreSQL terminates the ledger's backends).

In every case the re-send returns the original result (the same event, with the
``recorded_at`` of the first recording) and the log does not grow.
"""

from __future__ import annotations

import signal
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from caseledger import Ledger, StoreError
from tests.conftest import postgres_url
from tests.reliability.children import MASTER_KEY, SUPERVISOR, case_of, plan, record_plan
from tests.reliability.harness import Lines, fork_server, record_figures
from tests.scenarios import kst, register_dongducheon

_KILLED = -signal.SIGKILL


def _keys(ledger: Ledger) -> set[str]:
    return {row[0] for row in ledger.store.query("SELECT key FROM caseledger_idempotency")}


def _records(ledger: Ledger) -> int:
    # Not len(ledger), the last position: on PostgreSQL a rolled-back write leaves a gap.
    return int(ledger.store.query("SELECT COUNT(*) FROM stored_events")[0][0])


def _single_and_batch() -> list[int]:
    """Sequence numbers of a single supervision and of a batch with supervisions."""
    single = next(s for s in range(1, 100) if not plan(s).batch and plan(s).target is not None)
    # After the single one, so not the batch whose case the single one names.
    batch = next(s for s in range(single + 1, 200) if plan(s).batch and plan(s).supervisions)
    return [single, batch]


def test_a_command_committed_but_never_acknowledged_is_not_recorded_twice(
    durable_url: str, tmp_path: Path
) -> None:
    started = time.perf_counter()
    seqs = _single_and_batch()
    found_committed = 0
    with fork_server(tmp_path / "children.log") as server:
        with Ledger.open(durable_url, master_key=MASTER_KEY) as ledger:
            record_plan(ledger, plan(0))  # the case that the single supervision names
            record_plan(ledger, plan(plan(seqs[0]).target or 0))
        for seq in seqs:
            channel = Lines(tmp_path / f"commit-{seq}.log")
            code = server.run(
                "commit_then_die", url=durable_url, channel=str(channel.path), seq=seq
            )
            assert code == _KILLED, server.errors()
            assert channel.read() == ["ready"]  # the client never heard back
            with Ledger.open(durable_url, master_key=MASTER_KEY) as ledger:
                keys = _keys(ledger)
                assert set(plan(seq).keys()) <= keys  # ... yet it was committed
                found_committed += 1
                size = _records(ledger)
                history = ledger.history(_case_of_plan(seq))
                record_plan(ledger, plan(seq))  # the re-send
                assert _records(ledger) == size
                assert _keys(ledger) == keys
                assert ledger.history(_case_of_plan(seq)) == history
    record_figures(
        "lost acknowledgement: killed after the commit",
        backend=_backend(durable_url),
        trials=len(seqs),
        faults=len(seqs),
        commands_acknowledged=0,
        committed_but_unacknowledged=found_committed,
        duplicated=0,
        seconds=round(time.perf_counter() - started, 1),
    )


def _case_of_plan(seq: int) -> UUID:
    p = plan(seq)
    return case_of(p.seq if p.batch else p.target or 0)


def _backend(url: str) -> str:
    return "postgres" if url.startswith("postgresql") else "sqlite"


def test_a_command_killed_inside_its_transaction_is_recorded_once_when_resent(
    durable_url: str, tmp_path: Path
) -> None:
    seqs = _single_and_batch()
    with fork_server(tmp_path / "children.log") as server:
        with Ledger.open(durable_url, master_key=MASTER_KEY) as ledger:
            record_plan(ledger, plan(0))
            record_plan(ledger, plan(plan(seqs[0]).target or 0))
        for seq in seqs:
            channel = Lines(tmp_path / f"inside-{seq}.log")
            code = server.run("die_in_commit", url=durable_url, channel=str(channel.path), seq=seq)
            assert code == _KILLED, server.errors()
            with Ledger.open(durable_url, master_key=MASTER_KEY) as ledger:
                size = _records(ledger)
                assert not set(plan(seq).keys()) & _keys(ledger)  # rolled back entirely
                assert ledger.verify().ok
                record_plan(ledger, plan(seq))
                assert _records(ledger) == size + sum(plan(seq).events().values())
                record_plan(ledger, plan(seq))  # and once more: nothing new
                assert _records(ledger) == size + sum(plan(seq).events().values())
                assert set(plan(seq).keys()) <= _keys(ledger)
                assert ledger.verify().ok


def _backend_pids(ledger: Ledger) -> list[int]:
    """The server process of every connection the ledger's pool holds."""
    pool = ledger.store.recorder.datastore.pool
    with ExitStack() as stack:
        # Taken out together, so each is a different connection.
        connections = [
            stack.enter_context(pool.connection()) for _ in range(pool.get_stats()["pool_size"])
        ]
        return [conn.info.backend_pid for conn in connections]


@pytest.mark.postgres
def test_a_resend_after_the_connection_dropped_returns_the_original_result(
    pg_schema_url: str,
) -> None:
    import psycopg

    admin_url = postgres_url()
    assert admin_url is not None
    with Ledger.open(pg_schema_url, master_key=MASTER_KEY) as ledger:
        register_dongducheon(ledger)
        record_plan(ledger, plan(0))
        case = case_of(0)

        def resend() -> Any:
            return ledger.record_supervision(
                case, by=SUPERVISOR, at=kst(2022, 3, 2), idempotency_key="dropped-1"
            )

        first = resend()
        size = len(ledger)
        pids = _backend_pids(ledger)
        with psycopg.connect(admin_url, autocommit=True) as admin:
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # A client re-sends until it hears back; each dead pooled connection it is
        # handed costs one StoreError (the pool does not check connections first).
        errors = 0
        for _ in range(len(pids) + 5):
            try:
                again = resend()
                break
            except StoreError:
                errors += 1
        else:  # pragma: no cover - reported by the assertion
            pytest.fail(f"still failing after {errors} attempts")
        assert again == first
        assert again.recorded_at == first.recorded_at
        assert len(ledger) == size
        assert [e.originator_version for e in ledger.history(case)][-1] == first.originator_version
    record_figures(
        "lost acknowledgement: connection dropped",
        backend="postgres",
        trials=1,
        faults=len(pids),
        store_errors_before_the_resend_got_through=errors,
        duplicated=0,
    )
