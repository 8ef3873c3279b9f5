"""Reliability under faults, concurrency and bad input (see ``docs/reliability.md``).

CI runs a small number of trials; the full count runs with
``CASELEDGER_RELIABILITY_TRIALS=100 pytest tests/reliability``.
"""
