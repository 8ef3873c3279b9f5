"""``python -m caseledger``: the command line (see :mod:`caseledger.cli`)."""

from caseledger.cli import main

raise SystemExit(main())
