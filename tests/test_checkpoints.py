"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes with Ed25519 keys."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseledger.errors import CheckpointError, IntegrityError
from caseledger.integrity import (
    EMPTY_ROOT,
    MAX_NOTE_SIZE,
    Checkpoint,
    _open_note,
    _sign_note,
    generate_key,
    merkle_root,
    parse_checkpoint,
    public_key_from_signer,
    sign_checkpoint,
    verify_checkpoint,
)

EM_DASH = "\N{EM DASH}"

# The example key and note of the reference implementation, golang.org/x/mod/sumdb/note.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIGNATURE_LINE = (
    f"{EM_DASH} PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

# The example checkpoint of https://c2sp.org/tlog-checkpoint (its key is not published).
C2SP_EXAMPLE = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    f"{EM_DASH} example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)

ORIGIN = "example.org/caseledger/test"
SIGNER, VERIFIER = generate_key(ORIGIN)
OTHER_SIGNER, OTHER_VERIFIER = generate_key("example.org/other")
SAME_NAME_SIGNER, SAME_NAME_VERIFIER = generate_key(ORIGIN)
CHECKPOINT = Checkpoint(ORIGIN, 3, merkle_root([b"a", b"b", b"c"]))
NOTE = sign_checkpoint(CHECKPOINT, SIGNER)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _key_parts(key: str) -> tuple[str, str, bytes]:
    name, key_hash, encoded = key.removeprefix("PRIVATE+KEY+").split("+", 2)
    return name, key_hash, base64.b64decode(encoded)


# --------------------------------------------------------------------------------------
# Known answers


def test_reference_key_strings_and_signature() -> None:
    assert public_key_from_signer(GO_SIGNER) == GO_VERIFIER
    # Ed25519 is deterministic, so signing the same text reproduces the published note.
    assert _sign_note(GO_TEXT, GO_SIGNER) == GO_TEXT + "\n" + GO_SIGNATURE_LINE
    text, signatures = _open_note(GO_TEXT + "\n" + GO_SIGNATURE_LINE)
    assert text == GO_TEXT
    assert [(name, blob[:4].hex()) for name, blob in signatures] == [("PeterNeumann", "c74f20a3")]
    # It is a signed note but not a checkpoint: two lines, no tree size or root.
    with pytest.raises(CheckpointError, match="origin, size and root hash lines"):
        verify_checkpoint(GO_TEXT + "\n" + GO_SIGNATURE_LINE, GO_VERIFIER)


def test_reference_key_hash_is_computed_as_specified() -> None:
    name, key_hash, raw = _key_parts(GO_VERIFIER)
    assert raw[0] == 0x01
    digest = hashlib.sha256(name.encode() + b"\n" + b"\x01" + raw[1:]).digest()
    assert digest[:4].hex() == key_hash


def test_parses_the_specification_example() -> None:
    checkpoint, signatures = parse_checkpoint(C2SP_EXAMPLE)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert [(name, len(blob)) for name, blob in signatures] == [
        ("example.com/behind-the-sofa", 4 + 64)
    ]
    assert parse_checkpoint(C2SP_EXAMPLE.encode()) == (checkpoint, signatures)
    with pytest.raises(CheckpointError, match="no signature by key"):
        verify_checkpoint(C2SP_EXAMPLE, VERIFIER)


