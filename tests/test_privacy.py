"""Personal fields sealed per household; master keys; erasure that really destroys."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from uuid import UUID, uuid4

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from caseledger import (
    ConfigurationError,
    CorruptRecord,
    Ledger,
    PersonalData,
    RetentionError,
    RuleViolation,
)
from caseledger.codec import decode, decode_fields, encode, sealed_aad
from caseledger.events import HouseholdDiscovered, HouseholdErased
from caseledger.integrity import generate_key, merkle_root
from caseledger.keystore import (
    MASTER_KEY_ENV,
    MASTER_KEY_FILE_ENV,
    create_key_file,
    key_file_beside,
    master_key_text,
)
from caseledger.policy import default_policy
from caseledger.store import StoredEvent
from tests.conftest import MASTER_KEY, FixedClock
from tests.scenarios import kst, register_dongducheon

OFFICER = "jungang-officer"
LEAD = "jungang-lead"

#: Personal values planted in the ledger; none may ever be found in plain text.
PLANTED = {
    "name": "홍길동시험이름",
    "rrn": "900101-1234567",
    "phone": "010-9876-5432",
    "address": "동두천시 중앙로 123 시험주소",
    "health": "우울증 치료 중 PLANTED-HEALTH",
}
PLANTED_NOTES = "가정폭력 피해 상담 PLANTED-NOTES"
PLANTED_WORKER = "김담당시험이름"


@pytest.fixture(autouse=True)
def _no_master_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.delenv(MASTER_KEY_FILE_ENV, raising=False)


# ---------------------------------------------------------------------------
# The codec's seam: a sealer and an opener


class FixedSealer:
    """A Sealer and Opener with one AES-GCM key for every owner (for codec tests)."""

    def __init__(self) -> None:
        self.aead = AESGCM(bytes(32))
        self.owners: list[UUID] = []

    def seal(self, owner: UUID, plaintext: bytes, aad: bytes) -> bytes:
        self.owners.append(owner)
        nonce = os.urandom(12)
        return nonce + self.aead.encrypt(nonce, plaintext, aad)

    def open(self, owner: UUID, sealed: bytes, aad: bytes) -> bytes | Literal["erased", "withheld"]:
        try:
            return self.aead.decrypt(sealed[:12], sealed[12:], aad)
        except InvalidTag:
            raise CorruptRecord("does not open") from None


def discovered(personal: PersonalData | None, version: int = 1) -> HouseholdDiscovered:
    return HouseholdDiscovered(
        originator_id=UUID(int=7), originator_version=version, occurred_at=kst(2022, 1, 5),
        recorded_at=kst(2022, 1, 5), actor=OFFICER, organisation="jungang-dong",
        policy_version="p", taxonomy_version="t", dong="중앙동", district="동두천시",
        channel="outreach_visit", personal=personal,
        members=({"member_no": 1, "personal": personal}, {"member_no": 2}),
    )  # fmt: skip


texts = st.text(min_size=1, max_size=40) | st.none()


@settings(max_examples=60, deadline=None)
@given(
    st.builds(
        PersonalData,
        name=texts,
        rrn=st.none() | st.from_regex(r"\d{6}-\d{7}", fullmatch=True),
        phone=texts,
        address=texts,
        notes=texts,
        health=texts,
    )
)
def test_personal_fields_round_trip_sealed_and_never_in_plain_text(personal: PersonalData) -> None:
    event = discovered(personal)
    sealer = FixedSealer()
    record = encode(event, sealer)
    assert sealer.owners == [UUID(int=7), UUID(int=7)]  # personal, members.0.personal
    structural = encode(discovered(None)).state
    for value in personal.model_dump().values():
        # Short values may occur in field names ("refe" in "referred_by"): skip those.
        if value and len(value.encode()) >= 4 and value.encode() not in structural:
            assert value.encode() not in record.state
    assert decode(record, sealer) == event
    withheld = decode(record)
    assert withheld.personal is None
    assert withheld.members[0].personal is None
    assert withheld.redaction is not None
    assert withheld.redaction.reason == "withheld"
    assert withheld.redaction.fields == ("personal", "members.0.personal")
    # Decoded without the key, the event still re-encodes to the stored bytes.
    assert encode(withheld).state == record.state
    _, fields = decode_fields(record.topic, record.state)
    assert fields["personal"] is None
    assert fields["members"][0]["personal"] is None
    assert fields["dong"] == "중앙동"


def test_a_sealed_field_is_stored_as_msgpack_extension_5() -> None:
    """The codec docstring's table: code 5 holds what the sealer returned, nothing else."""
    import msgpack

    sealed: list[bytes] = []

    class Recording(FixedSealer):
        def seal(self, owner: UUID, plaintext: bytes, aad: bytes) -> bytes:
            assert aad == sealed_aad(UUID(int=7), 1, "personal" if not sealed else
                                     "members.0.personal")  # fmt: skip
            sealed.append(super().seal(owner, plaintext, aad))
            return sealed[-1]

    record = encode(discovered(PersonalData(name="A")), Recording())
    raw = msgpack.unpackb(record.state, raw=False, strict_map_key=False)
    assert raw["personal"] == msgpack.ExtType(5, sealed[0])
    assert raw["members"][0]["personal"] == msgpack.ExtType(5, sealed[1])
    assert raw["members"][1]["personal"] is None
    assert len(sealed[0]) == 12 + len(msgpack.packb(PersonalData(name="A").model_dump())) + 16


