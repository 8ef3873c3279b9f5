"""The fork server of the reliability tests: ``python -m tests.reliability.forkserver``.

Reads one JSON request per line on stdin. A task request forks a child that runs
:func:`tests.reliability.children.run` with it and answers ``{"pid": ...}`` at once; a
``{"wait": pid}`` request answers ``{"pid": ..., "status": ...}`` when that child has
ended (by itself or by the parent's SIGKILL). Several children may run at once.
caseledger is imported here once, before any fork, and no connection is open when
forking, so each child starts in milliseconds with nothing shared but the code.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from tests.reliability import children


def _child(request: dict[str, object]) -> None:
    # The child must not touch the server's pipes: stdin and stdout go to /dev/null.
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    code = 70
    try:
        code = children.run(request)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    """Serve requests until stdin closes."""
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if "wait" in request:
            pid, status = os.waitpid(int(request["wait"]), 0)
            print(json.dumps({"pid": pid, "status": status}), flush=True)
            continue
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    main()
