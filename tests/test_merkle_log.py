"""The Merkle log of a ledger: leaves, the leaf cache, checkpoints, proofs and bundles."""

from __future__ import annotations

import base64
import json
import random
import sqlite3
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caseledger import CaseNotFound, CheckpointError, IntegrityError, Ledger, ProofError
from caseledger.errors import ConfigurationError
from caseledger.events import CaseOpened, topic_of
from caseledger.integrity import (
    Checkpoint,
    consistency_proof,
    generate_key,
    inclusion_proof,
    merkle_root,
    sign_checkpoint,
    verify_checkpoint,
    verify_consistency,
)
from caseledger.merkle_log import (
    BUNDLE_FORMAT,
    MerkleLog,
    ProofBundle,
    read_bundle,
    read_checkpoint,
    read_signer_key,
    read_verifier_key,
    record_leaf,
    verify_bundle,
    write_key_pair,
)
from caseledger.store import StoredEvent, open_store
from tests.conftest import MASTER_KEY, FixedClock
from tests.scenarios import kst, register_dongducheon, scenario_1

ORIGIN = "example.org/caseledger/test"
SIGNER, VERIFIER = generate_key(ORIGIN)
OTHER_SIGNER, OTHER_VERIFIER = generate_key(ORIGIN)


def leaves_of(ledger: Ledger) -> list[bytes]:
    """Every record's leaf, computed here from the public record stream and the layout."""
    return [
        record_leaf(r.id, UUID(str(r.originator_id)), r.originator_version, r.topic, r.state)
        for r in ledger.records()
    ]


def more_events(ledger: Ledger) -> UUID:
    """A third household and case, after scenario 1."""
    by = "jungang-officer"
    household = ledger.discover_household(
        dong="중앙동", district="동두천시", channel="hotline_129", by=by, at=kst(2023, 3, 2),
        members=[{"member_no": 1, "birth_year": 1970, "personal": {"name": "박OO"}}],
    )  # fmt: skip
    ledger.record_consultation(household, method="phone", outcome="intake", by=by,
                               at=kst(2023, 3, 2))  # fmt: skip
    return ledger.open_case(household, by=by, at=kst(2023, 3, 3))  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------
# Leaves


def test_a_leaf_is_laid_out_byte_for_byte_as_documented() -> None:
    aggregate = UUID("00112233-4455-6677-8899-aabbccddeeff")
    leaf = record_leaf(258, aggregate, 3, "caseledger.events:CaseOpened", b"\x81\xa2_v\x01")
    assert leaf == (
        b"\x01"  # leaf format
        + b"\x00\x00\x00\x00\x00\x00\x01\x02"  # position 258
        + aggregate.bytes
        + b"\x00\x00\x00\x00\x00\x00\x00\x03"  # version 3
        + b"\x00\x1c"  # topic length 28
        + b"caseledger.events:CaseOpened"
        + b"\x00\x00\x00\x05"  # state length 5
        + b"\x81\xa2_v\x01"
    )


@given(
    position=st.integers(1, 2**64 - 1),
    aggregate=st.uuids(),
    version=st.integers(1, 2**64 - 1),
    topic=st.text(max_size=40),
    state=st.binary(max_size=200),
)
def test_a_leaf_can_be_parsed_back_by_its_documented_layout(
    position: int, aggregate: UUID, version: int, topic: str, state: bytes
) -> None:
    leaf = record_leaf(position, aggregate, version, topic, state)
    fmt, pos, raw_id, ver, topic_len = struct.unpack_from(">BQ16sQH", leaf)
    rest = leaf[struct.calcsize(">BQ16sQH") :]
    assert (fmt, pos, UUID(bytes=raw_id), ver) == (1, position, aggregate, version)
    assert rest[:topic_len].decode() == topic
    (state_len,) = struct.unpack_from(">I", rest, topic_len)
    assert rest[topic_len + 4 :] == state
    assert state_len == len(state)


