"""The authority policy: which role of which sector may record what, and read what.

Authority is data, not code. A :class:`Policy` is a versioned document (JSON) that the
deploying authority owns; caseledger ships a default (``policies/default.json``, see
:func:`default_policy`) that follows the domain guide, and a deployment replaces it with
its own file (``Ledger.open(..., policy="policy.json")`` or ``$CASELEDGER_POLICY``).
The version of the policy in force is stored on every event.

How a command is checked (:func:`authorise_command`, run by ``Ledger.execute`` before
anything else is decided):

1. The built-in ``system`` actor may run the commands in ``system_commands`` (by default
   registering organisations and workers, so a new ledger can be set up). A deployment
   that has registered its administrators sets ``"system_commands": []``.
2. Otherwise the acting worker's role and its organisation's sector must match a rule of
   ``commands`` naming the command; when none does, rule ``default-deny`` refuses it.
3. A rule with ``"cases": "related"`` (the default gives it to private partners) also
   needs the case relationship: the worker's organisation holds an active referral or
   service link on the case, **and** a consent of the household with the relationship's
   scope (``provide``) covers its organisation at the command's ``at``.
4. A command that provides a case to an organisation of a ``provision`` rule's sectors
   (referring, linking a service, transferring to a private organisation) needs a
   consent covering that organisation at that moment.

Every refusal is an :class:`~caseledger.errors.AuthorityError` (a missing consent a
:class:`~caseledger.errors.ConsentError`) whose message, ``rule`` and
``policy_version`` name the rule that refused it; nothing is written.

Reads are checked the same way against ``reads`` (:func:`authorise_read`): a rule
says whether the role may see personal data at all, and whether only related cases.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, time
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, Self
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from caseledger import commands as c
from caseledger.case import Case
from caseledger.errors import AuthorityError, ConfigurationError, ConsentError
from caseledger.household import Household
from caseledger.registry import Organisation, Worker
from caseledger.values import ConsentScope, ReferralStatus, Role, Sector

__all__ = [
    "COMMAND_NAMES",
    "DEFAULT_DENY",
    "POLICY_ENV",
    "SYSTEM_ACTOR",
    "AccessReview",
    "CommandRule",
    "Directory",
    "Policy",
    "Provision",
    "ReadGrant",
    "ReadRule",
    "Relationship",
    "Retention",
    "authorise_command",
    "authorise_read",
    "authority_matrix_markdown",
    "default_policy",
    "is_related",
    "load_policy",
]

#: The environment variable naming a policy file to use instead of the default.
POLICY_ENV = "CASELEDGER_POLICY"
#: The built-in actor that sets up a new ledger.
SYSTEM_ACTOR = "system"
#: The rule id of a refusal because no rule allows the command.
DEFAULT_DENY = "default-deny"

#: Every command name a policy may mention (the ``command`` field of each command).
COMMAND_NAMES: tuple[str, ...] = tuple(
    cls.model_fields["command"].default for cls in c.COMMAND_CLASSES
)

RuleId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _known_commands(names: tuple[str, ...], where: str) -> None:
    unknown = [n for n in names if n not in COMMAND_NAMES]
    if unknown:
        msg = f"{where}: unknown command(s) {', '.join(unknown)}; known: {', '.join(COMMAND_NAMES)}"
        raise ValueError(msg)


class CommandRule(_Part):
    """Roles of the given sectors may run these commands (on related cases only, if so)."""

    id: RuleId
    description: str = ""
    roles: tuple[Role, ...] = Field(min_length=1)
    sectors: tuple[Sector, ...] = (Sector.PUBLIC, Sector.PRIVATE)
    cases: Literal["any", "related"] = "any"
    commands: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        _known_commands(self.commands, f"rule {self.id}")
        return self

    def matches(self, role: Role, sector: Sector, command: str) -> bool:
        """Whether this rule speaks about ``command`` for this role and sector."""
        return command in self.commands and role in self.roles and sector in self.sectors


class ReadRule(_Part):
    """Roles of the given sectors may read cases (related ones only, if so)."""

    id: RuleId
    description: str = ""
    roles: tuple[Role, ...] = Field(min_length=1)
    sectors: tuple[Sector, ...] = (Sector.PUBLIC, Sector.PRIVATE)
    cases: Literal["any", "related"] = "any"
    personal: bool = Field(description="whether personal fields are opened for these readers")


class Relationship(_Part):
    """What makes an organisation related to a case, for ``"cases": "related"`` rules."""

    id: RuleId = "related-case"
    referral_statuses: tuple[ReferralStatus, ...] = (ReferralStatus.SENT, ReferralStatus.ACCEPTED)
    service_links: bool = Field(default=True, description="an active service link counts")
    consent_scope: ConsentScope | None = Field(
        default=ConsentScope.PROVIDE,
        description="a consent of this scope must cover the organisation; None: no consent",
    )


class Provision(_Part):
    """Commands that provide a case to an organisation need the household's consent."""

    id: RuleId
    description: str = ""
    scope: ConsentScope = ConsentScope.PROVIDE
    recipient_sectors: tuple[Sector, ...] = (Sector.PRIVATE,)
    commands: dict[str, str] = Field(description="command name -> field naming the recipient")

    @model_validator(mode="after")
    def _check(self) -> Self:
        _known_commands(tuple(self.commands), f"rule {self.id}")
        for name, field in self.commands.items():
            cls = c.COMMAND_CLASSES[COMMAND_NAMES.index(name)]
            if field not in cls.model_fields:
                msg = f"rule {self.id}: command {name} has no field {field!r}"
                raise ValueError(msg)
        return self


