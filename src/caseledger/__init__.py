"""caseledger: an event-sourced ledger for welfare integrated case management (통합사례관리).

Every case action becomes an immutable event; current caseloads, audit trails and
monitoring reports are derived from the log. Start with :class:`Ledger`::

    from caseledger import Ledger
    ledger = Ledger.open()            # ./caseledger.db (SQLite)
    ledger = Ledger.open(":memory:")  # for tests

The names exported here are the public API; modules whose names start with an
underscore, and names not listed in ``__all__``, may change without notice.
"""

from caseledger._version import __version__
from caseledger.application import Ledger, LogEntry, retry
from caseledger.case import Case
from caseledger.commands import command_json_schema
from caseledger.errors import (
    AlreadyExists,
    AuthorityError,
    CaseClosedError,
    CaseLedgerError,
    CaseNotFound,
    CheckpointError,
    ConcurrencyError,
    ConfigurationError,
    ConsentError,
    ConsentNotFound,
    CorruptRecord,
    HouseholdNotFound,
    IdempotencyConflict,
    IntegrityError,
    InvalidInput,
    MeetingNotFound,
    MeetingRuleError,
    NotFound,
    OrganisationNotFound,
    ProofError,
    ReferralNotFound,
    RuleViolation,
    ServiceLinkNotFound,
    StageError,
    StoreError,
    TimeError,
    WorkerNotFound,
)
from caseledger.household import Household
from caseledger.meeting import CaseMeeting
from caseledger.values import (
    Channel,
    CheckDecision,
    CheckMethod,
    ClosureReason,
    ConsentScope,
    ConsultationMethod,
    ConsultationOutcome,
    Level,
    MeetingAttendee,
    MeetingDecision,
    MeetingKind,
    Member,
    NeedDomain,
    NeedRating,
    PersonalData,
    PlannedService,
    RiskRating,
    Role,
    Sector,
    ServiceKind,
    Stage,
    SubDomain,
    Track,
)

__all__ = [
    "AlreadyExists",
    "AuthorityError",
    "Case",
    "CaseClosedError",
    "CaseLedgerError",
    "CaseMeeting",
    "CaseNotFound",
    "Channel",
    "CheckDecision",
    "CheckMethod",
    "CheckpointError",
    "ClosureReason",
    "ConcurrencyError",
    "ConfigurationError",
    "ConsentError",
    "ConsentNotFound",
    "ConsentScope",
    "ConsultationMethod",
    "ConsultationOutcome",
    "CorruptRecord",
    "Household",
    "HouseholdNotFound",
    "IdempotencyConflict",
    "IntegrityError",
    "InvalidInput",
    "Ledger",
    "Level",
    "LogEntry",
    "MeetingAttendee",
    "MeetingDecision",
    "MeetingKind",
    "MeetingNotFound",
    "MeetingRuleError",
    "Member",
    "NeedDomain",
    "NeedRating",
    "NotFound",
    "OrganisationNotFound",
    "PersonalData",
    "PlannedService",
    "ProofError",
    "ReferralNotFound",
    "RiskRating",
    "Role",
    "RuleViolation",
    "Sector",
    "ServiceKind",
    "ServiceLinkNotFound",
    "Stage",
    "StageError",
    "StoreError",
    "SubDomain",
    "TimeError",
    "Track",
    "WorkerNotFound",
    "__version__",
    "command_json_schema",
    "retry",
]