def test_sealed_bytes_cannot_be_moved_to_another_record() -> None:
    sealer = FixedSealer()
    first = encode(discovered(PersonalData(name="A")), sealer)
    other = encode(discovered(PersonalData(name="B"), version=2), sealer)
    moved = StoredEvent(other.originator_id, other.originator_version, other.topic, first.state)
    with pytest.raises(CorruptRecord):
        decode(moved, sealer)
    assert sealed_aad(UUID(int=7), 1, "personal") != sealed_aad(UUID(int=7), 2, "personal")


def test_personal_data_is_never_encoded_without_a_sealer() -> None:
    with pytest.raises(ConfigurationError, match="never stored in plain text"):
        encode(discovered(PersonalData(name="A")))
    assert encode(discovered(None)).state  # nothing personal: no sealer needed


def test_a_record_holding_unsealed_personal_data_is_corrupt() -> None:
    from caseledger.codec import pack

    record = encode(discovered(None))
    _, fields = decode_fields(record.topic, record.state)
    fields["personal"] = {"name": "plain"}
    bad = StoredEvent(record.originator_id, 1, record.topic, pack({"_v": 1, **fields}))
    with pytest.raises(CorruptRecord, match="not sealed"):
        decode(bad)


# ---------------------------------------------------------------------------
# Master key configuration


def household_with(ledger: Ledger, **personal: str) -> UUID:
    return ledger.discover_household(
        dong="중앙동", district="동두천시", channel="hotline_129", by=OFFICER, at=kst(2022, 5, 2),
        personal=personal or None,
    )  # fmt: skip


def test_without_a_master_key_structure_is_recorded_and_personal_data_refused(
    tmp_path: Path, clock: FixedClock
) -> None:
    with Ledger.open(tmp_path / "ledger.db", clock=clock) as ledger:
        assert not ledger.keys.has_master_key
        register_dongducheon(ledger)
        household_with(ledger)
        before = len(ledger)
        with pytest.raises(ConfigurationError, match=MASTER_KEY_ENV):
            household_with(ledger, name="A")
        assert len(ledger) == before


def test_a_key_file_beside_the_database_is_found(tmp_path: Path, clock: FixedClock) -> None:
    db = tmp_path / "ledger.db"
    key = create_key_file(key_file_beside(db))
    assert stat.S_IMODE(key_file_beside(db).stat().st_mode) == 0o600
    with pytest.raises(ConfigurationError, match="never overwritten"):
        create_key_file(key_file_beside(db))
    with Ledger.open(db, clock=clock) as ledger:
        register_dongducheon(ledger)
        household = household_with(ledger, name="A")
        assert "key file" in ledger.keys.source
    with Ledger.open(db, clock=clock, master_key=key) as ledger:
        found = ledger.reader(OFFICER, terminal="t").household_history(household)[0]
        assert found.personal == PersonalData(name="A")  # type: ignore[attr-defined]