class Retention(_Part):
    """When a household's personal data may be erased."""

    id: RuleId = "retention"
    refuse_while_open: bool = Field(default=True, description="no erasure while a case is open")
    min_days_after_closure: int = Field(
        default=0,
        ge=0,
        description="days after the last closure (or discovery, without a case) before erasure",
    )


class AccessReview(_Part):
    """What the monthly access report (접속기록 점검) flags."""

    timezone: str = "Asia/Seoul"
    working_hours: tuple[time, time] = (time(9), time(18))
    working_days: tuple[Annotated[int, Field(ge=1, le=7)], ...] = (1, 2, 3, 4, 5)
    volume_factor: float = Field(default=3.0, gt=0, description="flag > factor x median")
    volume_threshold: int | None = Field(default=None, ge=1, description="flag > this many")
    caseload_exempt_roles: tuple[Role, ...] = (Role.SUPERVISOR, Role.AUDITOR)
    organisation_exempt_roles: tuple[Role, ...] = (Role.AUDITOR,)

    @model_validator(mode="after")
    def _check(self) -> Self:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown timezone {self.timezone!r}"
            raise ValueError(msg) from None
        if self.working_hours[0] >= self.working_hours[1]:
            raise ValueError("working_hours: the start must be before the end")
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The timezone working hours are counted in."""
        return ZoneInfo(self.timezone)


#: command_rules() answers by (policy, role, sector, command): a policy never changes.
_COMMAND_RULES: dict[tuple[int, Role, Sector, str], tuple[Policy, tuple[CommandRule, ...]]] = {}


class Policy(_Part):
    """A versioned authority policy. Load one with :func:`load_policy`."""

    version: Annotated[str, Field(min_length=1, max_length=64)]
    title: str = ""
    description: str = ""
    system_commands: tuple[str, ...] = ("register_organisation", "register_worker")
    commands: tuple[CommandRule, ...]
    reads: tuple[ReadRule, ...]
    relationship: Relationship = Relationship()
    provision: tuple[Provision, ...] = ()
    retention: Retention = Retention()
    access_review: AccessReview = AccessReview()

    @model_validator(mode="after")
    def _check(self) -> Self:
        _known_commands(self.system_commands, "system_commands")
        ids = [r.id for r in self.commands] + [r.id for r in self.reads]
        ids += [r.id for r in self.provision] + [self.relationship.id, self.retention.id]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            msg = f"rule ids must be unique; repeated: {', '.join(duplicates)}"
            raise ValueError(msg)
        if DEFAULT_DENY in ids:
            msg = f"{DEFAULT_DENY!r} is reserved for refusals no rule allows"
            raise ValueError(msg)
        return self

    def command_rules(self, role: Role, sector: Sector, command: str) -> list[CommandRule]:
        """The rules allowing ``command`` to this role and sector (unrestricted ones first)."""
        key = (id(self), role, sector, command)
        hit = _COMMAND_RULES.get(key)
        if hit is not None and hit[0] is self:
            return list(hit[1])
        found = [r for r in self.commands if r.matches(role, sector, command)]
        rules = sorted(found, key=lambda r: r.cases != "any")
        if len(_COMMAND_RULES) >= 4096:
            _COMMAND_RULES.clear()
        _COMMAND_RULES[key] = (self, tuple(rules))
        return rules

    def read_rule(self, role: Role, sector: Sector) -> ReadRule | None:
        """The first read rule for this role and sector, or None."""
        for rule in self.reads:
            if role in rule.roles and sector in rule.sectors:
                return rule
        return None

    def allowed(self, role: Role, sector: Sector) -> dict[str, Literal["any", "related"]]:
        """Every command this role and sector may run, and on which cases."""
        out: dict[str, Literal["any", "related"]] = {}
        for name in COMMAND_NAMES:
            rules = self.command_rules(role, sector, name)
            if rules:
                out[name] = rules[0].cases
        return out


def authority_matrix_markdown(policy: Policy) -> str:
    """The policy's command matrix as a Markdown table (docs/privacy.md shows the default).

    ``✓`` allowed on any case, ``related`` only on related cases with consent, ``–`` refused.
    Each role is shown for the sector its organisations usually have.
    """
    columns = [
        (Role.DONG_OFFICER, Sector.PUBLIC),
        (Role.CASE_MANAGER, Sector.PUBLIC),
        (Role.SUPERVISOR, Sector.PUBLIC),
        (Role.PARTNER_WORKER, Sector.PRIVATE),
        (Role.AUDITOR, Sector.PUBLIC),
        (Role.RESEARCHER, Sector.PRIVATE),
    ]
    allowed = [policy.allowed(role, sector) for role, sector in columns]
    head = " | ".join(f"{role.value} ({sector.value})" for role, sector in columns)
    lines = [f"| command | {head} |", "|---" * (len(columns) + 1) + "|"]
    for name in COMMAND_NAMES:
        cells = [{"any": "✓", "related": "related"}.get(a.get(name, ""), "–") for a in allowed]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    system = ", ".join(f"`{n}`" for n in policy.system_commands) or "nothing"
    lines += ["", f"The built-in `system` actor may run: {system}."]
    return "\n".join(lines) + "\n"


def default_policy() -> Policy:
    """The default policy shipped with caseledger."""
    text = resources.files("caseledger").joinpath("policies/default.json").read_text("utf-8")
    return _parse(text, "the default policy")


def _parse(text: str, where: str) -> Policy:
    try:
        return Policy.model_validate(json.loads(text))
    except json.JSONDecodeError as e:
        msg = f"{where} is not valid JSON: {e}"
        raise ConfigurationError(msg) from None
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(policy)'}: {err['msg']}"
            for err in e.errors()[:5]
        )
        msg = f"{where} is not a valid caseledger policy: {problems}"
        raise ConfigurationError(msg) from None
    except (ValueError, RecursionError) as e:  # a number too long, nesting too deep
        msg = f"{where} is not valid JSON: {e}"
        raise ConfigurationError(msg) from None


def load_policy(source: Policy | str | Path | None = None) -> Policy:
    """A policy: given, read from a JSON file, from ``$CASELEDGER_POLICY``, or the default.

    Raises :class:`~caseledger.errors.ConfigurationError` for a missing file or a
    document that is not a valid policy (unknown roles, commands or fields).
    """
    if isinstance(source, Policy):
        return source
    if source is None:
        source = os.environ.get(POLICY_ENV) or None
        if source is None:
            return default_policy()
    path = Path(source)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        msg = f"cannot read the policy file {path}: {getattr(e, 'strerror', None) or e}"
        raise ConfigurationError(msg) from None
    return _parse(text, f"policy file {path}")


# ---------------------------------------------------------------------------
# Checking commands and reads


class Directory(Protocol):
    """What the checks look up: the ledger's current state (the ledger provides it)."""

    def worker(self, code: str) -> Worker:
        """A registered worker, or :class:`~caseledger.errors.WorkerNotFound`."""
        ...

    def organisation(self, code: str) -> Organisation:
        """A registered organisation, or :class:`~caseledger.errors.OrganisationNotFound`."""
        ...

    def case(self, case_id: UUID) -> Case:
        """A case, or :class:`~caseledger.errors.CaseNotFound`."""
        ...

    def household(self, household_id: UUID) -> Household:
        """A household, or :class:`~caseledger.errors.HouseholdNotFound`."""
        ...

    def cases_of(self, household_id: UUID) -> list[Case]:
        """Every case opened for a household."""
        ...