@pytest.mark.parametrize(
    ("position", "version", "topic", "state", "message"),
    [
        (0, 1, "t", b"", "position must be between 1"),
        (1, 0, "t", b"", "version must be between 1"),
        (2**64, 1, "t", b"", "position must be between 1"),
        (True, 1, "t", b"", "position must be an int"),
        (1, 1, b"t", b"", "topic must be a str"),
        (1, 1, "t", "state", "state must be bytes"),
        (1, 1, "x" * 70_000, b"", "topic is longer than 65535 bytes"),
        (1, 1, "\ud800", b"", "topic is not encodable"),
    ],
)
def test_a_record_that_cannot_be_a_leaf_is_refused(
    position: object, version: object, topic: object, state: object, message: str
) -> None:
    with pytest.raises(ProofError, match=message):
        record_leaf(position, UUID(int=1), version, topic, state)  # type: ignore[arg-type]
    with pytest.raises(ProofError, match="aggregate id must be 16 bytes"):
        record_leaf(1, b"short", 1, "t", b"")


# --------------------------------------------------------------------------------------
# The leaf cache, kept in every write


def test_the_tree_head_is_the_merkle_root_of_every_record(ledger: Ledger) -> None:
    assert ledger.merkle.tree_head() == (0, merkle_root([]))
    scenario_1(ledger)
    leaves = leaves_of(ledger)
    assert len(leaves) == len(ledger) == 26
    assert ledger.merkle.tree_head() == (26, merkle_root(leaves))
    report = ledger.verify()
    assert report.ok, report.lines()
    assert (report.records, report.root, report.cached_size) == (26, merkle_root(leaves), 26)


def test_batched_and_single_writes_give_the_same_tree(clock: FixedClock) -> None:
    roots = []
    for batched in (False, True):
        with Ledger.open(":memory:", clock=FixedClock(clock.now), master_key=MASTER_KEY) as led:
            if batched:
                with led.batch():
                    register_dongducheon(led)
            else:
                register_dongducheon(led)
            roots.append(led.merkle.tree_head())
    assert roots[0] == roots[1]
    assert roots[0][0] == 9


def _synthetic_store(batches: list[int], seed: int) -> tuple[MerkleLog, list[bytes], dict]:  # type: ignore[type-arg]
    """A store holding ``sum(batches)`` opaque records, appended in those batch sizes."""
    rnd = random.Random(seed)
    store = open_store(":memory:")
    log = MerkleLog(store)
    leaves: list[bytes] = []
    aggregates: dict[UUID, list[int]] = {}
    ids = [UUID(int=rnd.getrandbits(128)) for _ in range(5)]
    topic = topic_of(CaseOpened)
    for size in batches:
        records = []
        for _ in range(size):
            aggregate = rnd.choice(ids)
            version = len(aggregates.setdefault(aggregate, [])) + 1
            state = rnd.randbytes(rnd.randrange(0, 40))
            records.append(StoredEvent(aggregate, version, topic, state))
            aggregates[aggregate].append(len(leaves))
            leaves.append(record_leaf(len(leaves) + 1, aggregate, version, topic, state))
        store.append(records)
    return log, leaves, aggregates


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.integers(1, 70), min_size=1, max_size=8), seed=st.integers(0, 99))
def test_proofs_from_the_cache_equal_proofs_from_all_leaves(batches: list[int], seed: int) -> None:
    log, leaves, aggregates = _synthetic_store(batches, seed)
    try:
        assert log.tree_head() == (len(leaves), merkle_root(leaves))
        for aggregate, indices in aggregates.items():
            bundle = log.prove(aggregate, SIGNER)
            assert [r.leaf_index for r in bundle.records] == indices
            for record, index in zip(bundle.records, indices, strict=True):
                assert record.leaf() == leaves[index]
                assert list(record.inclusion_proof) == inclusion_proof(leaves, index)
            verify_bundle(bundle.to_json(), VERIFIER)
        assert log.verify().ok
    finally:
        log._store.close()


# --------------------------------------------------------------------------------------
# Checkpoints and verification