def test_the_master_key_comes_from_the_environment(
    tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "ledger.db"
    monkeypatch.setenv(MASTER_KEY_ENV, master_key_text(MASTER_KEY))
    with Ledger.open(db, clock=clock) as ledger:
        register_dongducheon(ledger)
        household = household_with(ledger, phone="010")
    monkeypatch.delenv(MASTER_KEY_ENV)
    key_file = tmp_path / "master.key"
    key_file.write_text(master_key_text(MASTER_KEY) + "\n", encoding="ascii")
    monkeypatch.setenv(MASTER_KEY_FILE_ENV, str(key_file))
    with Ledger.open(db, clock=clock) as ledger:
        events = ledger.reader(OFFICER, terminal="t").household_history(household)
        assert events[0].personal == PersonalData(phone="010")  # type: ignore[attr-defined]
    monkeypatch.setenv(MASTER_KEY_ENV, "not base64!")
    with pytest.raises(ConfigurationError, match="base64 of exactly 32"):
        Ledger.open(db, clock=clock)
    with pytest.raises(ConfigurationError, match="32 bytes"):
        Ledger.open(db, clock=clock, master_key=b"short")


def test_a_wrong_master_key_opens_nothing_personal(tmp_path: Path, clock: FixedClock) -> None:
    db = tmp_path / "ledger.db"
    with Ledger.open(db, clock=clock, master_key=MASTER_KEY) as ledger:
        register_dongducheon(ledger)
        household = household_with(ledger, name="A")
    with Ledger.open(db, clock=clock, master_key=bytes(32)) as ledger:
        assert ledger.household(household).dong == "중앙동"  # structure needs no key
        with pytest.raises(ConfigurationError, match="does not open the data key"):
            ledger.reader(OFFICER, terminal="t").household_history(household)


def test_rotating_the_master_key_retires_the_old_one(tmp_path: Path, clock: FixedClock) -> None:
    db = tmp_path / "ledger.db"
    new_key = bytes(range(100, 132))
    with Ledger.open(db, clock=clock, master_key=MASTER_KEY) as ledger:
        register_dongducheon(ledger)
        household = household_with(ledger, name="A")
        assert ledger.keys.rotate(new_key) == 1
        household_with(ledger, name="B")  # new keys are wrapped with the new master key
    with (
        Ledger.open(db, clock=clock, master_key=MASTER_KEY) as ledger,
        pytest.raises(ConfigurationError),
    ):
        ledger.reader(OFFICER, terminal="t").household_history(household)
    with Ledger.open(db, clock=clock, master_key=new_key) as ledger:
        events = ledger.reader(OFFICER, terminal="t").household_history(household)
        assert events[0].personal == PersonalData(name="A")  # type: ignore[attr-defined]


def test_an_in_memory_ledger_needs_no_configuration(memory_ledger: Ledger) -> None:
    register_dongducheon(memory_ledger)
    household_with(memory_ledger, name="A")
    assert memory_ledger.keys.source.startswith("ephemeral")


# ---------------------------------------------------------------------------
# Erasure


@dataclass(frozen=True)
class Planted:
    household: UUID
    case: UUID
    meeting: UUID


def plant(ledger: Ledger) -> Planted:
    """A household whose every personal field holds a planted value; its case is closed."""
    register_dongducheon(ledger)
    ledger.register_worker("named-officer", organisation="jungang-dong", role="dong_officer",
                           name=PLANTED_WORKER, at=kst(2022, 1, 3))  # fmt: skip
    at = kst(2022, 10, 4)
    household = ledger.discover_household(
        dong="중앙동", district="동두천시", channel="outreach_visit", by=OFFICER, at=at,
        personal=PLANTED, members=[{"member_no": 1, "birth_year": 1990, "personal": PLANTED},
                                   {"member_no": 2, "birth_year": 2015}],
    )  # fmt: skip
    ledger.record_consultation(household, method="visit", outcome="intake", notes=PLANTED_NOTES,
                               by=OFFICER, at=at)  # fmt: skip
    case = ledger.open_case(household, by=OFFICER, at=at)
    ledger.assess_needs(case, needs=[{"sub_domain": "health.mental", "urgency": 5}],
                        notes=PLANTED_NOTES, by=OFFICER, at=at)  # fmt: skip
    meeting = ledger.hold_meeting(kind="internal", host="jungang-dong", agenda=[case],
                                  decisions={case: "close"}, by=LEAD,
                                  at=kst(2022, 10, 20))  # fmt: skip
    ledger.classify(case, meeting=meeting, track="not_selected", criteria_version="v",
                    notes=PLANTED_NOTES, by=OFFICER, at=kst(2022, 10, 20))  # fmt: skip
    return Planted(household, case, meeting)


def close(ledger: Ledger, p: Planted) -> None:
    ledger.close_case(p.case, meeting=p.meeting, reason="not_selected", by=OFFICER,
                      at=kst(2022, 10, 21))  # fmt: skip


NEEDLES = [v.encode() for v in (*PLANTED.values(), PLANTED_NOTES, PLANTED_WORKER)]


def sqlite_files(db: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()
    }


def unwrappable(data: bytes, owner: UUID) -> bool:
    """Whether any 60-byte window of ``data`` unwraps to ``owner``'s data key.

    The wrapped form as docs/privacy.md gives it: nonce (12) ‖ AES-256-GCM of the key (32)
    and tag (16), associated data ``caseledger:key:1\\0`` ‖ owner id bytes.
    """
    aead, aad = AESGCM(MASTER_KEY), b"caseledger:key:1\x00" + owner.bytes
    for i in range(len(data) - 59):
        try:
            aead.decrypt(data[i : i + 12], data[i + 12 : i + 60], aad)
        except InvalidTag:
            continue
        return True
    return False


def assert_erased_view(ledger: Ledger, p: Planted) -> None:
    assert ledger.household(p.household).erased_at == kst(2022, 11, 1)
    reader = ledger.reader(OFFICER, terminal="audit-pc")
    events = [*reader.household_history(p.household), *reader.history(p.case)]
    redacted = [e for e in events if e.redaction is not None]
    assert len(redacted) == 4  # discovery, consultation, assessment, classification
    assert {e.redaction.reason for e in redacted if e.redaction} == {"erased"}
    assert all(getattr(e, "personal", None) is None for e in events)
    # The structure stays: every event, with its structural fields.
    assert [type(e).__name__ for e in events][-1] == "CaseClosed"
    assert isinstance(events[0], HouseholdDiscovered)
    assert events[0].dong == "중앙동"
    assert [m.birth_year for m in events[0].members] == [1990, 2015]


def test_erasure_on_sqlite_leaves_no_plaintext_and_no_key_in_any_file(
    tmp_path: Path, clock: FixedClock
) -> None:
    db = tmp_path / "ledger.db"
    with Ledger.open(db, clock=clock, master_key=MASTER_KEY) as ledger:
        p = plant(ledger)
        close(ledger, p)
        files = sqlite_files(db)
        assert "ledger.db-wal" in files
        for name, data in files.items():
            for needle in NEEDLES:
                assert needle not in data, (name, needle)
        wrapped = ledger.keys.wrapped_key(p.household)
        assert wrapped is not None
        assert any(wrapped in data for data in files.values())  # the scan can find it
        assert unwrappable(b"".join(files.values()), p.household)
        stored_before = [codec_leaf(r) for r in ledger.records()]

        erased = ledger.erase_household(p.household, reason="보존기간 경과", by=LEAD,
                                        at=kst(2022, 11, 1))  # fmt: skip
        assert isinstance(erased, HouseholdErased)
        files = sqlite_files(db)
        for name, data in files.items():
            assert wrapped not in data, name
            for needle in NEEDLES:
                assert needle not in data, (name, needle)
        assert not unwrappable(b"".join(files.values()), p.household)
        assert ledger.keys.wrapped_key(p.household) is None
        assert ledger.keys.erased_at(p.household) is not None
        # The records are untouched: the old Merkle root is a prefix of the new log.
        stored_after = [codec_leaf(r) for r in ledger.records()]
        assert stored_after[: len(stored_before)] == stored_before
        assert merkle_root(stored_after[: len(stored_before)]) == merkle_root(stored_before)
        assert_erased_view(ledger, p)
    with Ledger.open(db, clock=clock, master_key=MASTER_KEY) as ledger:
        assert_erased_view(ledger, p)
    for data in sqlite_files(db).values():
        assert wrapped not in data
        assert not unwrappable(data, p.household)


def codec_leaf(record: StoredEvent) -> bytes:
    """The stored bytes of a record that a Merkle leaf covers (ids, topic and state)."""
    from caseledger.codec import pack

    return pack([str(record.originator_id), record.originator_version, record.topic, record.state])


def pg_dump(url: str) -> str:
    """A plain-text dump of the test schema."""
    binary = shutil.which("pg_dump") or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))), None
    )
    if binary is None:  # pragma: no cover - depends on the machine
        pytest.skip("pg_dump is not installed")
    base, _, query = url.partition("?")
    schema = query.split("schema=", 1)[1].split("&", 1)[0]
    result = subprocess.run(
        [binary, "--schema", schema, "--no-owner", base], capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    return result.stdout


@pytest.fixture
def own_pg_url(pg_schema_url: str) -> Iterator[str]:
    """A schema in a database of its own, if the server lets us create one.

    PostgreSQL keeps a deleted row for as long as any transaction in the same database
    might still see it, so on a shared test server other sessions could delay the
    erasure's cleanup; a database of its own has none.
    """
    import psycopg

    base, _, query = pg_schema_url.partition("?")
    server, _, _ = base.rpartition("/")
    name = "caseledger_erasure_" + uuid4().hex[:10]
    try:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error:  # pragma: no cover - no CREATEDB privilege: share the database
        yield pg_schema_url
        return
    try:
        yield f"{server}/{name}?{query}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_erasure_on_postgresql_leaves_no_plaintext_and_no_key_in_a_dump(
    own_pg_url: str, clock: FixedClock
) -> None:
    pg_schema_url = own_pg_url
    with Ledger.open(pg_schema_url, clock=clock, master_key=MASTER_KEY) as ledger:
        p = plant(ledger)
        close(ledger, p)
        dump = pg_dump(pg_schema_url)
        assert "caseledger_keys" in dump
        for needle in NEEDLES:
            assert needle.decode() not in dump
        wrapped = ledger.keys.wrapped_key(p.household)
        assert wrapped is not None
        assert wrapped.hex() in dump  # the scan can find it
        relation = pg_relation_file(pg_schema_url)
        if relation is not None:
            assert wrapped in relation.read_bytes()
        ledger.erase_household(p.household, reason="보존기간 경과", by=LEAD, at=kst(2022, 11, 1))
        dump = pg_dump(pg_schema_url)
        assert wrapped.hex() not in dump
        for needle in NEEDLES:
            assert needle.decode() not in dump
        if relation is not None:
            assert not relation.exists() or wrapped not in relation.read_bytes()
            rewritten = pg_relation_file(pg_schema_url)
            assert rewritten is not None
            assert not unwrappable(rewritten.read_bytes(), p.household)
        assert_erased_view(ledger, p)


