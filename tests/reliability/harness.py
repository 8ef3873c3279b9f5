"""What the reliability tests share: trial counts, figures, a fork server, read-model checks.

Trial counts come from the environment so CI runs a few and a documented command runs
the full count (see ``docs/reliability.md``):

``CASELEDGER_RELIABILITY_TRIALS``
    kills per backend for the crash tests, and the scale of the other tests (default 10);
``CASELEDGER_RELIABILITY_EXAMPLES``
    Hypothesis examples for the model and fuzz tests (default: from the trials);
``CASELEDGER_RELIABILITY_REPORT``
    a file to which every test appends its figures as one JSON line.

Child processes come from a *fork server* (:class:`ForkServer`): one Python process that
imports caseledger once and forks a child per request, so a trial costs a fork instead of
an interpreter start and an import (about 1.5 s). Each child runs one task of
:mod:`tests.reliability.children` and is a separate process with its own connections, so
a SIGKILL sent to it is exactly what a crashed worker would do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from caseledger import Ledger

__all__ = [
    "DEFAULT_TRIALS",
    "FIGURES",
    "ROOT",
    "ForkServer",
    "Lines",
    "examples",
    "read_model_problems",
    "record_figures",
    "trials",
]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TRIALS = 10
#: Figures recorded by the tests of this session (printed at the end by the conftest).
FIGURES: list[dict[str, Any]] = []


def trials(default: int = DEFAULT_TRIALS) -> int:
    """Kills per backend: ``$CASELEDGER_RELIABILITY_TRIALS`` or ``default``."""
    text = os.environ.get("CASELEDGER_RELIABILITY_TRIALS", "")
    return max(1, int(text)) if text.strip() else default


def examples(ci: int, per_trial: float) -> int:
    """Hypothesis examples: ``$CASELEDGER_RELIABILITY_EXAMPLES``, else ``ci`` in CI and
    ``per_trial`` times the trials when a larger trial count is asked for."""
    text = os.environ.get("CASELEDGER_RELIABILITY_EXAMPLES", "")
    if text.strip():
        return max(1, int(text))
    return max(ci, round(per_trial * trials()))


def record_figures(test: str, **figures: Any) -> dict[str, Any]:
    """Keep a test's figures for the session summary and ``$CASELEDGER_RELIABILITY_REPORT``."""
    entry = {"test": test, **figures}
    FIGURES.append(entry)
    target = os.environ.get("CASELEDGER_RELIABILITY_REPORT")
    if target:
        with Path(target).open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False, sort_keys=True, default=str) + "\n")
    return entry


# ---------------------------------------------------------------------------
# Child processes


class ForkServer:
    """A process that forks children running :func:`tests.reliability.children.run`.

    :meth:`start` returns a child's pid, :meth:`kill` sends it SIGKILL, :meth:`wait`
    returns its wait status. Several children may run at once; without a pid, ``kill``
    and ``wait`` mean the last one started. The children's stderr goes to ``log``.
    """

    def __init__(self, log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        environment = {**os.environ, **(env or {})}
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), *filter(None, [environment.get("PYTHONPATH")])]
        )
        self._stderr = log.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.forkserver"],
            cwd=ROOT,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._running: list[int] = []
        ready = self._ask(None)
        assert ready == {"ready": True}, ready

    def _ask(self, request: dict[str, Any] | None) -> dict[str, Any]:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        if request is not None:
            stdin.write((json.dumps(request) + "\n").encode())
            stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server stopped; see {self.log}:\n{self.errors()}")
        return json.loads(line)  # type: ignore[no-any-return]

    def errors(self) -> str:
        """What the children wrote to stderr (the last 4,000 characters)."""
        self._stderr.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def start(self, task: str, **params: Any) -> int:
        """Fork a child running ``task`` with ``params``; return its pid."""
        pid = int(self._ask({"task": task, **params})["pid"])
        self._running.append(pid)
        return pid

    def kill(self, pid: int | None = None) -> None:
        """SIGKILL a running child (if it is still there)."""
        target = self._running[-1] if pid is None else pid
        with suppress(ProcessLookupError):  # it ended by itself meanwhile
            os.kill(target, signal.SIGKILL)

    def wait(self, pid: int | None = None) -> int:
        """Wait for a child to end; return its wait status (as ``os.waitpid`` gives it)."""
        target = self._running[-1] if pid is None else pid
        reply = self._ask({"wait": target})
        assert reply["pid"] == target, reply
        self._running.remove(target)
        return int(reply["status"])

    def run(self, task: str, **params: Any) -> int:
        """Run a child to its end; return its exit code (or minus the signal that ended it)."""
        self.start(task, **params)
        return exit_code(self.wait())

    def close(self) -> None:
        """Kill any child still running and stop the fork server."""
        for pid in list(self._running):
            self.kill(pid)
            self.wait(pid)
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - it does not hang
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._stderr.close()


def exit_code(status: int) -> int:
    """A wait status as an exit code; minus the signal number for a killed process."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


@contextmanager
def fork_server(log: Path, env: dict[str, str] | None = None) -> Iterator[ForkServer]:
    """A :class:`ForkServer` closed after the block."""
    server = ForkServer(log, env)
    try:
        yield server
    finally:
        server.close()


class Lines:
    """The complete lines a child appended to its side-channel file so far.

    A child writes each line with one ``write(2)`` on a file opened ``O_APPEND``; a
    SIGKILL cannot split such a write, but a line without its newline is ignored anyway.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[str]:
        """Every complete line."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return data.decode().split("\n")[:-1]

    def wait_for(self, wanted: str, timeout: float = 60.0) -> None:
        """Wait until a line equal to ``wanted`` appears."""
        deadline = time.monotonic() + timeout
        while wanted not in self.read():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {wanted!r} line in {self.path} after {timeout} s")
            time.sleep(0.002)


# ---------------------------------------------------------------------------
# Checks shared by the tests


def read_model_problems(ledger: Ledger, *, caught_up: bool = True) -> list[str]:
    """What differs between the read models as they are and a rebuild from the log.

    With ``caught_up``, every projection must also have applied the whole log.
    """
    problems = []
    positions = ledger.projections.positions()
    last = ledger.store.max_position()
    if caught_up and set(positions.values()) != {last}:
        problems.append(f"projections at {positions}, the log at {last}")
    applied = ledger.projections.dump()
    ledger.rebuild()
    rebuilt = ledger.projections.dump()
    for table in sorted(set(applied) | set(rebuilt)):
        before, after = applied.get(table, []), rebuilt.get(table, [])
        if before != after:
            extra = [r for r in before if r not in after][:3]
            missing = [r for r in after if r not in before][:3]
            problems.append(
                f"{table}: {len(before)} rows applied, {len(after)} rebuilt; "
                f"only applied {extra}; only rebuilt {missing}"
            )
    return problems