def test_a_checkpoint_signs_the_log_as_it_is(ledger: Ledger) -> None:
    scenario_1(ledger)
    note = ledger.checkpoint(SIGNER)
    checkpoint = verify_checkpoint(note, VERIFIER, origin=ORIGIN)
    assert (checkpoint.size, checkpoint.root) == ledger.merkle.tree_head()
    named = ledger.checkpoint(SIGNER, origin="example.org/other-name")
    assert verify_checkpoint(named, VERIFIER).origin == "example.org/other-name"
    with pytest.raises(CheckpointError, match="signer key"):
        ledger.checkpoint(VERIFIER)
    with pytest.raises(CheckpointError):
        ledger.checkpoint("not a key")


def test_successive_checkpoints_are_consistent_and_each_matches(ledger: Ledger) -> None:
    scenario_1(ledger)
    old = ledger.checkpoint(SIGNER)
    more_events(ledger)
    new = ledger.checkpoint(SIGNER)
    leaves = leaves_of(ledger)
    verify_consistency(26, 29, merkle_root(leaves[:26]), merkle_root(leaves),
                       consistency_proof(leaves, 26))  # fmt: skip
    report = ledger.verify([new, old], VERIFIER)
    assert report.ok, report.lines()
    assert [(c.size, c.matches, c.consistent) for c in report.checkpoints] == [
        (26, True, None),
        (29, True, True),
    ]
    assert "2 signed checkpoint(s) match" in report.summary()


def test_a_checkpoint_signed_by_another_key_is_rejected(ledger: Ledger) -> None:
    scenario_1(ledger)
    forged = ledger.checkpoint(OTHER_SIGNER)  # same name, another key
    with pytest.raises(CheckpointError, match="checkpoint 2: checkpoint has no signature by key"):
        ledger.verify([ledger.checkpoint(SIGNER), forged], VERIFIER)
    with pytest.raises(CheckpointError, match="only be checked with the public key"):
        ledger.verify([forged])
    with pytest.raises(CheckpointError, match="checkpoint 1: signed note must end with a newline"):
        ledger.verify(["not a note"], VERIFIER)


def test_checkpoints_of_different_logs_are_refused_together(ledger: Ledger) -> None:
    scenario_1(ledger)
    a = ledger.checkpoint(SIGNER, origin="example.org/a")
    b = ledger.checkpoint(SIGNER, origin="example.org/b")
    with pytest.raises(CheckpointError, match="different logs"):
        ledger.verify([a, b], VERIFIER)


def test_a_forked_checkpoint_is_reported_inconsistent(memory_ledger: Ledger) -> None:
    ledger = memory_ledger
    scenario_1(ledger)
    leaves = leaves_of(ledger)
    # The operator showed someone a different history of the first 20 records.
    fork = sign_checkpoint(Checkpoint(ORIGIN, 20, merkle_root([b"other", *leaves[1:20]])), SIGNER)
    report = ledger.verify([ledger.checkpoint(SIGNER), fork], VERIFIER)
    assert not report.ok
    assert report.by_kind() == {"checkpoint": (), "inconsistent": ()}
    assert [(c.size, c.matches, c.consistent) for c in report.checkpoints] == [
        (20, False, None),
        (26, True, False),
    ]
    assert "is not a prefix of" in "\n".join(report.lines())
    same_size = sign_checkpoint(Checkpoint(ORIGIN, 26, merkle_root(leaves[::-1])), SIGNER)
    split = ledger.verify([ledger.checkpoint(SIGNER), same_size], VERIFIER)
    assert split.by_kind() == {"checkpoint": (), "inconsistent": ()}


def test_a_checkpoint_larger_than_the_log_says_records_are_missing(memory_ledger: Ledger) -> None:
    scenario_1(memory_ledger)
    leaves = leaves_of(memory_ledger)
    bigger = sign_checkpoint(Checkpoint(ORIGIN, 30, merkle_root([*leaves, *leaves[:4]])), SIGNER)
    report = memory_ledger.verify([bigger], VERIFIER)
    assert report.by_kind() == {"checkpoint": ()}
    assert "4 more record(s) than the log" in report.findings[0].message
    assert report.checkpoints[0].matches is False