def pg_relation_file(url: str) -> Path | None:
    """The key table's data file, after a checkpoint, if this process may read it."""
    import psycopg

    base, _, query = url.partition("?")
    schema = query.split("schema=", 1)[1].split("&", 1)[0]
    try:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            directory = conn.execute("SHOW data_directory").fetchone()
            relative = conn.execute(
                "SELECT pg_relation_filepath(%s)", (f'"{schema}".caseledger_keys',)
            ).fetchone()
    except psycopg.Error:  # pragma: no cover - not a superuser
        return None
    assert directory is not None
    assert relative is not None
    path = Path(directory[0]) / relative[0]
    return path if path.exists() and os.access(path, os.R_OK) else None


def test_the_merkle_log_still_verifies_after_erasure(ledger: Ledger) -> None:
    """The erasure destroys a key, never a record: checkpoints signed before it still hold."""
    p = plant(ledger)
    close(ledger, p)
    signer, verifier = generate_key("dongducheon.example/caseledger")
    before = ledger.checkpoint(signer)
    ledger.erase_household(p.household, reason="보존기간 경과", by=LEAD, at=kst(2022, 11, 1))
    after = ledger.checkpoint(signer)
    report = ledger.verify([before, after], verifier)
    assert report.ok, report.summary()
    assert report.records == len(ledger)
    assert [c.size for c in report.checkpoints] == [len(ledger) - 1, len(ledger)]


