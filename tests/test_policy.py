"""The authority policy: every role x every command, consent before provision, bootstrap."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from caseledger import AuthorityError, CaseLedgerError, ConfigurationError, ConsentError, Ledger
from caseledger.application import DEFAULT_POLICY_VERSION
from caseledger.commands import command_adapter
from caseledger.policy import (
    COMMAND_NAMES,
    DEFAULT_DENY,
    POLICY_ENV,
    Policy,
    default_policy,
    load_policy,
)
from caseledger.values import Role, Sector
from tests.conftest import FixedClock
from tests.scenarios import kst, register_dongducheon

#: One worker per role, and the sector of its organisation.
ACTORS: dict[Role, tuple[str, Sector]] = {
    Role.DONG_OFFICER: ("jungang-officer", Sector.PUBLIC),
    Role.CASE_MANAGER: ("hwst-manager", Sector.PUBLIC),
    Role.SUPERVISOR: ("jungang-lead", Sector.PUBLIC),
    Role.PARTNER_WORKER: ("mhwc-worker", Sector.PRIVATE),
    Role.AUDITOR: ("auditor-1", Sector.PUBLIC),
    Role.RESEARCHER: ("researcher-1", Sector.PRIVATE),
}
OFFICER = "jungang-officer"
AT = kst(2022, 10, 20)


def register_world(ledger: Ledger) -> None:
    """Dongducheon's organisations and workers, plus an auditor and a researcher."""
    register_dongducheon(ledger)
    at = kst(2022, 1, 3, 9)
    ledger.register_organisation("dongducheon-audit", name="동두천시 감사담당관",
                                 sector="public", kind="audit_office", at=at)  # fmt: skip
    ledger.register_organisation("welfare-institute", name="복지정책연구원", sector="private",
                                 kind="research_institute", at=at)  # fmt: skip
    ledger.register_worker("auditor-1", organisation="dongducheon-audit", role="auditor", at=at)
    ledger.register_worker(
        "researcher-1", organisation="welfare-institute", role="researcher", at=at
    )


@dataclass(frozen=True)
class World:
    household: UUID
    case: UUID
    meeting: UUID
    referral: UUID
    link: UUID
    consent: UUID


def build_world(ledger: Ledger) -> World:
    """A selected case referred to, and linked with, the mental health welfare centre."""
    register_world(ledger)
    at = kst(2022, 10, 4)
    household = ledger.discover_household(
        dong="중앙동", district="동두천시", channel="outreach_visit", by=OFFICER, at=at,
        members=[{"member_no": 1, "birth_year": 1950, "personal": {"name": "최OO"}}],
    )  # fmt: skip
    ledger.record_consultation(household, method="visit", outcome="intake", by=OFFICER, at=at)
    consent = ledger.grant_consent(household, scopes=["provide"], purpose="통합사례관리",
                                   recipients=["dongducheon-mhwc"], by=OFFICER, at=at)  # fmt: skip
    case = ledger.open_case(household, by=OFFICER, at=at)
    ledger.assess_needs(case, needs=[{"sub_domain": "health.mental", "urgency": 4}], by=OFFICER,
                        at=at)  # fmt: skip
    meeting = ledger.hold_meeting(kind="internal", host="jungang-dong", agenda=[case],
                                  decisions={case: "select"}, by="jungang-lead", at=at)  # fmt: skip
    ledger.classify(case, meeting=meeting, track="case_managed", criteria_version="v", by=OFFICER,
                    at=at)  # fmt: skip
    referral = ledger.refer(case, to="dongducheon-mhwc", domain="health", by=OFFICER, at=at)
    link = ledger.link_service(case, service="정신건강 상담", provider="dongducheon-mhwc",
                               domain="health", by=OFFICER, at=at)  # fmt: skip
    return World(household, case, meeting, referral.referral_id, link.link_id, consent)  # type: ignore[attr-defined]


def payload(name: str, w: World) -> dict[str, Any]:
    """Fields of a plausible command of each kind on the world's case."""
    needs = [{"sub_domain": "health.mental", "urgency": 3}]
    plan = [{"domain": "health", "service": "방문간호", "provider": "jungang-dong",
             "sector": "public", "kind": "service"}]  # fmt: skip
    fields: dict[str, dict[str, Any]] = {
        "register_organisation": {"code": "new-org", "name": "새 기관", "sector": "public"},
        "register_worker": {
            "code": "new-worker",
            "organisation": "jungang-dong",
            "role": "dong_officer",
        },
        "discover_household": {
            "dong": "중앙동",
            "district": "동두천시",
            "channel": "partner_referral",
        },
        "record_consultation": {
            "household_id": w.household,
            "method": "visit",
            "outcome": "intake",
        },
        "open_case": {"household_id": w.household},
        "assess_needs": {"case_id": w.case, "needs": needs},
        "hold_meeting": {"kind": "internal", "host": "jungang-dong", "agenda": [w.case]},
        "classify": {
            "case_id": w.case,
            "meeting_id": w.meeting,
            "track": "case_managed",
            "criteria_version": "v",
        },
        "agree_plan": {"case_id": w.case, "services": plan},
        "link_service": {
            "case_id": w.case,
            "service": "집단상담",
            "provider": "dongducheon-mhwc",
            "domain": "health",
        },
        "refer": {"case_id": w.case, "to": "dongducheon-hwst", "domain": "health"},
        "respond_to_referral": {"case_id": w.case, "referral_id": w.referral, "accept": True},
        "complete_referral": {"case_id": w.case, "referral_id": w.referral},
        "revoke_referral": {"case_id": w.case, "referral_id": w.referral},
        "check_service": {
            "case_id": w.case,
            "link_id": w.link,
            "method": "visit",
            "progress": 50,
        },
        "reassess": {"case_id": w.case, "needs": needs},
        "record_supervision": {"case_id": w.case},
        "close_case": {"case_id": w.case, "meeting_id": w.meeting, "reason": "goal_achieved"},
        "follow_up": {"case_id": w.case},
        "reopen_case": {"case_id": w.case},
        "transfer_case": {
            "case_id": w.case,
            "to_organisation": "dongducheon-hwst",
            "to_worker": "hwst-manager",
        },
        "grant_consent": {"household_id": w.household, "scopes": ["use"], "purpose": "사례관리"},
        "withdraw_consent": {"household_id": w.household, "consent_id": w.consent},
        "erase_household": {"household_id": w.household, "reason": "보존기간 경과"},
    }
    return {"command": name, **fields[name]}


def command(name: str, w: World, by: str) -> Any:
    return command_adapter().validate_python({**payload(name, w), "by": by, "at": AT})


class _Rollback(Exception):
    pass


def policy_refusal(ledger: Ledger, cmd: Any) -> AuthorityError | None:
    """Execute ``cmd`` in a batch that is rolled back; the policy's refusal, if any."""
    try:
        with ledger.batch():
            ledger.execute(cmd)
            raise _Rollback
    except _Rollback:
        return None
    except AuthorityError as e:
        return e if e.policy_version is not None else None
    except CaseLedgerError:
        return None  # refused by a domain rule, after the policy allowed it


@pytest.fixture
def world_ledger(clock: FixedClock) -> Iterator[tuple[Ledger, World]]:
    with Ledger.open(":memory:", clock=clock) as ledger:
        yield ledger, build_world(ledger)


def test_every_command_has_a_payload_in_this_test() -> None:
    w = World(*(UUID(int=i) for i in range(6)))
    assert {payload(n, w)["command"] for n in COMMAND_NAMES} == set(COMMAND_NAMES)


def test_the_authority_matrix_is_what_the_default_policy_file_says(
    world_ledger: tuple[Ledger, World],
) -> None:
    """Every role x every command, through execute(): allowed or refused as the file says."""
    ledger, w = world_ledger
    policy = default_policy()
    assert ledger.policy == policy
    matrix: dict[tuple[Role, str], bool] = {}
    for role, (actor, sector) in ACTORS.items():
        allowed = policy.allowed(role, sector)
        for name in COMMAND_NAMES:
            before = len(ledger)
            refusal = policy_refusal(ledger, command(name, w, actor))
            assert len(ledger) == before
            matrix[role, name] = refusal is None
            assert (refusal is None) == (name in allowed), (role.value, name, refusal)
            if refusal is not None:
                assert refusal.rule == DEFAULT_DENY
                assert refusal.policy_version == DEFAULT_POLICY_VERSION
                assert DEFAULT_POLICY_VERSION in str(refusal)
                assert DEFAULT_DENY in str(refusal)
    # Hand-written spot checks, independent of the policy file.
    spot = {
        (Role.DONG_OFFICER, "open_case"): True,
        (Role.DONG_OFFICER, "record_supervision"): False,
        (Role.DONG_OFFICER, "erase_household"): False,
        (Role.CASE_MANAGER, "record_supervision"): True,
        (Role.CASE_MANAGER, "erase_household"): False,
        (Role.SUPERVISOR, "erase_household"): True,
        (Role.SUPERVISOR, "close_case"): True,
        (Role.PARTNER_WORKER, "open_case"): False,
        (Role.PARTNER_WORKER, "classify"): False,
        (Role.PARTNER_WORKER, "close_case"): False,
        (Role.PARTNER_WORKER, "revoke_referral"): False,
        (Role.PARTNER_WORKER, "check_service"): True,
        (Role.PARTNER_WORKER, "respond_to_referral"): True,
        (Role.PARTNER_WORKER, "discover_household"): True,
        (Role.RESEARCHER, "discover_household"): False,
    }
    spot |= {(Role.AUDITOR, name): False for name in COMMAND_NAMES}
    for key, expected in spot.items():
        assert matrix[key] is expected, key
    # 3 public roles x 20 casework commands, supervision x 2, the lead's registry and
    # erasure, the partner's discovery and its 4 commands on related cases.
    assert sum(matrix.values()) == 3 * 20 + 2 + 2 + 1 + 4


def test_refused_commands_raise_through_the_verbs_too(world_ledger: tuple[Ledger, World]) -> None:
    ledger, w = world_ledger
    before = len(ledger)
    with pytest.raises(AuthorityError, match="may not close_case") as info:
        ledger.close_case(w.case, meeting=w.meeting, reason="goal_achieved", by="mhwc-worker",
                          at=AT)  # fmt: skip
    assert info.value.rule == DEFAULT_DENY
    with pytest.raises(AuthorityError, match="may not record_supervision"):
        ledger.record_supervision(w.case, by=OFFICER, at=AT)
    assert len(ledger) == before
    assert ledger.authorise(command("record_supervision", w, "jungang-lead")) == (
        "public-supervision"
    )


def test_the_sector_of_the_organisation_counts_not_only_the_role(clock: FixedClock) -> None:
    with Ledger.open(":memory:", clock=clock) as ledger:
        w = build_world(ledger)
        ledger.register_worker("odd-officer", organisation="dongducheon-senior",
                               role="dong_officer", at=kst(2022, 1, 4))  # fmt: skip
        with pytest.raises(AuthorityError, match="dong_officer of a private organisation"):
            ledger.execute(command("record_consultation", w, "odd-officer"))


def test_a_partner_acts_only_on_related_cases_while_consent_covers_it(clock: FixedClock) -> None:
    with Ledger.open(":memory:", clock=clock) as ledger:
        w = build_world(ledger)
        at = kst(2022, 10, 5)
        # Related (referral and link) and consented: allowed.
        ledger.check_service(w.case, link_id=w.link, method="visit", progress=20,
                             by="mhwc-worker", at=at)  # fmt: skip
        # The senior centre has neither a referral nor a link on the case.
        with pytest.raises(AuthorityError, match="holds no active referral") as info:
            ledger.check_service(w.case, link_id=w.link, method="visit", progress=20,
                                 by="senior-worker", at=at)  # fmt: skip
        assert info.value.rule == "partner-service"
        assert not isinstance(info.value, ConsentError)
        # After the household withdraws its consent, the partner loses the case.
        ledger.withdraw_consent(w.household, w.consent, by=OFFICER, at=kst(2022, 10, 6))
        before = len(ledger)
        with pytest.raises(ConsentError, match="no consent of household") as refused:
            ledger.check_service(w.case, link_id=w.link, method="visit", progress=30,
                                 by="mhwc-worker", at=kst(2022, 10, 7))  # fmt: skip
        assert refused.value.rule == "partner-service"
        assert len(ledger) == before
        # ... but the history stays, and a check dated before the withdrawal still counts.
        assert sum(1 for e in ledger.history(w.case) if e.actor == "mhwc-worker") == 1
        ledger.check_service(w.case, link_id=w.link, method="visit", progress=25,
                             by="mhwc-worker", at=kst(2022, 10, 5, 16))  # fmt: skip


def test_a_consent_that_expired_no_longer_covers_the_partner(clock: FixedClock) -> None:
    with Ledger.open(":memory:", clock=clock) as ledger:
        w = build_world(ledger)
        ledger.withdraw_consent(w.household, w.consent, by=OFFICER, at=kst(2022, 10, 4, 11))
        ledger.grant_consent(w.household, scopes=["provide"], recipients=["dongducheon-mhwc"],
                             purpose="통합사례관리", expires_at=kst(2022, 11, 1), by=OFFICER,
                             at=kst(2022, 10, 4, 12))  # fmt: skip
        ledger.check_service(w.case, link_id=w.link, method="phone", progress=10,
                             by="mhwc-worker", at=kst(2022, 10, 31))  # fmt: skip
        with pytest.raises(ConsentError, match="withdrawn or expired"):
            ledger.check_service(w.case, link_id=w.link, method="phone", progress=10,
                                 by="mhwc-worker", at=kst(2022, 11, 1))  # fmt: skip


@pytest.mark.parametrize(
    ("scopes", "recipients", "covered"),
    [
        (["provide"], ["dongducheon-senior"], True),
        (["provide"], [], True),  # no recipients named: any organisation
        (["collect", "use"], ["dongducheon-senior"], False),
        (["provide"], ["dongducheon-mhwc"], False),
    ],
)
def test_referring_to_a_private_organisation_needs_a_covering_consent(
    clock: FixedClock, scopes: list[str], recipients: list[str], covered: bool
) -> None:
    with Ledger.open(":memory:", clock=clock) as ledger:
        w = build_world(ledger)
        ledger.withdraw_consent(w.household, w.consent, by=OFFICER, at=kst(2022, 10, 5))
        at = kst(2022, 10, 6)
        ledger.grant_consent(w.household, scopes=scopes, recipients=recipients, purpose="의뢰",
                             by=OFFICER, at=at)  # fmt: skip
        calls = [
            lambda: ledger.refer(
                w.case, to="dongducheon-senior", domain="daily_living", by=OFFICER, at=at
            ),
            lambda: ledger.link_service(
                w.case,
                service="도시락",
                provider="dongducheon-senior",
                domain="daily_living",
                by=OFFICER,
                at=at,
            ),
            lambda: ledger.transfer_case(
                w.case,
                to_organisation="dongducheon-senior",
                to_worker="senior-worker",
                by=OFFICER,
                at=at,
            ),
        ]
        for call in calls:
            if covered:
                call()
            else:
                before = len(ledger)
                with pytest.raises(ConsentError, match="dongducheon-senior") as info:
                    call()
                assert info.value.rule == "consent-before-provision"
                assert len(ledger) == before
        # Public organisations need no consent for provision.
        ledger.refer(w.case, to="dongducheon-hwst", domain="health", by=OFFICER, at=at)