def test_verification_survives_reopening(tmp_path: Path, clock: FixedClock) -> None:
    db = tmp_path / "ledger.db"
    with Ledger.open(db, clock=clock, master_key=MASTER_KEY) as ledger:
        scenario_1(ledger)
        note = ledger.checkpoint(SIGNER)
        head = ledger.merkle.tree_head()
    with Ledger.open(db, clock=clock, master_key=MASTER_KEY) as ledger:
        assert ledger.merkle.tree_head() == head
        assert ledger.verify([note], VERIFIER).ok
        more_events(ledger)
        assert ledger.verify([note, ledger.checkpoint(SIGNER)], VERIFIER).ok


def test_a_dropped_leaf_cache_is_rebuilt_and_only_checkpoints_are_evidence(
    tmp_path: Path, clock: FixedClock
) -> None:
    db = tmp_path / "ledger.db"
    with Ledger.open(db, clock=clock, master_key=MASTER_KEY) as ledger:
        scenario_1(ledger)
        note = ledger.checkpoint(SIGNER)
        head = ledger.merkle.tree_head()
    with sqlite3.connect(db) as con:
        for table in ("caseledger_leaves", "caseledger_merkle_nodes", "caseledger_merkle_head"):
            con.execute(f"DROP TABLE {table}")
    with Ledger.open(db, clock=clock, master_key=MASTER_KEY) as ledger:
        assert ledger.merkle.tree_head() == head
        assert ledger.verify([note], VERIFIER).ok
    # Someone changes a record and makes the cache agree: the cache cannot tell ...
    with sqlite3.connect(db) as con:
        con.execute("UPDATE stored_events SET state = CAST(state || x'00' AS BLOB) WHERE rowid = 7")
        con.execute("DELETE FROM caseledger_merkle_head")
    with Ledger.open(db, clock=clock, master_key=MASTER_KEY) as ledger:
        assert ledger.verify().ok
        # ... a checkpoint someone else holds can, though not where.
        report = ledger.verify([note], VERIFIER)
        assert report.by_kind() == {"checkpoint": ()}
        assert "leaf cache was rewritten as well" in report.findings[0].message


def test_erasing_a_household_leaves_the_log_verifiable(ledger: Ledger) -> None:
    s = scenario_1(ledger)
    informed = ledger.discover_household(
        dong="중앙동", district="동두천시", channel="hotline_129", by="jungang-officer",
        at=kst(2023, 3, 2), members=[{"member_no": 1, "birth_year": 1970,
                                      "personal": {"name": "박OO"}}],
    )  # fmt: skip
    ledger.record_consultation(informed, method="phone", outcome="information_only",
                               by="jungang-officer", at=kst(2023, 3, 2))  # fmt: skip
    before = ledger.checkpoint(SIGNER)
    leaves = leaves_of(ledger)
    ledger.erase_household(informed, reason="상담 종료", by="jungang-lead", at=kst(2023, 3, 20))
    assert leaves_of(ledger)[: len(leaves)] == leaves
    after = ledger.checkpoint(SIGNER)
    report = ledger.verify([before, after], VERIFIER)
    assert report.ok, report.lines()
    verify_bundle(ledger.prove(s.resolved_case, SIGNER).to_json(), VERIFIER)


def test_writes_are_refused_once_records_were_cut_off_the_end(
    tmp_path: Path, clock: FixedClock
) -> None:
    db = tmp_path / "ledger.db"
    with Ledger.open(db, clock=clock, master_key=MASTER_KEY) as ledger:
        scenario_1(ledger)
        note = ledger.checkpoint(SIGNER)
        with sqlite3.connect(db) as con:
            con.execute("DELETE FROM stored_events WHERE rowid = 26")
        # SQLite would hand position 26 out again; a different record there would fork
        # the history, so the write is refused and nothing is written.
        with pytest.raises(IntegrityError, match="cut off the end"):
            more_events(ledger)
        assert len(ledger) == 25
        assert ledger.verify([note], VERIFIER).by_kind() == {
            "checkpoint": (),
            "truncated": (26,),
        }
        # After the incident: accept the log as it is. The old checkpoint still tells.
        assert ledger.merkle.rebuild() == 25
        ledger.register_worker(
            "late-worker", organisation="jungang-dong", role="dong_officer", at=kst(2023, 5, 1)
        )
        assert ledger.verify().ok
        assert ledger.verify([note], VERIFIER).by_kind() == {"checkpoint": ()}