def test_counts_kpis_and_the_caseload_stay_after_erasure(memory_ledger: Ledger) -> None:
    ledger = memory_ledger
    p = plant(ledger)
    close(ledger, p)
    kpis = ledger.kpis("2022", by="dong")
    caseload = ledger.caseload(include_closed=True)
    size = len(ledger)
    ledger.erase_household(p.household, reason="보존기간 경과", by=LEAD, at=kst(2022, 11, 1))
    assert ledger.kpis("2022", by="dong") == kpis
    assert ledger.caseload(include_closed=True) == caseload
    assert len(ledger) == size + 1
    assert [type(e).__name__ for e in ledger.history(p.case)] == [
        "CaseOpened", "NeedsAssessed", "CaseClassified", "CaseClosed",
    ]  # fmt: skip


def test_erasure_waits_for_the_retention_rule(memory_ledger: Ledger) -> None:
    ledger = memory_ledger
    p = plant(ledger)
    before = len(ledger)
    with pytest.raises(RetentionError, match="has an open case") as info:
        ledger.erase_household(p.household, reason="요청", by=LEAD, at=kst(2022, 10, 20, 15))
    assert "rule retention" in str(info.value)
    assert len(ledger) == before
    close(ledger, p)
    ledger.erase_household(p.household, reason="요청", by=LEAD, at=kst(2022, 11, 1))
    with pytest.raises(RuleViolation, match="already erased"):
        ledger.erase_household(p.household, reason="again", by=LEAD, at=kst(2022, 11, 2))


