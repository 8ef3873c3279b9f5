"""Every error caseledger raises on purpose.

Catch :class:`CaseLedgerError` to handle anything the library refuses; catch a
narrower class when you can do something specific about it::

    CaseLedgerError                  root: anything caseledger refuses or cannot do
    ├── InvalidInput                 a command's fields are missing, mistyped or out of range
    ├── NotFound                     an id names nothing in this ledger
    │   ├── CaseNotFound
    │   ├── HouseholdNotFound
    │   ├── MeetingNotFound
    │   ├── OrganisationNotFound
    │   ├── WorkerNotFound
    │   └── ReferralNotFound / ServiceLinkNotFound / ConsentNotFound
    ├── AlreadyExists                an id is registered already
    ├── RuleViolation                the domain forbids this command in the current state
    │   ├── StageError               the case is not at a stage that allows it
    │   ├── CaseClosedError          the case is closed (only follow-up and reopen are allowed)
    │   ├── MeetingRuleError         the named meeting did not have the case on its agenda
    │   ├── TimeError                occurred_at is in the future or before the case began
    │   └── RetentionError           the policy's retention period forbids erasing this yet
    ├── AuthorityError               the actor's role may not do this (names rule and policy)
    ├── ConsentError                 no consent covers providing this data to this organisation
    ├── ConcurrencyError             someone else changed the same case first: reload and retry
    ├── IdempotencyConflict          an idempotency key was reused for a different command
    ├── ImportLineError              a line of a JSON-lines import was refused (names the line)
    ├── StoreError                   the event store cannot be opened or read
    │   ├── ConfigurationError       a database URL, key or setting is missing or malformed
    │   └── CorruptRecord            a stored record no longer decodes (names its log position)
    └── IntegrityError               a Merkle proof, checkpoint or stored record fails verification
        ├── ProofError               an inclusion or consistency proof does not verify
        └── CheckpointError          a checkpoint is malformed, badly signed or inconsistent

Every error message says what was wrong and, where there is one, what to do about it.
Nothing is written when a command raises.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "AuthorityError",
    "CaseClosedError",
    "CaseLedgerError",
    "CaseNotFound",
    "CheckpointError",
    "ConcurrencyError",
    "ConfigurationError",
    "ConsentError",
    "ConsentNotFound",
    "CorruptRecord",
    "HouseholdNotFound",
    "IdempotencyConflict",
    "ImportLineError",
    "IntegrityError",
    "InvalidInput",
    "MeetingNotFound",
    "MeetingRuleError",
    "NotFound",
    "OrganisationNotFound",
    "ProofError",
    "ReferralNotFound",
    "RetentionError",
    "RuleViolation",
    "ServiceLinkNotFound",
    "StageError",
    "StoreError",
    "TimeError",
    "WorkerNotFound",
]


class CaseLedgerError(Exception):
    """Root of every error caseledger raises on purpose."""


class InvalidInput(CaseLedgerError, ValueError):
    """A command's fields are missing, of the wrong type, or out of range.

    ``problems`` lists one ``(field path, message)`` pair per problem found.
    """

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems: list[tuple[str, str]] = problems or []


class NotFound(CaseLedgerError, LookupError):
    """An id names nothing in this ledger."""


class CaseNotFound(NotFound):
    """No case with this id exists in this ledger."""


class HouseholdNotFound(NotFound):
    """No household with this id was discovered in this ledger."""


class MeetingNotFound(NotFound):
    """No case meeting with this id was held in this ledger."""


class OrganisationNotFound(NotFound):
    """No organisation with this code is registered."""


class WorkerNotFound(NotFound):
    """No worker with this code is registered."""


class ReferralNotFound(NotFound):
    """The case has no referral with this id."""


class ServiceLinkNotFound(NotFound):
    """The case has no service link with this id."""


class ConsentNotFound(NotFound):
    """The household has no consent with this id."""


class AlreadyExists(CaseLedgerError):
    """An organisation, worker, household, case or meeting with this id exists already."""


class RuleViolation(CaseLedgerError):
    """The domain rules forbid this command in the current state."""


class StageError(RuleViolation):
    """The case is not at a stage that allows this command."""


class CaseClosedError(StageError):
    """The case is closed: only follow-up and reopening are allowed."""


class MeetingRuleError(RuleViolation):
    """A decision names a meeting that cannot authorise it (not on its agenda, or later)."""


class TimeError(RuleViolation):
    """``occurred_at`` is in the future, or before the household was discovered."""


class RetentionError(RuleViolation):
    """The policy's retention rule forbids erasing this household yet (says from when)."""


class AuthorityError(CaseLedgerError, PermissionError):
    """The acting worker's role or organisation may not do this under the policy in force.

    ``rule`` and ``policy_version`` name the policy rule that refused it, when the
    refusal comes from the authority policy (they are None for the fixed rules of the
    referral state machine).
    """

    def __init__(
        self, message: str, *, rule: str | None = None, policy_version: str | None = None
    ) -> None:
        super().__init__(message)
        self.rule = rule
        self.policy_version = policy_version


class ConsentError(AuthorityError):
    """No consent of the household covers providing its data to this organisation now."""


class ConcurrencyError(CaseLedgerError):
    """Another writer changed the same aggregate first.

    Nothing was written. Reload and decide again; :func:`caseledger.retry` does this for you.
    """


class IdempotencyConflict(CaseLedgerError):
    """An idempotency key was already used for a different command."""


class ImportLineError(CaseLedgerError):
    """A line of a JSON-lines import was refused; nothing from its batch was written.

    ``line`` is the refused line's number, ``applied`` how many commands of earlier
    batches were written, ``resume_at`` the first line of the batch that was not. When
    the ledger refused the command, the ledger's error is the ``__cause__``.
    """

    def __init__(self, message: str, line: int, applied: int = 0, resume_at: int = 0) -> None:
        super().__init__(message)
        self.line = line
        self.applied = applied
        self.resume_at = resume_at or line


class StoreError(CaseLedgerError):
    """The event store cannot be opened, written or read."""


class ConfigurationError(StoreError):
    """A database URL, key file or setting is missing or malformed."""


class CorruptRecord(StoreError):
    """A stored record no longer decodes. ``position`` is its log position."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class IntegrityError(CaseLedgerError):
    """Something fails cryptographic verification: a proof, a checkpoint, the stored log."""


class ProofError(IntegrityError):
    """An inclusion or consistency proof does not verify against the given root(s)."""


class CheckpointError(IntegrityError):
    """A checkpoint is malformed, signed by another key, or inconsistent with the log."""