# --------------------------------------------------------------------------------------
# Proof bundles


def test_a_proof_bundle_round_trips_and_verifies_offline(ledger: Ledger) -> None:
    s = scenario_1(ledger)
    bundle = ledger.prove(s.medical_case, SIGNER)
    text = bundle.to_json()
    data = json.loads(text)
    assert data["format"] == BUNDLE_FORMAT
    assert data["case_id"] == str(s.medical_case)
    assert ProofBundle.from_json(text) == bundle
    report = verify_bundle(text, VERIFIER)
    history = ledger.history(s.medical_case)
    assert len(report.positions) == len(history) == len(bundle.records)
    assert report.checkpoint.size == len(ledger)
    assert report.topics[0] == topic_of(CaseOpened)
    assert f"of case {s.medical_case}" in report.summary()
    leaves = leaves_of(ledger)
    for record in bundle.records:
        assert leaves[record.leaf_index] == record.leaf()


def _mutations(text: str) -> Iterator[tuple[str, str]]:
    data = json.loads(text)

    def edited(change: object) -> str:
        copy = json.loads(text)
        change(copy)  # type: ignore[operator]
        return json.dumps(copy)

    def flip_state(d: dict) -> None:  # type: ignore[type-arg]
        raw = bytearray(base64.b64decode(d["records"][1]["state"]))
        raw[len(raw) // 2] ^= 1
        d["records"][1]["state"] = base64.b64encode(bytes(raw)).decode()

    def flip_proof(d: dict) -> None:  # type: ignore[type-arg]
        raw = bytearray(base64.b64decode(d["records"][0]["inclusion_proof"][0]))
        raw[0] ^= 0x80
        d["records"][0]["inclusion_proof"][0] = base64.b64encode(bytes(raw)).decode()

    yield "a flipped bit in a record", edited(flip_state)
    yield "a flipped bit in a proof", edited(flip_proof)
    yield "a dropped record", edited(lambda d: d["records"].pop(1))
    yield "two records swapped", edited(lambda d: d["records"].reverse())
    yield "a moved leaf index", edited(lambda d: d["records"][0].update(leaf_index=1))
    yield "another position", edited(lambda d: d["records"][0].update(position=2))
    yield "a missing proof hash", edited(lambda d: d["records"][0]["inclusion_proof"].pop())
    yield "another case", edited(lambda d: d.update(case_id=str(uuid.uuid4())))
    yield (
        "an edited checkpoint",
        edited(lambda d: d.update(checkpoint=d["checkpoint"].replace("\n2", "\n3", 1))),
    )
    yield "no records", edited(lambda d: d.update(records=[]))
    yield "another format", edited(lambda d: d.update(format="caseledger-proof-bundle/2"))
    yield "an unknown field", edited(lambda d: d.update(extra=1))
    assert data


def test_a_tampered_bundle_is_rejected(memory_ledger: Ledger) -> None:
    s = scenario_1(memory_ledger)
    text = memory_ledger.prove(s.resolved_case, SIGNER).to_json()
    for what, bad in _mutations(text):
        with pytest.raises((ProofError, CheckpointError)):
            verify_bundle(bad, VERIFIER)
            pytest.fail(f"{what} was accepted")
    with pytest.raises(CheckpointError, match="no signature by key"):
        verify_bundle(text, OTHER_VERIFIER)


def test_only_cases_can_be_proved(memory_ledger: Ledger) -> None:
    s = scenario_1(memory_ledger)
    household = memory_ledger.case(s.medical_case).household_id
    for unknown in (household, uuid.uuid4()):
        with pytest.raises(CaseNotFound, match="does not exist"):
            memory_ledger.prove(unknown, SIGNER)
    with pytest.raises(CheckpointError, match="signer key"):
        memory_ledger.prove(s.medical_case, VERIFIER)


def test_a_proof_is_refused_for_a_record_that_no_longer_matches(
    tmp_path: Path, clock: FixedClock
) -> None:
    db = tmp_path / "ledger.db"
    with Ledger.open(db, clock=clock, master_key=MASTER_KEY) as ledger:
        s = scenario_1(ledger)
        with sqlite3.connect(db) as con:
            con.execute(
                "UPDATE stored_events SET state = CAST(state || x'00' AS BLOB) "
                "WHERE originator_id = ? AND originator_version = 2",
                (s.medical_case.hex,),
            )
        with pytest.raises(IntegrityError, match="does not match its leaf hash"):
            ledger.prove(s.medical_case, SIGNER)
        verify_bundle(ledger.prove(s.resolved_case, SIGNER), VERIFIER)


# --------------------------------------------------------------------------------------
# Key, checkpoint and bundle files


def test_a_key_pair_is_written_with_the_secret_private(tmp_path: Path) -> None:
    secret, public = write_key_pair(tmp_path / "auditor", ORIGIN)
    assert (secret.name, public.name) == ("auditor.key", "auditor.pub")
    assert secret.stat().st_mode & 0o777 == 0o600
    signer, verifier = read_signer_key(secret), read_verifier_key(public)
    note = sign_checkpoint(Checkpoint(ORIGIN, 0, merkle_root([])), signer)
    assert verify_checkpoint(note, verifier).origin == ORIGIN
    with pytest.raises(ConfigurationError, match="exists already"):
        write_key_pair(tmp_path / "auditor", ORIGIN)
    with pytest.raises(CheckpointError, match="key name"):
        write_key_pair(tmp_path / "bad", "has space")
    with pytest.raises(CheckpointError, match=r"give the \.key file"):
        read_signer_key(public)
    with pytest.raises(CheckpointError, match=r"give the \.pub file"):
        read_verifier_key(secret)
    with pytest.raises(ConfigurationError, match="no such file"):
        read_verifier_key(tmp_path / "missing.pub")
    with pytest.raises(ConfigurationError, match="does not exist"):
        write_key_pair(tmp_path / "no" / "dir", ORIGIN)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_malformed_files_are_refused_with_one_line(tmp_path: Path, data: bytes) -> None:
    for reader, errors in (
        (read_signer_key, (CheckpointError, ConfigurationError)),
        (read_verifier_key, (CheckpointError, ConfigurationError)),
        (read_checkpoint, (CheckpointError, ConfigurationError)),
        (read_bundle, (ProofError, ConfigurationError)),
    ):
        path = _write(tmp_path / "input", data)
        try:
            reader(path)
        except errors as e:
            message = str(e)
        else:
            continue
        assert message
        assert "\n" not in message


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(value=_json)
def test_any_json_that_is_not_a_bundle_is_refused(value: object) -> None:
    with pytest.raises(ProofError) as info:
        ProofBundle.from_json(json.dumps(value))
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def bundle_text() -> Iterator[str]:
    with Ledger.open(":memory:", clock=FixedClock(kst(2023, 6, 1)), master_key=MASTER_KEY) as led:
        s = scenario_1(led)
        yield led.prove(s.resolved_case, SIGNER).to_json()


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_a_bundle_with_any_field_replaced_fails_cleanly(
    bundle_text: str, data: st.DataObject
) -> None:
    document = json.loads(bundle_text)
    paths: list[tuple[object, object]] = [(document, k) for k in document]
    for record in document["records"]:
        paths.extend((record, k) for k in record)
        paths.extend((record["inclusion_proof"], i) for i in range(len(record["inclusion_proof"])))
    container, key = data.draw(st.sampled_from(paths))
    replacement = data.draw(_json)
    container[key] = replacement  # type: ignore[index]
    try:
        verify_bundle(json.dumps(document), VERIFIER)
    except (ProofError, CheckpointError) as e:
        message = str(e)
    else:  # replaced by an equal value
        assert document == json.loads(bundle_text)
        return
    assert message
    assert "\n" not in message


def test_a_bundle_file_that_is_too_deep_or_huge_is_refused(tmp_path: Path) -> None:
    deep = _write(tmp_path / "deep.json", b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ProofError, match="not valid JSON"):
        read_bundle(deep)
    huge_number = _write(tmp_path / "n.json", b'{"format": ' + b"9" * 10_000 + b"}")
    with pytest.raises(ProofError):
        read_bundle(huge_number)
    with pytest.raises(ProofError, match="not UTF-8"):
        ProofBundle.from_json(b"\xff\xfe")