def is_related(case: Case, organisation: str, relationship: Relationship) -> bool:
    """Whether ``organisation`` holds an active referral or service link on the case."""
    for referral in case.referrals.values():
        if (
            referral.to_organisation == organisation
            and referral.status in relationship.referral_statuses
        ):
            return True
    return relationship.service_links and any(
        link.provider == organisation for link in case.active_links
    )


def _refuse(policy: Policy, rule: str, message: str, *, consent: bool = False) -> AuthorityError:
    text = f"policy {policy.version}, rule {rule}: {message}"
    cls = ConsentError if consent else AuthorityError
    return cls(text, rule=rule, policy_version=policy.version)


def _require_consent(
    policy: Policy,
    rule: str,
    household: Household,
    scope: ConsentScope,
    organisation: str,
    at: datetime,
) -> None:
    if not household.consent_covers(scope, organisation, at):
        message = (
            f"no consent of household {household.id} covers '{scope.value}' to {organisation} "
            f"at {at.isoformat()}; record grant_consent(scopes=['{scope.value}'], "
            f"recipients=['{organisation}']) first, or the consent was withdrawn or expired"
        )
        raise _refuse(policy, rule, message, consent=True)


def _require_relationship(
    policy: Policy,
    rule: CommandRule | ReadRule,
    what: str,
    organisation: str,
    cases: list[Case],
    household: Household,
    at: datetime,
) -> None:
    relationship = policy.relationship
    if not any(is_related(case, organisation, relationship) for case in cases):
        names = ", ".join(str(case.id) for case in cases) or f"household {household.id}"
        message = (
            f"{organisation} holds no active referral or service link on case {names}, "
            f"so it may not {what} (rule {relationship.id})"
        )
        raise _refuse(policy, rule.id, message)
    if relationship.consent_scope is not None:
        _require_consent(policy, rule.id, household, relationship.consent_scope, organisation, at)


