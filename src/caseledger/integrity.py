"""Merkle tree proofs and signed checkpoints for the ledger's append-only log.

The model
---------

The ledger is a sequence of *leaves*: opaque byte strings, one per stored
record. What a leaf contains (a canonical encoding of the record) is decided
elsewhere; this module only hashes bytes and never touches a database.

The leaves form a Merkle tree exactly as RFC 9162 §2.1 (identical to RFC 6962
§2.1) defines it:

* ``leaf_hash(d) = SHA-256(0x00 ‖ d)``
* ``node_hash(l, r) = SHA-256(0x01 ‖ l ‖ r)``
* the root of ``n > 1`` leaves splits them at ``k``, the largest power of two
  strictly smaller than ``n``: ``node_hash(root(D[0:k]), root(D[k:n]))``
* the root of no leaves is ``SHA-256(b"")`` (:data:`EMPTY_ROOT`).

Because the root commits to every leaf and to their order, two parties who
agree on ``(size, root)`` agree on the whole log. An *inclusion proof* shows
that a leaf sits at a given index of a tree with a given root; a *consistency
proof* shows that the tree with ``old_size`` leaves is a prefix of the tree
with ``new_size`` leaves, i.e. that nothing was rewritten, only appended.
Proofs only bind what the roots bind: trust a ``(size, root)`` pair because it
comes from a verified checkpoint, not because some proof happened to verify
with it.

A *checkpoint* publishes ``(origin, size, root)`` as a C2SP ``tlog-checkpoint``
(https://c2sp.org/tlog-checkpoint) in a C2SP ``signed-note``
(https://c2sp.org/signed-note) signed with Ed25519, so checkpoints can be
checked with the same tools as other transparency logs::

    >>> signer, verifier = generate_key("example.org/caseledger")
    >>> note = sign_checkpoint(Checkpoint("example.org/caseledger", 0, EMPTY_ROOT), signer)
    >>> verify_checkpoint(note, verifier).size
    0

Every verification failure about proofs raises :class:`~caseledger.errors.ProofError`
and every one about checkpoints or keys raises
:class:`~caseledger.errors.CheckpointError`; both are
:class:`~caseledger.errors.IntegrityError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from caseledger.errors import CheckpointError, ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_NOTE_SIZE",
    "Checkpoint",
    "MerkleAccumulator",
    "consistency_proof",
    "consistency_proof_from_hashes",
    "consistency_proof_ranges",
    "generate_key",
    "inclusion_proof",
    "inclusion_proof_from_hashes",
    "inclusion_proof_ranges",
    "key_name",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "parse_checkpoint",
    "public_key_from_signer",
    "root_from_leaf_hashes",
    "sign_checkpoint",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256

HASH_SIZE = 32
"""Length in bytes of every hash in this module (SHA-256)."""

EMPTY_ROOT = _sha256(b"").digest()
"""Root hash of the tree with no leaves: ``SHA-256(b"")``."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


# --------------------------------------------------------------------------------------
# Hashing