def test_body_format() -> None:
    assert Checkpoint("example.org/log", 0, EMPTY_ROOT).body() == (
        b"example.org/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    )


# --------------------------------------------------------------------------------------
# Keys


def test_generated_keys_have_the_signed_note_formats() -> None:
    name, key_hash, seed = _key_parts(SIGNER)
    assert SIGNER.startswith("PRIVATE+KEY+")
    assert name == ORIGIN
    assert re.fullmatch("[0-9a-f]{8}", key_hash)
    assert len(seed) == 33
    assert seed[0] == 0x01
    v_name, v_hash, public = _key_parts(VERIFIER)
    assert (v_name, v_hash) == (name, key_hash)
    assert len(public) == 33
    assert public[0] == 0x01
    assert hashlib.sha256(name.encode() + b"\n" + public).digest()[:4].hex() == key_hash
    assert public_key_from_signer(SIGNER) == VERIFIER
    assert generate_key(ORIGIN) != generate_key(ORIGIN)


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\there", "nbsp\u00a0", "\x00"])
def test_generate_key_rejects_bad_names(name: str) -> None:
    with pytest.raises(CheckpointError, match="key name"):
        generate_key(name)


def _manglings(key: str) -> list[str]:
    """Every proper substring of the key and every single-character change."""
    out = {key[i:j] for i in range(len(key) + 1) for j in range(i, len(key) + 1)}
    for i, ch in enumerate(key):
        out.add(key[:i] + chr(ord(ch) + 1) + key[i + 1 :])
    out.discard(key)
    return sorted(out)


def test_mangled_verifier_keys_are_rejected() -> None:
    bad = [
        *_manglings(GO_VERIFIER),
        # A wrong-length key and an unknown algorithm, each with a matching key hash.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        GO_VERIFIER + "\n",
        GO_SIGNER,
    ]
    note = sign_checkpoint(CHECKPOINT, GO_SIGNER)
    assert verify_checkpoint(note, GO_VERIFIER) == CHECKPOINT
    for key in bad:
        with pytest.raises(CheckpointError):
            verify_checkpoint(note, key)


def test_mangled_signer_keys_are_rejected() -> None:
    for key in [*_manglings(GO_SIGNER), GO_VERIFIER]:
        with pytest.raises(CheckpointError):
            public_key_from_signer(key)
        with pytest.raises(CheckpointError):
            sign_checkpoint(CHECKPOINT, key)


def test_keys_of_wrong_type_or_with_bad_names_are_rejected() -> None:
    with pytest.raises(CheckpointError, match="key name"):
        generate_key("\udc80")
    with pytest.raises(CheckpointError, match="verifier key must be a str"):
        verify_checkpoint(NOTE, VERIFIER.encode())  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="signer key must start with"):
        public_key_from_signer(SIGNER.encode())  # type: ignore[arg-type]
    _, key_hash, seed = _key_parts(SIGNER)
    with pytest.raises(CheckpointError, match="signer key name"):
        public_key_from_signer(f"PRIVATE+KEY+a b+{key_hash}+{_b64(seed)}")
    _, key_hash, public = _key_parts(VERIFIER)
    with pytest.raises(CheckpointError, match="verifier key name"):
        verify_checkpoint(NOTE, f"a\u3000b+{key_hash}+{_b64(public)}")


def test_only_checkpoints_are_signed() -> None:
    with pytest.raises(CheckpointError, match="expected a Checkpoint"):
        sign_checkpoint(CHECKPOINT.body(), SIGNER)  # type: ignore[arg-type]


def test_signer_key_errors_do_not_reveal_the_key() -> None:
    # The base64 seed may itself contain "+", so split off exactly four fields.
    seed = SIGNER.split("+", 4)[4]
    assert len(seed) == 44
    other_last = "A" if SIGNER[-1] != "A" else "B"
    for mangled in (SIGNER[:-2] + "!!", SIGNER[:-1] + other_last, SIGNER.replace("+", "+x", 3)):
        with pytest.raises(CheckpointError) as info:
            public_key_from_signer(mangled)
        assert seed[:8] not in str(info.value)


# --------------------------------------------------------------------------------------
# Signing and verifying


def test_round_trip() -> None:
    root_b64 = _b64(CHECKPOINT.root)
    body = f"{ORIGIN}\n3\n{root_b64}\n"
    assert NOTE.startswith(body + "\n" + f"{EM_DASH} {ORIGIN} ")
    assert NOTE.endswith("\n")
    assert NOTE.count("\n") == 5
    parsed, signatures = parse_checkpoint(NOTE)
    assert parsed == CHECKPOINT
    assert len(signatures) == 1
    name, blob = signatures[0]
    assert name == ORIGIN
    assert len(blob) == 68
    assert blob[:4].hex() == _key_parts(VERIFIER)[1]
    assert verify_checkpoint(NOTE, VERIFIER) == CHECKPOINT
    assert verify_checkpoint(NOTE.encode(), VERIFIER) == CHECKPOINT
    assert verify_checkpoint(NOTE, VERIFIER, origin=ORIGIN) == CHECKPOINT


@given(
    origin=st.text(min_size=1, max_size=40).filter(
        lambda s: not s.isspace() and "\n" not in s and not re.search(r"[\x00-\x1f]", s)
    ),
    size=st.integers(min_value=0, max_value=2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
)
@settings(max_examples=50, deadline=None)
def test_round_trip_any_checkpoint(origin: str, size: int, root: bytes) -> None:
    try:
        checkpoint = Checkpoint(origin, size, root)
    except CheckpointError:
        # Only origins that cannot be encoded (lone surrogates) may be refused.
        with pytest.raises(UnicodeEncodeError):
            origin.encode()
        return
    note = sign_checkpoint(checkpoint, SIGNER)
    assert parse_checkpoint(note)[0] == checkpoint
    assert verify_checkpoint(note, VERIFIER) == checkpoint


def test_wrong_origin_is_rejected() -> None:
    with pytest.raises(CheckpointError, match=r"expected 'example\.org/elsewhere'"):
        verify_checkpoint(NOTE, VERIFIER, origin="example.org/elsewhere")


@pytest.mark.parametrize("verifier", [OTHER_VERIFIER, SAME_NAME_VERIFIER])
def test_signature_by_another_key_is_rejected(verifier: str) -> None:
    with pytest.raises(CheckpointError, match="no signature by key"):
        verify_checkpoint(NOTE, verifier)


def _resign_body(note: str, body: str) -> str:
    """The note with its body replaced and its signature lines kept."""
    return body + note[note.rindex("\n\n") + 1 :]


@pytest.mark.parametrize(
    "tampered",
    [
        Checkpoint(ORIGIN, 4, CHECKPOINT.root),
        Checkpoint(ORIGIN, 2, CHECKPOINT.root),
        Checkpoint(ORIGIN, 3, merkle_root([b"a", b"b", b"x"])),
        Checkpoint(ORIGIN + "x", 3, CHECKPOINT.root),
        Checkpoint("example.org/other", 3, CHECKPOINT.root),
    ],
)
def test_tampered_checkpoint_is_rejected(tampered: Checkpoint) -> None:
    note = _resign_body(NOTE, tampered.body().decode())
    assert parse_checkpoint(note)[0] == tampered  # well-formed, just not signed
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(note, VERIFIER)


def test_extension_line_is_signed_too() -> None:
    body = CHECKPOINT.body().decode() + "extension line\n"
    note = _sign_note(body, SIGNER)
    assert verify_checkpoint(note, VERIFIER) == CHECKPOINT
    stripped = _resign_body(note, CHECKPOINT.body().decode())
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(stripped, VERIFIER)


def test_flipped_signature_bit_is_rejected() -> None:
    _, [(name, blob)] = parse_checkpoint(NOTE)
    body = CHECKPOINT.body().decode()
    for byte in (4, 40, 67):
        bad = bytearray(blob)
        bad[byte] ^= 0x01
        note = f"{body}\n{EM_DASH} {name} {_b64(bytes(bad))}\n"
        with pytest.raises(CheckpointError, match="does not verify"):
            verify_checkpoint(note, VERIFIER)


def test_matching_signature_of_wrong_length_is_rejected() -> None:
    _, [(name, blob)] = parse_checkpoint(NOTE)
    note = f"{CHECKPOINT.body().decode()}\n{EM_DASH} {name} {_b64(blob[:-1])}\n"
    with pytest.raises(CheckpointError, match="Ed25519 signatures are 64"):
        verify_checkpoint(note, VERIFIER)


def test_cosigned_note() -> None:
    other_line = _sign_note(CHECKPOINT.body().decode(), OTHER_SIGNER).split("\n\n", 1)[1]
    cosigned = NOTE + other_line
    assert [name for name, _ in parse_checkpoint(cosigned)[1]] == [ORIGIN, "example.org/other"]
    assert verify_checkpoint(cosigned, VERIFIER) == CHECKPOINT
    assert verify_checkpoint(cosigned, OTHER_VERIFIER) == CHECKPOINT
    # A signature that claims to be by a known key must verify, even if another does.
    _, [(name, blob)] = parse_checkpoint(NOTE)
    forged = f"{EM_DASH} {name} {_b64(blob[:4] + bytes(64))}\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(NOTE + forged, VERIFIER)
    # An unknown signature sharing only the name is ignored.
    unknown = f"{EM_DASH} {name} {_b64(b'XXXX' + bytes(64))}\n"
    assert verify_checkpoint(NOTE + unknown, VERIFIER) == CHECKPOINT


# --------------------------------------------------------------------------------------
# Strict parsing

ROOT = _b64(CHECKPOINT.root)
SIG = NOTE[NOTE.rindex("\n\n") + 2 :]


def _note(body: str, sig: str = SIG) -> str:
    return body + "\n" + sig


MALFORMED: list[tuple[str, str | bytes]] = [
    ("empty", ""),
    ("only a newline", "\n"),
    ("missing root line", _note(f"{ORIGIN}\n3\n")),
    ("missing size and root", _note(f"{ORIGIN}\n")),
    ("empty origin", _note(f"\n3\n{ROOT}\n")),
    ("blank origin", _note(f"   \n3\n{ROOT}\n")),
    ("leading zero size", _note(f"{ORIGIN}\n03\n{ROOT}\n")),
    ("double zero size", _note(f"{ORIGIN}\n00\n{ROOT}\n")),
    ("signed size", _note(f"{ORIGIN}\n+3\n{ROOT}\n")),
    ("negative size", _note(f"{ORIGIN}\n-3\n{ROOT}\n")),
    ("size with space", _note(f"{ORIGIN}\n 3\n{ROOT}\n")),
    ("size with underscore", _note(f"{ORIGIN}\n1_000\n{ROOT}\n")),
    ("non-ASCII digit size", _note(f"{ORIGIN}\n\u0663\n{ROOT}\n")),
    ("fractional size", _note(f"{ORIGIN}\n3.0\n{ROOT}\n")),
    ("hex size", _note(f"{ORIGIN}\n0x3\n{ROOT}\n")),
    ("size of 2**64", _note(f"{ORIGIN}\n{2**64}\n{ROOT}\n")),
    ("size of 5000 digits", _note(f"{ORIGIN}\n{'9' * 5000}\n{ROOT}\n")),
    ("empty size", _note(f"{ORIGIN}\n\n{ROOT}\n")),
    ("root not base64", _note(f"{ORIGIN}\n3\n{ROOT[:-2]}!=\n")),
    ("root without padding", _note(f"{ORIGIN}\n3\n{ROOT.rstrip('=')}\n")),
    ("root url-safe base64", _note(f"{ORIGIN}\n3\n{_b64(bytes([0xFB] * 32)).replace('+', '-')}\n")),
    ("root non-canonical base64", _note(f"{ORIGIN}\n3\n{_b64(bytes(32))[:-2]}B=\n")),
    ("root 31 bytes", _note(f"{ORIGIN}\n3\n{_b64(bytes(31))}\n")),
    ("root 33 bytes", _note(f"{ORIGIN}\n3\n{_b64(bytes(33))}\n")),
    ("root in hex", _note(f"{ORIGIN}\n3\n{CHECKPOINT.root.hex()}\n")),
    ("empty extension line", _note(f"{ORIGIN}\n3\n{ROOT}\n\next\n")),
    ("no blank line", f"{ORIGIN}\n3\n{ROOT}\n{SIG}"),
    ("no signature", f"{ORIGIN}\n3\n{ROOT}\n\n"),
    ("no final newline", NOTE[:-1]),
    ("blank line after signatures", NOTE + "\n"),
    ("carriage returns", NOTE.replace("\n", "\r\n")),
    ("tab in origin", _note(f"{ORIGIN}\tx\n3\n{ROOT}\n")),
    ("NUL byte", _note(f"{ORIGIN}\x00\n3\n{ROOT}\n")),
    ("hyphen instead of em dash", NOTE.replace(EM_DASH, "-")),
    ("no space after em dash", NOTE.replace(f"{EM_DASH} ", EM_DASH)),
    ("two spaces in signature", NOTE.replace(f"{ORIGIN} ", f"{ORIGIN}  ", 1)),
    ("signature without name", _note(f"{ORIGIN}\n3\n{ROOT}\n", f"{EM_DASH}  {SIG.split()[-1]}\n")),
    ("signature without blob", _note(f"{ORIGIN}\n3\n{ROOT}\n", f"{EM_DASH} {ORIGIN}\n")),
    ("plus in key name", _note(f"{ORIGIN}\n3\n{ROOT}\n", f"{EM_DASH} a+b {_b64(bytes(68))}\n")),
    ("signature not base64", _note(f"{ORIGIN}\n3\n{ROOT}\n", f"{EM_DASH} k {'*' * 12}\n")),
    ("signature too short", _note(f"{ORIGIN}\n3\n{ROOT}\n", f"{EM_DASH} k {_b64(bytes(4))}\n")),
    ("101 signatures", _note(f"{ORIGIN}\n3\n{ROOT}\n", SIG * 101)),
    ("invalid UTF-8", NOTE.encode().replace(b"\xe2\x80\x94", b"\xe2\x80", 1)),
    ("latin-1 bytes", NOTE.encode("utf-8").replace(ORIGIN.encode(), b"caf\xe9", 1)),
    ("lone surrogate", NOTE.replace(ORIGIN, "\udc80", 1)),
    ("oversize bytes", NOTE.encode() + b"x" * MAX_NOTE_SIZE),
    ("oversize text", NOTE + "\uac00" * (MAX_NOTE_SIZE // 2)),
    ("oversize ASCII text", NOTE + "x" * MAX_NOTE_SIZE),
]


@pytest.mark.parametrize(("what", "note"), MALFORMED, ids=[what for what, _ in MALFORMED])
def test_malformed_notes_are_rejected(what: str, note: str | bytes) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint(note)
    with pytest.raises(CheckpointError):
        verify_checkpoint(note, VERIFIER)


def test_size_zero_and_largest_size_are_accepted() -> None:
    for size in ("0", str(2**64 - 1)):
        checkpoint, _ = parse_checkpoint(_note(f"{ORIGIN}\n{size}\n{ROOT}\n"))
        assert checkpoint.size == int(size)


def test_note_of_exactly_the_maximum_size_is_accepted() -> None:
    padding = MAX_NOTE_SIZE - len(NOTE.encode())
    body = f"{ORIGIN}\n3\n{ROOT}\n{'x' * (padding - 1)}\n"
    note = _note(body)
    assert len(note.encode()) == MAX_NOTE_SIZE
    assert parse_checkpoint(note)[0] == CHECKPOINT


def test_other_input_types_are_rejected() -> None:
    for value in (None, 3, bytearray(NOTE.encode()), [NOTE]):
        with pytest.raises(CheckpointError, match="str or bytes"):
            parse_checkpoint(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("origin", "size", "root"),
    [
        ("", 0, EMPTY_ROOT),
        (" ", 0, EMPTY_ROOT),
        ("a\nb", 0, EMPTY_ROOT),
        ("a\rb", 0, EMPTY_ROOT),
        ("\udc80", 0, EMPTY_ROOT),
        ("log", -1, EMPTY_ROOT),
        ("log", 2**64, EMPTY_ROOT),
        ("log", True, EMPTY_ROOT),
        ("log", 0, EMPTY_ROOT[:31]),
        ("log", 0, EMPTY_ROOT.hex()),
    ],
)
def test_checkpoint_fields_are_validated(origin: str, size: int, root: bytes) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint(origin, size, root)


def test_checkpoint_errors_are_integrity_errors() -> None:
    assert issubclass(CheckpointError, IntegrityError)


# --------------------------------------------------------------------------------------
# Fuzzing: malformed input raises CheckpointError and nothing else


def test_every_truncation_of_a_valid_note_is_rejected() -> None:
    raw = NOTE.encode()
    for end in range(len(raw)):
        with pytest.raises(CheckpointError):
            parse_checkpoint(raw[:end])
        with pytest.raises(CheckpointError):
            verify_checkpoint(raw[:end], VERIFIER)


def _parse_or_reject(note: str | bytes) -> None:
    with contextlib.suppress(CheckpointError):
        parse_checkpoint(note)
    try:
        checkpoint = verify_checkpoint(note, VERIFIER)
    except CheckpointError:
        return
    assert checkpoint == CHECKPOINT


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(note: bytes) -> None:
    _parse_or_reject(note)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_random_text(note: str) -> None:
    _parse_or_reject(note)


# Text made of the note's own pieces reaches the deeper parsing paths.
_pieces = st.sampled_from(
    [
        *("\n", "\n\n", " ", EM_DASH, f"{EM_DASH} ", ORIGIN, "0", "3", "03", ROOT, "=", "+", "/"),
        *(SIG, SIG.split()[-1], "\r", "\x00", "\udc80", "\u3000"),
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_pieces, max_size=14).map("".join))
def test_fuzz_note_shaped_text(note: str) -> None:
    _parse_or_reject(note)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(NOTE.encode())),
            st.sampled_from(["insert", "delete", "replace"]),
            st.binary(min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_fuzz_edits_of_a_valid_note(edits: list[tuple[int, str, bytes]]) -> None:
    raw = bytearray(NOTE.encode())
    for position, kind, data in edits:
        position = min(position, len(raw))
        if kind == "insert":
            raw[position:position] = data
        elif kind == "delete":
            del raw[position : position + len(data)]
        else:
            raw[position : position + len(data)] = data
    _parse_or_reject(bytes(raw))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_fuzz_verifier_and_signer_keys(key: str) -> None:
    with pytest.raises(CheckpointError):
        verify_checkpoint(NOTE, key)
    with pytest.raises(CheckpointError):
        public_key_from_signer(key)