def authorise_command(policy: Policy, command: Any, directory: Directory) -> str:
    """Check a command against the policy; return the id of the rule that allows it.

    Raises :class:`~caseledger.errors.AuthorityError` (or
    :class:`~caseledger.errors.ConsentError`) naming the refusing rule, and the
    ``…NotFound`` errors for an unknown actor, case or household.
    """
    name: str = command.command
    if command.by == SYSTEM_ACTOR:
        if name not in policy.system_commands:
            message = (
                f"the built-in 'system' actor may only {', '.join(policy.system_commands) or '-'}"
                f"; give by= a registered worker allowed to {name}"
            )
            raise _refuse(policy, "system-actor", message)
        allowed = "system-actor"
    else:
        worker = directory.worker(command.by)
        sector = directory.organisation(worker.organisation).sector
        rules = policy.command_rules(worker.role, sector, name)
        if not rules:
            message = (
                f"a {worker.role.value} of a {sector.value} organisation ({worker.code} at "
                f"{worker.organisation}) may not {name}"
            )
            raise _refuse(policy, DEFAULT_DENY, message)
        rule = rules[0]
        if rule.cases == "related":
            cases, household = _cases_named(command, directory)
            if household is None:
                message = f"{name} names no case, so the case relationship cannot allow it"
                raise _refuse(policy, rule.id, message)
            _require_relationship(
                policy, rule, name + " on it", worker.organisation, cases, household, command.at
            )
        allowed = rule.id
    for provision in policy.provision:
        field = provision.commands.get(name)
        if field is None:
            continue
        recipient = _field(command, field)
        if recipient is None:
            continue
        if directory.organisation(recipient).sector not in provision.recipient_sectors:
            continue
        _, household = _cases_named(command, directory)
        if household is not None:
            _require_consent(
                policy, provision.id, household, provision.scope, recipient, command.at
            )
    return allowed


def _field(command: Any, name: str) -> Any:
    # A command model's fields are in its __dict__; getattr of a field it lacks goes
    # through the model's slow __getattr__ and an exception.
    values = getattr(command, "__dict__", None)
    if values is not None:
        if name in values:
            return values[name]
        if not name.startswith("_") and not hasattr(type(command), name):
            return None
    return getattr(command, name, None)


def _cases_named(command: Any, directory: Directory) -> tuple[list[Case], Household | None]:
    case_id = _field(command, "case_id")
    if case_id is not None:
        case = directory.case(case_id)
        return [case], directory.household(case.household_id)
    household_id = _field(command, "household_id")
    if household_id is not None:
        return directory.cases_of(household_id), directory.household(household_id)
    return [], None


@dataclass(frozen=True)
class ReadGrant:
    """What a reader may see of one household's data, and how the read looks."""

    rule: str
    personal: bool
    in_caseload: bool
    in_organisation: bool


def authorise_read(
    policy: Policy,
    reader: Worker,
    organisation: Organisation,
    household: Household,
    cases: list[Case],
    at: datetime,
) -> ReadGrant:
    """Check that ``reader`` may read the household (through ``cases``) at ``at``.

    ``cases`` are the cases being read (one for a case history; all of the household's
    for a household). Raises :class:`~caseledger.errors.AuthorityError` or
    :class:`~caseledger.errors.ConsentError` naming the refusing rule.
    """
    rule = policy.read_rule(reader.role, organisation.sector)
    if rule is None:
        message = (
            f"a {reader.role.value} of a {organisation.sector.value} organisation "
            f"({reader.code}) may not read case data"
        )
        raise _refuse(policy, DEFAULT_DENY, message)
    if rule.cases == "related":
        _require_relationship(policy, rule, "read it", organisation.code, cases, household, at)
    # A household without a case yet is in the caseload of the worker who found it.
    in_caseload = any(case.worker == reader.code for case in cases) or (
        not cases and household.discovered_by == reader.code
    )
    in_organisation = (
        any(case.organisation == organisation.code for case in cases)
        or any(is_related(case, organisation.code, policy.relationship) for case in cases)
        or (not cases and household.organisation == organisation.code)
    )
    return ReadGrant(rule.id, rule.personal, in_caseload, in_organisation)