def leaf_hash(leaf: bytes) -> bytes:
    """Return the RFC 9162 hash of one leaf: ``SHA-256(0x00 ‖ leaf)``.

    >>> leaf_hash(b"").hex()[:16]
    '6e340b9cffb37a98'
    """
    return _sha256(_LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 hash of an interior node: ``SHA-256(0x01 ‖ left ‖ right)``."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _root(level: Sequence[bytes]) -> bytes:
    # Pairing neighbours level by level, and carrying an unpaired last node up
    # unchanged, builds exactly the RFC's "split at the largest power of two"
    # tree: every left subtree it closes is perfect, so the splits coincide.
    # It needs no recursion and allocates O(n) in total over all levels.
    n = len(level)
    if n == 0:
        return EMPTY_ROOT
    sha, prefix = _sha256, _NODE_PREFIX
    while n > 1:
        pairs = iter(level)
        upper = [
            sha(prefix + left + right).digest() for left, right in zip(pairs, pairs, strict=False)
        ]
        if n & 1:
            upper.append(level[-1])
        level = upper
        n = len(level)
    return bytes(level[0])


def _check_hashes(hashes: Sequence[bytes], what: str) -> None:
    # map(len) runs in C, so this costs a few percent of the hashing it guards.
    if hashes and set(map(len, hashes)) != {HASH_SIZE}:
        for position, value in enumerate(hashes):
            if len(value) != HASH_SIZE:
                raise ProofError(
                    f"{what} {position} is {len(value)} bytes long; "
                    f"every hash must be {HASH_SIZE} bytes (SHA-256)"
                )


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash of ``leaves`` (raw leaf data, not yet hashed).

    >>> merkle_root([]) == EMPTY_ROOT
    True
    >>> merkle_root([b"a"]) == leaf_hash(b"a")
    True
    >>> merkle_root([b"a", b"b"]) == node_hash(leaf_hash(b"a"), leaf_hash(b"b"))
    True
    """
    return _root([leaf_hash(leaf) for leaf in leaves])


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash of a tree whose leaf hashes are ``hashes``.

    Same result as :func:`merkle_root` on the leaves the hashes came from, for
    callers that store leaf hashes. Iterative, about one SHA-256 per leaf.
    Raises :class:`ProofError` if any hash is not 32 bytes long.

    >>> root_from_leaf_hashes([leaf_hash(b"a"), leaf_hash(b"b")]) == merkle_root([b"a", b"b"])
    True
    """
    _check_hashes(hashes, "leaf hash")
    return _root(hashes)


class MerkleAccumulator:
    """Computes a Merkle root from leaf hashes streamed in one at a time.

    Keeps only the roots of the perfect subtrees the leaves so far decompose
    into (one per set bit of :attr:`size`), so memory is O(log n) however long
    the log is.

    >>> acc = MerkleAccumulator()
    >>> acc.extend(leaf_hash(leaf) for leaf in [b"a", b"b", b"c"])
    >>> acc.size, acc.root() == merkle_root([b"a", b"b", b"c"])
    (3, True)
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._size = 0
        # Roots of perfect subtrees, largest (leftmost) first.
        self._stack: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaf hashes appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Add the hash of the next leaf. Raises :class:`ProofError` unless it is 32 bytes."""
        if not isinstance(leaf_hash, bytes) or len(leaf_hash) != HASH_SIZE:
            raise ProofError(
                f"leaf hash {self._size} must be {HASH_SIZE} bytes, got {_describe(leaf_hash)}"
            )
        stack = self._stack
        node = leaf_hash
        # Each trailing one bit of the old size is a perfect subtree of the same
        # height as the one just completed; merge them like a binary carry.
        carry = self._size
        while carry & 1:
            node = _sha256(_NODE_PREFIX + stack.pop() + node).digest()
            carry >>= 1
        stack.append(node)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append every hash in ``leaf_hashes`` in order."""
        for value in leaf_hashes:
            self.append(value)

    def root(self) -> bytes:
        """Return the root of the tree of all leaves appended so far."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        node = stack[-1]
        for left in reversed(stack[:-1]):
            node = _sha256(_NODE_PREFIX + left + node).digest()
        return node


# --------------------------------------------------------------------------------------
# Producing proofs


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (for ``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ProofError(f"{name} must not be negative, got {value}")
    return value


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Return the inclusion proof (RFC 9162 ``PATH``) for ``leaves[index]``.

    The proof lists sibling hashes from the leaf up to the root. Raises
    :class:`ProofError` if ``index`` is not a position in ``leaves``.

    >>> leaves = [b"a", b"b", b"c"]
    >>> proof = inclusion_proof(leaves, 2)
    >>> proof == [merkle_root(leaves[:2])]
    True
    >>> verify_inclusion(b"c", 2, 3, proof, merkle_root(leaves))
    """
    return inclusion_proof_from_hashes([leaf_hash(leaf) for leaf in leaves], index)


def inclusion_proof_from_hashes(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return the inclusion proof for leaf ``index`` of the tree with leaf hashes ``hashes``.

    Same as :func:`inclusion_proof` for callers that store leaf hashes. Raises
    :class:`ProofError` if ``index`` is out of range or a hash is not 32 bytes.
    """
    ranges = inclusion_proof_ranges(index, len(hashes))
    _check_hashes(hashes, "leaf hash")
    # The siblings are disjoint ranges, so hashing them costs O(n) in total.
    return [_root(hashes[lo:hi]) for lo, hi in ranges]


def inclusion_proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[lo, hi)`` whose subtree roots form the inclusion proof of ``index``.

    In proof order (leaf first). Each range is a subtree of the RFC 9162 tree of
    ``size`` leaves, so a caller that stores subtree roots can assemble the proof
    without the leaves. Raises :class:`ProofError` unless ``0 <= index < size``.

    >>> inclusion_proof_ranges(2, 3)
    [(0, 2)]
    """
    _check_int(index, "index")
    _check_int(size, "size")
    if index >= size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    # Walk down from the root, keeping the sibling subtree at each split.
    siblings: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            siblings.append((lo + k, hi))
            hi = lo + k
        else:
            siblings.append((lo, lo + k))
            lo += k
    siblings.reverse()
    return siblings


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the consistency proof (RFC 9162 ``PROOF``) from the first ``old_size`` leaves to all.

    The proof is empty when ``old_size`` is 0 or ``len(leaves)``. Raises
    :class:`ProofError` if ``old_size`` is negative or larger than ``len(leaves)``.

    >>> leaves = [b"a", b"b", b"c"]
    >>> proof = consistency_proof(leaves, 2)
    >>> verify_consistency(2, 3, merkle_root(leaves[:2]), merkle_root(leaves), proof)
    """
    return consistency_proof_from_hashes([leaf_hash(leaf) for leaf in leaves], old_size)


def consistency_proof_from_hashes(hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the consistency proof from the first ``old_size`` leaf hashes to all of ``hashes``.

    Same as :func:`consistency_proof` for callers that store leaf hashes.
    """
    ranges = consistency_proof_ranges(old_size, len(hashes))
    _check_hashes(hashes, "leaf hash")
    return [_root(hashes[lo:hi]) for lo, hi in ranges]


def consistency_proof_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[lo, hi)`` whose subtree roots form the consistency proof.

    In proof order, for the proof from ``old_size`` to ``new_size`` leaves; empty
    when ``old_size`` is 0 or ``new_size``. Each range is a subtree of the RFC 9162
    tree of ``new_size`` leaves. Raises :class:`ProofError` if ``old_size`` is
    negative or larger than ``new_size``.

    >>> consistency_proof_ranges(3, 4)
    [(2, 3), (3, 4), (0, 2)]
    """
    _check_int(old_size, "old_size")
    _check_int(new_size, "new_size")
    if old_size > new_size:
        raise ProofError(f"old_size {old_size} is larger than the tree's size {new_size}")
    if old_size in (0, new_size):
        return []
    # Iterative SUBPROOF(m, D[lo:hi], b): ranges are collected from the root
    # downwards and reversed at the end, because the RFC lists them leaf-first.
    proof: list[tuple[int, int]] = []
    lo, hi, m = 0, new_size, old_size
    old_is_whole_left_subtree = True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append((lo + k, hi))
            hi = lo + k
        else:
            proof.append((lo, lo + k))
            lo += k
            m -= k
            old_is_whole_left_subtree = False
    if not old_is_whole_left_subtree:
        # The verifier knows the old root already; it needs this subtree's
        # root only when the old tree is not one of the new tree's subtrees.
        proof.append((lo, hi))
    proof.reverse()
    return proof


# --------------------------------------------------------------------------------------
# Verifying proofs


def _describe(value: object) -> str:
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    return f"a {type(value).__name__}"


def _check_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise ProofError(f"{what} must be bytes, got {_describe(value)}")
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes (SHA-256), got {len(value)} bytes")
    return value


def _check_proof(proof: Sequence[bytes]) -> list[bytes]:
    if isinstance(proof, (bytes, bytearray, str)):
        raise ProofError("proof must be a sequence of 32-byte hashes, not a single string")
    return [_check_hash(element, f"proof hash {i}") for i, element in enumerate(proof)]


def _wrong_length(kind: str, got: int, want: int, context: str) -> ProofError:
    hint = "it has extra hashes" if got > want else "hashes are missing"
    return ProofError(f"{kind} proof {context} must have exactly {want} hashes, got {got} ({hint})")


def _inclusion_proof_length(index: int, size: int) -> int:
    # Levels below the point where the paths to `index` and to the last leaf
    # diverge always have a sibling; above it, only where `index` is a right child.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``size`` leaves with root ``root``.

    Follows RFC 9162 §2.1.3.2. Returns ``None`` if the proof verifies and
    raises :class:`ProofError`, saying what is wrong, otherwise.

    >>> leaves = [b"a", b"b", b"c", b"d", b"e"]
    >>> verify_inclusion(b"d", 3, 5, inclusion_proof(leaves, 3), merkle_root(leaves))
    >>> verify_inclusion(b"x", 3, 5, inclusion_proof(leaves, 3), merkle_root(leaves))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    caseledger.errors.ProofError: inclusion proof does not lead to the given root: ...
    """
    _check_int(index, "index")
    _check_int(size, "size")
    if index >= size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    if not isinstance(leaf, bytes):
        raise ProofError(f"leaf must be bytes, got {_describe(leaf)}")
    _check_hash(root, "root")
    path = _check_proof(proof)
    want = _inclusion_proof_length(index, size)
    if len(path) != want:
        raise _wrong_length("inclusion", len(path), want, f"for index {index} of size {size}")

    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in path:
        if sn == 0:  # pragma: no cover - excluded by the length check above
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # pragma: no cover - excluded by the length check above
        raise ProofError("inclusion proof is shorter than the path to the root")
    if not hmac.compare_digest(r, root):
        raise ProofError(
            "inclusion proof does not lead to the given root: the leaf, index, size, "
            "a proof hash or the root is wrong"
        )


def _consistency_proof_length(old_size: int, new_size: int) -> int:
    # The proof is the inclusion proof of the old tree's last leaf, minus the
    # levels inside the old tree's rightmost perfect subtree, plus that
    # subtree's root unless it is the whole old tree (whose root is known).
    shift = (old_size & -old_size).bit_length() - 1
    inner = ((old_size - 1) ^ (new_size - 1)).bit_length()
    border = ((old_size - 1) >> inner).bit_count()
    seed = 0 if old_size == 1 << shift else 1
    return seed + (inner - shift) + border


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Check that the tree ``(old_size, old_root)`` is a prefix of ``(new_size, new_root)``.

    Follows RFC 9162 §2.1.4.2. Equal sizes need an empty proof and equal
    roots; ``old_size == 0`` needs an empty proof and ``old_root ==``
    :data:`EMPTY_ROOT`. Returns ``None`` if the proof verifies and raises
    :class:`ProofError`, saying what is wrong, otherwise.

    >>> leaves = [b"a", b"b", b"c", b"d", b"e"]
    >>> old, new = merkle_root(leaves[:3]), merkle_root(leaves)
    >>> verify_consistency(3, 5, old, new, consistency_proof(leaves, 3))
    >>> verify_consistency(3, 5, new, old, consistency_proof(leaves, 3))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    caseledger.errors.ProofError: consistency proof does not lead to the given old root: ...
    """
    _check_int(old_size, "old_size")
    _check_int(new_size, "new_size")
    if new_size < old_size:
        raise ProofError(
            f"new_size {new_size} is smaller than old_size {old_size}: a log never shrinks"
        )
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    path = _check_proof(proof)

    if old_size == new_size:
        if path:
            raise _wrong_length("consistency", len(path), 0, "between equal sizes")
        if not hmac.compare_digest(old_root, new_root):
            raise ProofError(f"trees of the same size {old_size} have different roots")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ProofError("the root of an empty tree must be SHA-256 of the empty string")
        return
    if old_size == 0:
        if path:
            raise _wrong_length("consistency", len(path), 0, "from the empty tree")
        if old_root != EMPTY_ROOT:
            raise ProofError("the old root of an empty tree must be SHA-256 of the empty string")
        return
    if not path:
        raise ProofError(
            f"consistency proof from size {old_size} to {new_size} is empty, "
            "but a non-empty proof is needed"
        )
    want = _consistency_proof_length(old_size, new_size)
    if len(path) != want:
        raise _wrong_length("consistency", len(path), want, f"from size {old_size} to {new_size}")

    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:  # pragma: no cover - excluded by the length check above
            raise ProofError("consistency proof is longer than the path to the new root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # pragma: no cover - excluded by the length check above
        raise ProofError("consistency proof is shorter than the path to the new root")
    if not hmac.compare_digest(fr, old_root):
        raise ProofError(
            "consistency proof does not lead to the given old root: "
            "a proof hash, a size or the old root is wrong"
        )
    if not hmac.compare_digest(sr, new_root):
        raise ProofError(
            "consistency proof does not lead to the given new root: "
            "a proof hash, a size or the new root is wrong"
        )


# --------------------------------------------------------------------------------------
# Signed checkpoints (C2SP tlog-checkpoint in a C2SP signed-note)

MAX_NOTE_SIZE = 1 << 20
"""Largest signed note, in bytes, that :func:`parse_checkpoint` accepts (1 MiB)."""

_MAX_SIGNATURES = 100  # the signed-note spec requires accepting at least 16
_MAX_TREE_SIZE = (1 << 64) - 1  # tree sizes are uint64 in every other implementation
_ED25519 = 0x01
_SIG_PREFIX = "\N{EM DASH} "
_PRIVATE_PREFIX = "PRIVATE+KEY+"
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_KEY_HASH = re.compile(r"[0-9a-fA-F]{8}")
# Control characters other than newline are forbidden anywhere in a note.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


@dataclass(frozen=True)
class Checkpoint:
    """A log's claim that its tree of ``size`` leaves has root hash ``root``.

    ``origin`` names the log (C2SP recommends a schema-less URL such as
    ``example.org/caseledger``). Raises :class:`CheckpointError` if a field
    cannot be written as a checkpoint.
    """

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or self.origin.isspace():
            raise CheckpointError("checkpoint origin must be a non-empty, non-blank string")
        if "\n" in self.origin or _CONTROL.search(self.origin):
            raise CheckpointError(
                "checkpoint origin must not contain newlines or control characters"
            )
        try:
            self.origin.encode("utf-8")
        except UnicodeEncodeError:
            raise CheckpointError("checkpoint origin is not encodable as UTF-8") from None
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointError(f"checkpoint size must be an int, got {type(self.size).__name__}")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint size must be between 0 and 2**64-1, got {self.size}")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointError(
                f"checkpoint root must be {HASH_SIZE} bytes, got {_describe(self.root)}"
            )

    def body(self) -> bytes:
        """Return the note text that gets signed: origin, size and base64 root, one per line.

        >>> Checkpoint("example.org/log", 0, EMPTY_ROOT).body()
        b'example.org/log\\n0\\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\\n'
        """
        root = base64.b64encode(self.root).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\n".encode()


def _b64decode_strict(text: str) -> bytes | None:
    """Decode standard, padded, canonical base64, or return ``None``."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    # Reject encodings with non-zero padding bits, so each value has one spelling.
    if base64.b64encode(raw).decode("ascii") != text:
        return None
    return raw


def _valid_key_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return (
        bool(name)
        and "+" not in name
        and not any(ch.isspace() for ch in name)
        and _CONTROL.search(name) is None
    )


def _key_hash(name: str, public_key: bytes) -> bytes:
    return _sha256(name.encode() + b"\n" + bytes([_ED25519]) + public_key).digest()[:4]


@dataclass(frozen=True)
class _Verifier:
    name: str
    key_hash: bytes
    public_key: bytes


def _parse_verifier_key(verifier_key: str) -> _Verifier:
    if not isinstance(verifier_key, str):
        raise CheckpointError(f"verifier key must be a str, got {type(verifier_key).__name__}")
    parts = verifier_key.split("+", 2)
    if len(parts) != 3:
        raise CheckpointError("verifier key must look like <name>+<8 hex digits>+<base64 key>")
    name, hex_hash, b64_key = parts
    if not _valid_key_name(name):
        raise CheckpointError(
            "verifier key name must be non-empty, without spaces, plus signs or control characters"
        )
    if not _KEY_HASH.fullmatch(hex_hash):
        raise CheckpointError("verifier key hash must be exactly 8 hexadecimal digits")
    raw = _b64decode_strict(b64_key)
    if raw is None:
        raise CheckpointError("verifier key is not canonical standard base64")
    if len(raw) != 1 + 32 or raw[0] != _ED25519:
        raise CheckpointError("verifier key is not an Ed25519 key (type 0x01 and 32 bytes)")
    public_key = raw[1:]
    key_hash = bytes.fromhex(hex_hash)
    if _key_hash(name, public_key) != key_hash:
        raise CheckpointError("verifier key hash does not match its name and public key")
    return _Verifier(name, key_hash, public_key)


def _parse_signer_key(signer_key: str) -> tuple[str, bytes, Ed25519PrivateKey]:
    # Messages here never include the key string: it is a secret.
    if not isinstance(signer_key, str) or not signer_key.startswith(_PRIVATE_PREFIX):
        raise CheckpointError("signer key must start with PRIVATE+KEY+")
    parts = signer_key[len(_PRIVATE_PREFIX) :].split("+", 2)
    if len(parts) != 3:
        raise CheckpointError(
            "signer key must look like PRIVATE+KEY+<name>+<8 hex digits>+<base64 key>"
        )
    name, hex_hash, b64_key = parts
    if not _valid_key_name(name):
        raise CheckpointError(
            "signer key name must be non-empty, without spaces, plus signs or control characters"
        )
    if not _KEY_HASH.fullmatch(hex_hash):
        raise CheckpointError("signer key hash must be exactly 8 hexadecimal digits")
    raw = _b64decode_strict(b64_key)
    if raw is None:
        raise CheckpointError("signer key is not canonical standard base64")
    if len(raw) != 1 + 32 or raw[0] != _ED25519:
        raise CheckpointError("signer key is not an Ed25519 key (type 0x01 and 32-byte seed)")
    private_key = Ed25519PrivateKey.from_private_bytes(raw[1:])
    key_hash = bytes.fromhex(hex_hash)
    if _key_hash(name, private_key.public_key().public_bytes_raw()) != key_hash:
        raise CheckpointError("signer key hash does not match its name and key")
    return name, key_hash, private_key


def _verifier_string(name: str, public_key: bytes) -> str:
    encoded = base64.b64encode(bytes([_ED25519]) + public_key).decode("ascii")
    return f"{name}+{_key_hash(name, public_key).hex()}+{encoded}"


def generate_key(name: str) -> tuple[str, str]:
    """Generate a new Ed25519 key called ``name``; return ``(signer key, verifier key)``.

    The signer key (``PRIVATE+KEY+<name>+<hash>+<base64>``) is a secret; the
    verifier key (``<name>+<hash>+<base64>``) is published. Both use the
    signed-note formats, so other tools accept them. Raises
    :class:`CheckpointError` if ``name`` is empty or contains spaces or ``+``.
    """
    if not isinstance(name, str) or not _valid_key_name(name):
        raise CheckpointError(
            "key name must be non-empty, without spaces, plus signs or control characters"
        )
    private_key = Ed25519PrivateKey.generate()
    seed = base64.b64encode(bytes([_ED25519]) + private_key.private_bytes_raw()).decode("ascii")
    public_key = private_key.public_key().public_bytes_raw()
    signer = f"{_PRIVATE_PREFIX}{name}+{_key_hash(name, public_key).hex()}+{seed}"
    return signer, _verifier_string(name, public_key)


def public_key_from_signer(signer: str) -> str:
    """Return the verifier key string belonging to the signer key string ``signer``.

    Raises :class:`CheckpointError` if ``signer`` is malformed.
    """
    name, _, private_key = _parse_signer_key(signer)
    return _verifier_string(name, private_key.public_key().public_bytes_raw())


def key_name(key: str) -> str:
    """Return the name of a signer or verifier key string, checking the whole key.

    Raises :class:`CheckpointError` if ``key`` is malformed (the message never
    repeats a signer key, which is a secret).

    >>> signer, verifier = generate_key("example.org/log")
    >>> key_name(signer), key_name(verifier)
    ('example.org/log', 'example.org/log')
    """
    if isinstance(key, str) and key.startswith(_PRIVATE_PREFIX):
        return _parse_signer_key(key)[0]
    return _parse_verifier_key(key).name


def _sign_note(text: str, signer_key: str) -> str:
    name, key_hash, private_key = _parse_signer_key(signer_key)
    signature = private_key.sign(text.encode())
    blob = base64.b64encode(key_hash + signature).decode("ascii")
    return f"{text}\n{_SIG_PREFIX}{name} {blob}\n"


def sign_checkpoint(checkpoint: Checkpoint, signer_key: str) -> str:
    """Return ``checkpoint`` as a signed note, signed with ``signer_key``.

    The result is the checkpoint body, a blank line and one signature line.
    Raises :class:`CheckpointError` if the signer key is malformed.
    """
    if not isinstance(checkpoint, Checkpoint):
        raise CheckpointError(f"expected a Checkpoint, got {type(checkpoint).__name__}")
    return _sign_note(checkpoint.body().decode(), signer_key)


def _open_note(note: str | bytes) -> tuple[str, list[tuple[str, bytes]]]:
    """Split a signed note into its text and its ``(key name, signature blob)`` lines."""
    if isinstance(note, str):
        # A character is at least one byte, so this bounds the work before encoding.
        if len(note) > MAX_NOTE_SIZE:
            raise CheckpointError(f"signed note is larger than {MAX_NOTE_SIZE} bytes")
        try:
            raw = note.encode("utf-8")
        except UnicodeEncodeError:
            raise CheckpointError("signed note is not valid Unicode text") from None
    elif isinstance(note, bytes):
        raw = note
    else:
        raise CheckpointError(f"signed note must be str or bytes, got {type(note).__name__}")
    if len(raw) > MAX_NOTE_SIZE:
        raise CheckpointError(f"signed note is larger than {MAX_NOTE_SIZE} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"signed note is not valid UTF-8 (byte {exc.start})") from None
    control = _CONTROL.search(text)
    if control:
        raise CheckpointError(
            f"signed note contains control character U+{ord(control.group()):04X}"
        )
    if not text.endswith("\n"):
        raise CheckpointError("signed note must end with a newline")
    # The text ends at the last blank line; it may itself contain blank lines.
    split = text.rfind("\n\n")
    if split < 0:
        raise CheckpointError("signed note has no blank line before its signatures")
    body, signature_block = text[: split + 1], text[split + 2 :]
    if not signature_block:
        raise CheckpointError("signed note has no signature lines")
    lines = signature_block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise CheckpointError(f"signed note has more than {_MAX_SIGNATURES} signatures")
    signatures: list[tuple[str, bytes]] = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError(
                f"signature line {number} does not start with an em dash and a space"
            )
        fields = line[len(_SIG_PREFIX) :].split(" ")
        if len(fields) != 2:
            raise CheckpointError(f"signature line {number} must be '— <key name> <signature>'")
        name, b64_blob = fields
        if not _valid_key_name(name):
            raise CheckpointError(f"signature line {number} has an invalid key name")
        blob = _b64decode_strict(b64_blob)
        if blob is None:
            raise CheckpointError(f"signature line {number} is not canonical standard base64")
        if len(blob) < 5:
            raise CheckpointError(
                f"signature line {number} is too short to hold a key ID and signature"
            )
        signatures.append((name, blob))
    return body, signatures


def _parse_body(body: str) -> Checkpoint:
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(
            f"checkpoint must have origin, size and root hash lines; got {len(lines)} line(s)"
        )
    origin, size_line, root_line, *extensions = lines
    if not origin or origin.isspace():
        raise CheckpointError("checkpoint origin line is empty or blank")
    if not _DECIMAL.fullmatch(size_line):
        raise CheckpointError("checkpoint size line must be a decimal number without leading zeros")
    size = int(size_line)
    if size > _MAX_TREE_SIZE:
        raise CheckpointError("checkpoint size is larger than 2**64-1")
    root = _b64decode_strict(root_line)
    if root is None:
        raise CheckpointError("checkpoint root hash line is not canonical standard base64")
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"checkpoint root hash must be {HASH_SIZE} bytes, got {len(root)}")
    # Extension lines are covered by the signature but carry nothing we use.
    if any(not line for line in extensions):
        raise CheckpointError("checkpoint has an empty line in its body")
    return Checkpoint(origin, size, root)


def parse_checkpoint(note: str | bytes) -> tuple[Checkpoint, list[tuple[str, bytes]]]:
    """Parse a signed checkpoint without verifying any signature.

    Returns the checkpoint and its signature lines as ``(key name, raw
    signature)`` pairs, the raw signature being the 4-byte key ID followed by
    the signature itself. Extension lines are accepted and not returned.
    Raises :class:`CheckpointError` for anything malformed, and for notes
    larger than :data:`MAX_NOTE_SIZE`. Use :func:`verify_checkpoint` to trust
    the result.
    """
    body, signatures = _open_note(note)
    return _parse_body(body), signatures


def verify_checkpoint(
    note: str | bytes, verifier_key: str, *, origin: str | None = None
) -> Checkpoint:
    """Verify ``note`` was signed by ``verifier_key`` and return its checkpoint.

    Signatures by other keys are ignored, as the signed-note spec requires;
    a signature whose key name and key ID both match ``verifier_key`` must
    verify. If ``origin`` is given the checkpoint must name that log. Raises
    :class:`CheckpointError` if the key string or note is malformed, no
    signature by the key is present, or a signature by it does not verify.
    """
    verifier = _parse_verifier_key(verifier_key)
    body, signatures = _open_note(note)
    checkpoint = _parse_body(body)
    public_key = Ed25519PublicKey.from_public_bytes(verifier.public_key)
    message = body.encode()
    found = False
    for name, blob in signatures:
        if name != verifier.name or blob[:4] != verifier.key_hash:
            continue
        found = True
        if len(blob) != 4 + 64:
            raise CheckpointError(
                f"signature by {name} is {len(blob) - 4} bytes; Ed25519 signatures are 64"
            )
        try:
            public_key.verify(blob[4:], message)
        except InvalidSignature:
            raise CheckpointError(
                f"signature by {name} does not verify: the checkpoint was altered "
                "or signed by another key"
            ) from None
    if not found:
        raise CheckpointError(
            f"checkpoint has no signature by key {verifier.name}+{verifier.key_hash.hex()}"
        )
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint is for log {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint
