"""Access records (접속기록): one per read of personal data, chained, inspected monthly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from caseledger import (
    AccessAction,
    AuthorityError,
    ConsentError,
    IntegrityError,
    InvalidInput,
    Ledger,
    PersonalData,
    Reader,
)
from caseledger.access import AccessEntry, terminal
from caseledger.events import HouseholdDiscovered
from tests.conftest import FixedClock
from tests.scenarios import kst, register_dongducheon

OFFICER = "jungang-officer"
NAME = {"name": "정OO", "phone": "010-1111-2222"}


@dataclass(frozen=True)
class Setup:
    household: UUID
    case: UUID
    consent: UUID


def setup(ledger: Ledger) -> Setup:
    """A case of the officer, referred to the mental health welfare centre with consent."""
    register_dongducheon(ledger)
    at = kst(2022, 1, 3, 9)
    ledger.register_organisation("dongducheon-audit", name="감사담당관", sector="public", at=at)
    ledger.register_organisation("welfare-institute", name="연구원", sector="private", at=at)
    ledger.register_worker("auditor-1", organisation="dongducheon-audit", role="auditor", at=at)
    ledger.register_worker("researcher-1", organisation="welfare-institute", role="researcher",
                           at=at)  # fmt: skip
    ledger.register_worker("other-officer", organisation="jungang-dong", role="dong_officer",
                           at=at)  # fmt: skip
    at = kst(2023, 4, 3)
    household = ledger.discover_household(
        dong="중앙동", district="동두천시", channel="outreach_visit", by=OFFICER, at=at,
        members=[{"member_no": 1, "personal": NAME}],
    )  # fmt: skip
    ledger.record_consultation(household, method="visit", outcome="intake", notes="상담 메모",
                               by=OFFICER, at=at)  # fmt: skip
    consent = ledger.grant_consent(household, scopes=["provide"], recipients=["dongducheon-mhwc"],
                                   purpose="정신건강 상담", by=OFFICER, at=at)  # fmt: skip
    case = ledger.open_case(household, by=OFFICER, at=at)
    ledger.assess_needs(case, needs=[{"sub_domain": "health.mental", "urgency": 4}],
                        notes="우울감 호소", by=OFFICER, at=at)  # fmt: skip
    ledger.refer(case, to="dongducheon-mhwc", domain="health", by=OFFICER, at=at)
    return Setup(household, case, consent)


Read = Callable[[Reader, Setup], Any]
READS: dict[str, tuple[Read, AccessAction]] = {
    "history": (lambda r, s: r.history(s.case), AccessAction.VIEW),
    "print": (lambda r, s: r.history(s.case, action="print"), AccessAction.PRINT),
    "download": (
        lambda r, s: r.history(s.case, action="download", reason="사례회의 자료"),
        AccessAction.DOWNLOAD,
    ),
    "household": (lambda r, s: r.household_history(s.household), AccessAction.VIEW),
    "record": (lambda r, s: r.record(s.household, "print", detail="상담일지"), AccessAction.PRINT),
}


@pytest.mark.parametrize("read", sorted(READS))
def test_every_read_of_personal_data_makes_exactly_one_access_record(
    ledger: Ledger, clock: FixedClock, read: str
) -> None:
    s = setup(ledger)
    call, action = READS[read]
    reader = ledger.reader(OFFICER, terminal="10.20.30.40")
    before = len(ledger.access)
    events_before = len(ledger)
    clock.advance(minutes=7)
    result = call(reader, s)
    records = list(ledger.access.records())
    assert len(records) == before + 1
    assert len(ledger) == events_before  # reading records no case event
    last = records[-1]
    assert (last.account, last.organisation, last.role) == (OFFICER, "jungang-dong",
                                                            "dong_officer")  # fmt: skip
    assert (last.terminal, last.subject, last.action) == ("10.20.30.40", s.household, action)
    assert last.at == clock.now
    assert last.in_caseload is True
    assert last.in_organisation is True
    if action is AccessAction.DOWNLOAD:
        assert last.reason == "사례회의 자료"
    if read in ("history", "print", "download"):
        assert last.case_id == s.case
        assert any(getattr(e, "personal", None) for e in result)
    if read == "household":
        assert result[0].members[0].personal == PersonalData(**NAME)
    ledger.access.verify()


def test_commands_that_record_personal_data_are_access_records_too(ledger: Ledger) -> None:
    register_dongducheon(ledger)
    with terminal("PC-12"):
        household = ledger.discover_household(
            dong="중앙동", district="동두천시", channel="hotline_129", by=OFFICER,
            at=kst(2023, 4, 3), members=[{"member_no": 1, "personal": NAME}],
        )  # fmt: skip
    ledger.record_consultation(household, method="phone", outcome="intake", by=OFFICER,
                               at=kst(2023, 4, 3))  # no notes: nothing personal  # fmt: skip
    case = ledger.open_case(household, by=OFFICER, at=kst(2023, 4, 4))
    ledger.assess_needs(case, needs=[{"sub_domain": "safety.risk", "urgency": 2}], notes="메모",
                        by=OFFICER, at=kst(2023, 4, 4))  # fmt: skip
    ledger.reassess(case, needs=[{"sub_domain": "safety.risk", "urgency": 3}], notes="변경",
                    by=OFFICER, at=kst(2023, 4, 5))  # fmt: skip
    records = list(ledger.access.records())
    assert [(r.action, r.detail) for r in records] == [
        (AccessAction.INPUT, "HouseholdDiscovered"),
        (AccessAction.INPUT, "NeedsAssessed"),
        (AccessAction.CHANGE, "NeedsReassessed"),
    ]
    assert records[0].terminal == "PC-12"
    assert records[1].terminal.startswith("host:")
    assert {r.subject for r in records} == {household}
    assert records[1].case_id == case
    assert {r.account for r in records} == {OFFICER}


def test_a_refused_command_leaves_no_access_record(memory_ledger: Ledger) -> None:
    s = setup(memory_ledger)
    before = len(memory_ledger.access)
    with pytest.raises(AuthorityError):
        memory_ledger.record_supervision(s.case, notes="메모", by=OFFICER, at=kst(2023, 4, 5))
    assert len(memory_ledger.access) == before


def test_an_erasure_is_recorded_as_a_deletion(memory_ledger: Ledger) -> None:
    register_dongducheon(memory_ledger)
    household = memory_ledger.discover_household(
        dong="중앙동", district="동두천시", channel="hotline_129", by=OFFICER, at=kst(2023, 4, 3),
        members=[{"member_no": 1, "personal": NAME}],
    )  # fmt: skip
    memory_ledger.erase_household(household, reason="동의 철회", by="jungang-lead",
                                  at=kst(2023, 4, 10))  # fmt: skip
    last = list(memory_ledger.access.records())[-1]
    assert (last.action, last.account, last.subject) == (AccessAction.DELETE, "jungang-lead",
                                                         household)  # fmt: skip


def test_an_auditor_reads_everything_and_every_read_is_recorded(memory_ledger: Ledger) -> None:
    s = setup(memory_ledger)
    reader = memory_ledger.reader("auditor-1", terminal="audit-room")
    events = reader.household_history(s.household)
    assert events[0].members[0].personal == PersonalData(**NAME)  # type: ignore[attr-defined]
    reader.history(s.case)
    reads = [r for r in memory_ledger.access.records() if r.account == "auditor-1"]
    assert len(reads) == 2
    assert {(r.in_caseload, r.in_organisation) for r in reads} == {(False, False)}


def test_a_researcher_never_sees_personal_data(memory_ledger: Ledger) -> None:
    s = setup(memory_ledger)
    before = len(memory_ledger.access)
    reader = memory_ledger.reader("researcher-1", terminal="lab")
    events = reader.history(s.case) + reader.household_history(s.household)  # type: ignore[operator]
    assert all(getattr(e, "personal", None) is None for e in events)
    discovered = next(e for e in events if isinstance(e, HouseholdDiscovered))
    assert discovered.members[0].personal is None
    assert discovered.members[0].member_no == 1
    redacted = [e for e in events if e.redaction is not None]
    assert redacted
    assert {e.redaction.reason for e in redacted if e.redaction} == {"withheld"}
    assert len(memory_ledger.access) == before  # nothing personal was read
    with pytest.raises(AuthorityError, match="may not process personal data"):
        reader.record(s.household, "download", reason="분석")


def test_a_partner_reads_a_case_only_while_related_and_consented(
    memory_ledger: Ledger, clock: FixedClock
) -> None:
    ledger = memory_ledger
    s = setup(ledger)
    clock.now = kst(2023, 4, 4, 10)
    events = ledger.reader("mhwc-worker", terminal="mhwc-pc").history(s.case)
    assert any(getattr(e, "personal", None) for e in events)
    before = len(ledger.access)
    with pytest.raises(AuthorityError, match="holds no active referral"):
        ledger.reader("senior-worker", terminal="senior-pc").history(s.case)
    clock.now = kst(2023, 4, 4, 12)
    ledger.withdraw_consent(s.household, s.consent, by=OFFICER, at=kst(2023, 4, 4, 11))
    with pytest.raises(ConsentError):
        ledger.reader("mhwc-worker", terminal="mhwc-pc").history(s.case)
    with pytest.raises(ConsentError):
        ledger.reader("mhwc-worker", terminal="mhwc-pc").household_history(s.household)
    assert len(ledger.access) == before
    # The history stays for the public side, and the partner's earlier read stays recorded.
    assert len(ledger.reader(OFFICER, terminal="t").history(s.case)) == len(events)
    assert [r.account for r in ledger.access.records()].count("mhwc-worker") == 1


def test_a_consent_that_expires_ends_the_partners_reads(
    memory_ledger: Ledger, clock: FixedClock
) -> None:
    ledger = memory_ledger
    s = setup(ledger)
    ledger.withdraw_consent(s.household, s.consent, by=OFFICER, at=kst(2023, 4, 3, 11))
    ledger.grant_consent(s.household, scopes=["provide"], recipients=["dongducheon-mhwc"],
                         purpose="상담", expires_at=kst(2023, 5, 1), by=OFFICER,
                         at=kst(2023, 4, 3, 12))  # fmt: skip
    clock.now = kst(2023, 4, 30, 17)
    ledger.reader("mhwc-worker", terminal="t").history(s.case)
    clock.now = kst(2023, 5, 1, 10)  # the moment it expires
    with pytest.raises(ConsentError, match="withdrawn or expired"):
        ledger.reader("mhwc-worker", terminal="t").history(s.case)


def test_a_download_needs_a_reason_and_a_read_a_read_action(memory_ledger: Ledger) -> None:
    s = setup(memory_ledger)
    reader = memory_ledger.reader(OFFICER, terminal="t")
    before = len(memory_ledger.access)
    with pytest.raises(InvalidInput, match="needs a stated reason"):
        reader.history(s.case, action="download")
    with pytest.raises(InvalidInput, match="not an access action"):
        reader.history(s.case, action="peek")
    with pytest.raises(InvalidInput, match="a read is one of"):
        reader.history(s.case, action="delete")
    with pytest.raises(InvalidInput, match="terminal"):
        memory_ledger.reader(OFFICER, terminal="  ")
    assert len(memory_ledger.access) == before


def test_reads_outside_the_caseload_are_marked(memory_ledger: Ledger) -> None:
    s = setup(memory_ledger)
    memory_ledger.reader("other-officer", terminal="t").history(s.case)
    memory_ledger.reader("hwst-manager", terminal="t").history(s.case)
    other, manager = list(memory_ledger.access.records())[-2:]
    assert (other.in_caseload, other.in_organisation) == (False, True)
    assert (manager.in_caseload, manager.in_organisation) == (False, False)


# ---------------------------------------------------------------------------
# The chain


def _tamper(ledger: Ledger, sql: str, params: tuple[Any, ...]) -> None:
    with ledger.store.transaction() as tx:
        tx.execute(sql, params)


def test_the_chain_detects_an_edited_a_removed_and_a_forged_record(ledger: Ledger) -> None:
    s = setup(ledger)
    reader = ledger.reader(OFFICER, terminal="t")
    for _ in range(3):
        reader.history(s.case)
    head = ledger.access.verify()
    assert head == ledger.access.head()
    assert head.size == len(ledger.access) == 6  # 3 inputs by commands + 3 reads
    _tamper(ledger, "UPDATE caseledger_access SET terminal = ? WHERE seq = ?", ("elsewhere", 5))
    with pytest.raises(IntegrityError, match="access record 5 does not match"):
        ledger.access.verify()
    _tamper(ledger, "UPDATE caseledger_access SET terminal = ? WHERE seq = ?", ("t", 5))
    assert ledger.access.verify() == head
    _tamper(
        ledger,
        "INSERT INTO caseledger_access SELECT seq + 1, at, account, organisation, role, "
        "terminal, subject_kind, subject, case_id, action, reason, in_caseload, "
        "in_organisation, detail, hash FROM caseledger_access WHERE seq = ?",
        (6,),
    )
    with pytest.raises(IntegrityError, match="access record 7 does not match"):
        ledger.access.verify()
    _tamper(ledger, "DELETE FROM caseledger_access WHERE seq = ?", (5,))
    with pytest.raises(IntegrityError, match="access record 5 is missing"):
        ledger.access.verify()


def test_the_chain_detects_a_changed_flag(memory_ledger: Ledger) -> None:
    s = setup(memory_ledger)
    memory_ledger.reader("other-officer", terminal="t").history(s.case)
    _tamper(memory_ledger, "UPDATE caseledger_access SET in_caseload = 1 WHERE seq = ?",
            (len(memory_ledger.access),))  # fmt: skip
    with pytest.raises(IntegrityError):
        memory_ledger.access.verify()


# ---------------------------------------------------------------------------
# The monthly report, on a small hand-made month


def entry(at: datetime, account: str, action: str = "view", **kw: Any) -> AccessEntry:
    org, role = {
        "kim": ("jungang-dong", "dong_officer"),
        "lee": ("jungang-dong", "dong_officer"),
        "park": ("jungang-dong", "supervisor"),
        "choi": ("dongducheon-mhwc", "partner_worker"),
        "audit": ("dongducheon-audit", "auditor"),
    }[account]
    base: dict[str, Any] = {"in_caseload": True, "in_organisation": True} | kw
    return AccessEntry(at=at, account=account, organisation=org, role=role, terminal="pc",
                       subject=HOUSEHOLD, action=AccessAction(action), **base)  # fmt: skip


HOUSEHOLD = uuid4()


def test_the_access_report_of_a_hand_made_month(memory_ledger: Ledger) -> None:
    day = lambda d, h, m=0: datetime(2022, 2, d, h, m, tzinfo=kst(2022, 2, 1).tzinfo)  # noqa: E731
    entries = [entry(day(d, 10), "kim") for d in (3, 4, 7, 8, 9, 10, 11, 14)]  # 8 reads
    entries += [entry(day(3, 11), "lee"), entry(day(4, 11), "lee")]
    entries += [entry(day(3, 12), "park"), entry(day(4, 12), "park", in_caseload=False)]
    entries += [
        entry(day(5, 10), "lee"),  # a Saturday
        entry(day(7, 18, 30), "lee", in_caseload=False),  # after hours, outside caseload
        entry(day(8, 8, 59), "choi", in_organisation=False),  # before hours, other org
        entry(day(9, 14), "kim", "download", reason="통합사례회의 자료"),
        entry(day(10, 14), "kim", "input"),  # not a read
        entry(day(11, 14), "audit", in_caseload=False, in_organisation=False),  # exempt
        entry(datetime(2022, 1, 31, 14, tzinfo=day(1, 1).tzinfo), "lee"),  # January
        entry(datetime(2022, 3, 1, 0, 1, tzinfo=day(1, 1).tzinfo), "lee"),  # March
    ]
    memory_ledger.access.append(entries)
    report = memory_ledger.access_report("2022-02")
    assert report.records == len(entries) - 2
    # kim 9 reads, lee 4, park 2, choi 1, audit 1: median 2, 3 x median = 6.
    assert report.reads_per_account == {"kim": 9, "lee": 4, "park": 2, "choi": 1, "audit": 1}
    assert report.median_reads == 2
    kst_zone = day(1, 1).tzinfo
    found = [
        (f.check, f.account, f.record.at.astimezone(kst_zone).day if f.record else None)
        for f in report.findings
    ]
    assert found == [
        ("download", "kim", 9),
        ("outside_caseload", "lee", 7),
        ("outside_organisation", "choi", 8),
        ("outside_hours", "lee", 5),
        ("outside_hours", "lee", 7),
        ("outside_hours", "choi", 8),
        ("volume", "kim", None),
    ]
    assert report.findings[0].note == "reason: 통합사례회의 자료"
    rows = report.rows()
    assert rows[0]["reason"] == "통합사례회의 자료"
    assert rows[0]["action"] is AccessAction.DOWNLOAD
    assert rows[3]["at"].isoformat() == "2022-02-05T10:00:00+09:00"
    data = report.to_dict()
    assert data["month"] == "2022-02"
    assert data["access_log"]["size"] == len(entries)
    assert len(data["findings"]) == 7


def test_the_volume_threshold_is_configurable(memory_ledger: Ledger) -> None:
    policy = memory_ledger.policy
    review = policy.access_review.model_copy(update={"volume_threshold": 2, "volume_factor": 100})
    memory_ledger.policy = policy.model_copy(update={"access_review": review})
    day = kst(2022, 2, 3, 10)
    memory_ledger.access.append([entry(day, "kim"), entry(day, "kim"), entry(day, "kim")])
    found = memory_ledger.access_report("2022-02").findings
    assert [(f.check, f.account, f.note) for f in found] == [
        ("volume", "kim", "3 reads > threshold 2")
    ]


def test_a_report_of_a_tampered_log_refuses(memory_ledger: Ledger) -> None:
    memory_ledger.access.append([entry(kst(2022, 2, 3, 10), "kim")])
    _tamper(memory_ledger, "UPDATE caseledger_access SET account = ? WHERE seq = 1", ("lee",))
    with pytest.raises(IntegrityError):
        memory_ledger.access_report("2022-02")
    with pytest.raises(InvalidInput, match="not a month"):
        memory_ledger.access_report("February")