def test_a_retention_period_after_closure_is_configurable(clock: FixedClock) -> None:
    policy = default_policy()
    keep_a_year = policy.model_copy(
        update={
            "version": "keep-a-year",
            "retention": policy.retention.model_copy(update={"min_days_after_closure": 365}),
        }
    )
    clock.now = kst(2024, 1, 1)
    with Ledger.open(":memory:", clock=clock, policy=keep_a_year) as ledger:
        p = plant(ledger)
        close(ledger, p)
        with pytest.raises(RetentionError, match="may be erased from 2023-10-21") as info:
            ledger.erase_household(p.household, reason="요청", by=LEAD, at=kst(2023, 10, 20))
        assert "policy keep-a-year, rule retention" in str(info.value)
        ledger.erase_household(p.household, reason="요청", by=LEAD, at=kst(2023, 10, 21, 11))
        discovered_only = household_with(ledger)
        with pytest.raises(RetentionError, match="after it was discovered"):
            ledger.erase_household(discovered_only, reason="요청", by=LEAD, at=kst(2022, 6, 1))


def test_after_erasure_only_structure_can_be_recorded(memory_ledger: Ledger) -> None:
    ledger = memory_ledger
    p = plant(ledger)
    close(ledger, p)
    ledger.erase_household(p.household, reason="요청", by=LEAD, at=kst(2022, 11, 1))
    before = len(ledger)
    with pytest.raises(RuleViolation, match="was erased"):
        ledger.follow_up(p.case, notes="새 메모", by=OFFICER, at=kst(2022, 11, 2))
    assert len(ledger) == before
    ledger.follow_up(p.case, by=OFFICER, at=kst(2022, 11, 2))
    assert ledger.case(p.case).follow_ups == 1


def test_erasure_of_a_household_without_personal_data_still_blocks_new_data(
    memory_ledger: Ledger,
) -> None:
    register_dongducheon(memory_ledger)
    household = household_with(memory_ledger)
    memory_ledger.erase_household(household, reason="요청", by=LEAD, at=kst(2022, 5, 3))
    with pytest.raises(RuleViolation, match="was erased"):
        memory_ledger.record_consultation(household, method="phone", outcome="information_only",
                                          notes="메모", by=OFFICER, at=kst(2022, 5, 4))  # fmt: skip


@pytest.fixture
def two_ledgers(tmp_path: Path, clock: FixedClock) -> Iterator[tuple[Ledger, Ledger]]:
    db = tmp_path / "ledger.db"
    with (
        Ledger.open(db, clock=clock, master_key=MASTER_KEY) as a,
        Ledger.open(db, clock=clock, master_key=MASTER_KEY) as b,
    ):
        yield a, b


def test_a_writer_holding_an_erased_key_in_its_cache_is_refused(
    two_ledgers: tuple[Ledger, Ledger],
) -> None:
    a, b = two_ledgers
    p = plant(a)
    close(a, p)
    # b seals with the household's key and keeps it in its cache.
    b.record_consultation(p.household, method="phone", outcome="information_only", notes="x",
                          by=OFFICER, at=kst(2022, 10, 22))  # fmt: skip
    a.erase_household(p.household, reason="요청", by=LEAD, at=kst(2022, 11, 1))
    with pytest.raises(RuleViolation, match="erased meanwhile"):
        b.record_consultation(p.household, method="phone", outcome="information_only",
                              notes="y", by=OFFICER, at=kst(2022, 11, 2))  # fmt: skip
    events = b.reader(OFFICER, terminal="t").household_history(p.household)
    assert all(e.redaction is None or e.redaction.reason == "erased" for e in events)