def test_the_system_actor_sets_up_a_ledger_and_a_deployment_can_close_that(
    tmp_path: Path, clock: FixedClock
) -> None:
    with Ledger.open(":memory:", clock=clock) as ledger:
        register_world(ledger)
        with pytest.raises(AuthorityError, match="'system' actor may only") as info:
            ledger.discover_household(dong="중앙동", district="동두천시",
                                      channel="hotline_129", by="system", at=AT)  # fmt: skip
        assert info.value.rule == "system-actor"
    data = json.loads(default_policy().model_dump_json())
    data |= {"version": "locked-1", "system_commands": []}
    path = tmp_path / "locked.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with Ledger.open(":memory:", clock=clock) as ledger:
        register_world(ledger)  # set up under the default policy
    with (
        Ledger.open(":memory:", clock=clock, policy=path) as ledger,
        pytest.raises(AuthorityError, match="'system' actor may only -"),
    ):
        ledger.register_organisation("x", name="x", sector="public", at=AT)


def test_the_version_of_the_policy_in_force_is_stored_on_every_event(
    tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.loads(default_policy().model_dump_json()) | {"version": "dongducheon-2023.2"}
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with Ledger.open(":memory:", clock=clock, policy=path) as ledger:
        build_world(ledger)
        versions = {entry.event.policy_version for entry in ledger.events()}
        assert versions == {"dongducheon-2023.2"}
        assert ledger.policy_version == "dongducheon-2023.2"
    monkeypatch.setenv(POLICY_ENV, str(path))
    with Ledger.open(":memory:", clock=clock) as ledger:
        assert ledger.policy_version == "dongducheon-2023.2"
    monkeypatch.delenv(POLICY_ENV)
    with Ledger.open(":memory:", clock=clock) as ledger:
        assert ledger.policy_version == DEFAULT_POLICY_VERSION == default_policy().version


def _broken(change: Any) -> str:
    data = json.loads(default_policy().model_dump_json())
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON"),
        (_broken(lambda d: d["commands"][0]["commands"].append("fly")), "unknown command"),
        (_broken(lambda d: d["commands"][0]["roles"].append("mayor")), "roles"),
        (_broken(lambda d: d["reads"].append(d["reads"][0])), "repeated: read-public"),
        (_broken(lambda d: d["commands"][0].update(id=DEFAULT_DENY)), "reserved"),
        (_broken(lambda d: d["provision"][0]["commands"].update(refer="nowhere")), "no field"),
        (_broken(lambda d: d["access_review"].update(timezone="Mars/Base")), "timezone"),
        (_broken(lambda d: d.update(surprise=1)), "surprise"),
    ],
)
def test_a_bad_policy_is_a_configuration_error(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "policy.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=problem):
        load_policy(path)


def test_a_missing_policy_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read the policy file"):
        Ledger.open(":memory:", policy=tmp_path / "nope.json")


def test_a_policy_object_can_be_given_directly(clock: FixedClock) -> None:
    policy = default_policy().model_copy(update={"version": "inline-1"})
    assert isinstance(policy, Policy)
    with Ledger.open(":memory:", clock=clock, policy=policy) as ledger:
        register_dongducheon(ledger)
        assert {e.event.policy_version for e in ledger.events()} == {"inline-1"}


def test_every_command_is_checked_on_every_backend(ledger: Ledger) -> None:
    w = build_world(ledger)
    before = len(ledger)
    at: datetime = AT
    with pytest.raises(AuthorityError, match=DEFAULT_DENY):
        ledger.open_case(w.household, by="mhwc-worker", at=at)
    with pytest.raises(ConsentError):
        ledger.refer(w.case, to="dongducheon-senior", domain="health", by=OFFICER, at=at)
    assert len(ledger) == before


def test_the_privacy_page_shows_the_default_policy_as_it_is() -> None:
    from caseledger.policy import authority_matrix_markdown

    page = (Path(__file__).resolve().parent.parent / "docs" / "privacy.md").read_text("utf-8")
    assert authority_matrix_markdown(default_policy()) in page, (
        "docs/privacy.md is stale: paste authority_matrix_markdown(default_policy()) into it"
    )
