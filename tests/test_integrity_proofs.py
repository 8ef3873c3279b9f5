"""Merkle tree hashing and proofs, checked against known answers and the RFC's own definitions.

The reference functions below transcribe RFC 9162 §2.1 literally and recursively
(MTH, PATH, PROOF/SUBPROOF), and verify proofs by re-walking those definitions.
The library's iterative code must agree with them on every input.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseledger.errors import IntegrityError, ProofError
from caseledger.integrity import (
    EMPTY_ROOT,
    MerkleAccumulator,
    consistency_proof,
    consistency_proof_from_hashes,
    inclusion_proof,
    inclusion_proof_from_hashes,
    leaf_hash,
    merkle_root,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# --------------------------------------------------------------------------------------
# Naive reference implementation, straight from RFC 9162 §2.1


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two strictly smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return _sha(b"")
    if n == 1:
        return _sha(b"\x00" + d[0])
    k = _k(n)
    return _sha(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True) if 0 < m < len(d) else []


def _ref_root_from_path(m: int, n: int, hashed_leaf: bytes, proof: list[bytes]) -> bytes | None:
    """Undo PATH(m, D[n]): the root the proof implies, or None if its shape is wrong."""
    if n == 1:
        return None if proof else hashed_leaf
    if not proof:
        return None
    k = _k(n)
    *rest, last = proof
    if m < k:
        inner = _ref_root_from_path(m, k, hashed_leaf, rest)
        return None if inner is None else _sha(b"\x01" + inner + last)
    inner = _ref_root_from_path(m - k, n - k, hashed_leaf, rest)
    return None if inner is None else _sha(b"\x01" + last + inner)


def ref_accepts_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    if not 0 <= index < size or len(root) != 32 or any(len(p) != 32 for p in proof):
        return False
    return _ref_root_from_path(index, size, _sha(b"\x00" + leaf), list(proof)) == root


def _ref_roots_from_subproof(
    m: int, n: int, b: bool, proof: list[bytes], old_root: bytes
) -> tuple[bytes, bytes] | None:
    """Undo SUBPROOF(m, D[n], b): the (old, new) subtree roots implied, or None."""
    if m == n:
        if b:
            return None if proof else (old_root, old_root)
        return (proof[0], proof[0]) if len(proof) == 1 else None
    if not proof:
        return None
    k = _k(n)
    *rest, last = proof
    if m <= k:
        inner = _ref_roots_from_subproof(m, k, b, rest, old_root)
        return None if inner is None else (inner[0], _sha(b"\x01" + inner[1] + last))
    inner = _ref_roots_from_subproof(m - k, n - k, False, rest, old_root)
    if inner is None:
        return None
    return _sha(b"\x01" + last + inner[0]), _sha(b"\x01" + last + inner[1])


def ref_accepts_consistency(
    m: int, n: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    if not 0 <= m <= n or len(old_root) != 32 or len(new_root) != 32:
        return False
    if any(len(p) != 32 for p in proof):
        return False
    if m == n:
        return not proof and old_root == new_root and (m > 0 or old_root == EMPTY_ROOT)
    if m == 0:
        return not proof and old_root == EMPTY_ROOT
    return _ref_roots_from_subproof(m, n, True, list(proof), old_root) == (old_root, new_root)


def accepts(verify: Callable[..., None], *args: object) -> bool:
    try:
        verify(*args)
    except ProofError:
        return False
    return True


# --------------------------------------------------------------------------------------
# Known answers

# The leaves of Certificate Transparency's reference tests.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (0, 1, []),
]  # fmt: skip
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert EMPTY_ROOT.hex() == expected
    assert merkle_root([]).hex() == expected
    assert root_from_leaf_hashes([]).hex() == expected
    assert MerkleAccumulator().root().hex() == expected


def test_small_trees_by_hand() -> None:
    assert merkle_root([b""]) == _sha(b"\x00")
    a, b, c = _sha(b"\x00a"), _sha(b"\x00b"), _sha(b"\x00c")
    assert leaf_hash(b"a") == a
    assert node_hash(a, b) == _sha(b"\x01" + a + b)
    assert merkle_root([b"a", b"b"]) == _sha(b"\x01" + a + b)
    # Three leaves split 2 + 1: the odd leaf is not paired with a copy of itself.
    assert merkle_root([b"a", b"b", b"c"]) == _sha(b"\x01" + _sha(b"\x01" + a + b) + c)


@pytest.mark.parametrize("size", range(len(CT_ROOTS)))
def test_certificate_transparency_roots(size: int) -> None:
    leaves = CT_LEAVES[:size]
    assert merkle_root(leaves).hex() == CT_ROOTS[size]
    assert ref_mth(leaves).hex() == CT_ROOTS[size]
    assert root_from_leaf_hashes([leaf_hash(x) for x in leaves]).hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION)
def test_certificate_transparency_inclusion_proofs(
    index: int, size: int, expected: list[str]
) -> None:
    leaves = CT_LEAVES[:size]
    proof = inclusion_proof(leaves, index)
    assert [p.hex() for p in proof] == expected
    verify_inclusion(leaves[index], index, size, proof, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "expected"), CT_CONSISTENCY)
def test_certificate_transparency_consistency_proofs(
    old: int, new: int, expected: list[str]
) -> None:
    proof = consistency_proof(CT_LEAVES[:new], old)
    assert [p.hex() for p in proof] == expected
    old_root, new_root = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
    verify_consistency(old, new, old_root, new_root, proof)


# --------------------------------------------------------------------------------------
# Agreement with the reference, exhaustively for small trees


def _leaves(size: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed * 1_000_003 + size)
    return [rng.randbytes(rng.randrange(0, 24)) for _ in range(size)]


SMALL = 33


def test_all_small_proofs_match_reference_and_verify() -> None:
    for size in range(1, SMALL + 1):
        leaves = _leaves(size)
        hashes = [leaf_hash(x) for x in leaves]
        root = ref_mth(leaves)
        assert merkle_root(leaves) == root
        for index in range(size):
            proof = inclusion_proof(leaves, index)
            assert proof == ref_path(index, leaves)
            assert inclusion_proof_from_hashes(hashes, index) == proof
            verify_inclusion(leaves[index], index, size, proof, root)
        for old in range(size + 1):
            proof = consistency_proof(leaves, old)
            assert proof == ref_proof(old, leaves)
            assert consistency_proof_from_hashes(hashes, old) == proof
            verify_consistency(old, size, ref_mth(leaves[:old]), root, proof)


def test_inclusion_proofs_bind_exactly_what_the_reference_binds() -> None:
    # A proof for (index, size) is replayed with every other small (index, size).
    # RFC proofs do not always bind the size: the proof for leaf 0 of 3 also
    # verifies as leaf 0 of 4 against the same root, because the hash
    # computation is identical. The verifier must accept exactly those cases.
    leaves = _leaves(16)
    for size in range(1, 13):
        root = merkle_root(leaves[:size])
        for index in range(size):
            proof = inclusion_proof(leaves[:size], index)
            for other_size in range(1, 17):
                for other_index in range(other_size):
                    if (other_index, other_size) == (index, size):
                        continue
                    got = accepts(
                        verify_inclusion, leaves[index], other_index, other_size, proof, root
                    )
                    want = ref_accepts_inclusion(
                        leaves[index], other_index, other_size, proof, root
                    )
                    assert got == want, (index, size, other_index, other_size)
                    if other_size == size:
                        assert not got  # within one tree size, the path fixes the index


def test_consistency_proofs_bind_exactly_what_the_reference_binds() -> None:
    leaves = _leaves(14)
    roots = [merkle_root(leaves[:n]) for n in range(15)]
    for new in range(1, 11):
        for old in range(1, new):
            proof = consistency_proof(leaves[:new], old)
            for other_new in range(15):
                for other_old in range(other_new + 1):
                    if (other_old, other_new) == (old, new):
                        continue
                    got = accepts(
                        verify_consistency, other_old, other_new, roots[old], roots[new], proof
                    )
                    want = ref_accepts_consistency(
                        other_old, other_new, roots[old], roots[new], proof
                    )
                    assert got == want, (old, new, other_old, other_new)


# --------------------------------------------------------------------------------------
# Property tests for larger random trees

sizes = st.one_of(
    st.integers(min_value=1, max_value=200),
    st.sampled_from([1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129]),
)
seeds = st.integers(min_value=0, max_value=2**32)


def _bits(nbits: int, rng: random.Random | None) -> list[int]:
    """All bit positions, or the first, the last and a random handful of them."""
    if rng is None or nbits <= 8:
        return list(range(nbits))
    return sorted({0, nbits - 1, *rng.sample(range(nbits), 6)})


def _flip(value: bytes, bit: int) -> bytes:
    mutated = bytearray(value)
    mutated[bit // 8] ^= 1 << (bit % 8)
    return bytes(mutated)


def _inclusion_mutations(
    leaf: bytes,
    index: int,
    size: int,
    proof: list[bytes],
    root: bytes,
    rng: random.Random,
    every_bit: bool = False,
) -> list[tuple[str, tuple[bytes, int, int, list[bytes], bytes]]]:
    """Damaged variants of a valid inclusion claim, all of which must be rejected.

    Bit flips cover every bit with ``every_bit``, otherwise a sample per hash.
    """
    sample = None if every_bit else rng
    out: list[tuple[str, tuple[bytes, int, int, list[bytes], bytes]]] = []
    for i, p in enumerate(proof):
        for bit in _bits(256, sample):
            out.append(
                (
                    f"flip bit {bit} of proof[{i}]",
                    (leaf, index, size, [*proof[:i], _flip(p, bit), *proof[i + 1 :]], root),
                )
            )
        out.append(
            (
                f"proof[{i}] 31 bytes",
                (leaf, index, size, [*proof[:i], p[:31], *proof[i + 1 :]], root),
            )
        )
        out.append(
            (
                f"proof[{i}] 33 bytes",
                (leaf, index, size, [*proof[:i], p + b"\x00", *proof[i + 1 :]], root),
            )
        )
    for bit in _bits(256, sample):
        out.append((f"flip bit {bit} of root", (leaf, index, size, proof, _flip(root, bit))))
    for bit in _bits(len(leaf) * 8, sample):
        out.append((f"flip bit {bit} of leaf", (_flip(leaf, bit), index, size, proof, root)))
    extra = rng.randbytes(32)
    out += [
        ("leaf with a byte appended", (leaf + b"\x00", index, size, proof, root)),
        ("appended hash", (leaf, index, size, [*proof, extra], root)),
        ("prepended hash", (leaf, index, size, [extra, *proof], root)),
        ("index = size", (leaf, size, size, proof, root)),
        ("negative index", (leaf, -1, size, proof, root)),
        ("negative size", (leaf, index, -size, proof, root)),
        ("size 0", (leaf, 0, 0, proof, root)),
        ("root 31 bytes", (leaf, index, size, proof, root[:31])),
        ("root 33 bytes", (leaf, index, size, proof, root + b"\x00")),
        ("leaf hash given as the leaf", (leaf_hash(leaf), index, size, proof, root)),
    ]
    if proof:
        out += [
            ("dropped first hash", (leaf, index, size, proof[1:], root)),
            ("duplicated last hash", (leaf, index, size, [*proof, proof[-1]], root)),
            ("dropped last hash", (leaf, index, size, proof[:-1], root)),
            ("empty proof", (leaf, index, size, [], root)),
            ("reversed proof", (leaf, index, size, proof[::-1], root))
            if len(set(proof)) > 1
            else ("proof with a zero hash", (leaf, index, size, [bytes(32)] * len(proof), root)),
        ]
    else:
        out.append(("garbage instead of an empty proof", (leaf, index, size, [extra], root)))
    return out


@settings(max_examples=300, deadline=None)
@given(size=sizes, seed=seeds, data=st.data())
def test_inclusion_proofs_match_reference_and_reject_every_mutation(
    size: int, seed: int, data: st.DataObject
) -> None:
    leaves = _leaves(size, seed)
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    root = ref_mth(leaves)
    proof = inclusion_proof(leaves, index)
    assert proof == ref_path(index, leaves)
    verify_inclusion(leaves[index], index, size, proof, root)
    assert ref_accepts_inclusion(leaves[index], index, size, proof, root)

    rng = random.Random(seed)
    for what, args in _inclusion_mutations(leaves[index], index, size, proof, root, rng):
        with pytest.raises(ProofError):
            verify_inclusion(*args)
        assert not ref_accepts_inclusion(*args), what

    # Another index or size: rejected exactly when the RFC definition rejects it.
    for other_index, other_size in [
        (index ^ 1, size),
        ((index + 1) % size, size),
        (index, size + 1),
        (index, size - 1),
        (index, 2 * size),
        (index + 1, size + 1),
    ]:
        args = (leaves[index], other_index, other_size, proof, root)
        assert accepts(verify_inclusion, *args) == ref_accepts_inclusion(*args)


def _consistency_mutations(
    old: int,
    new: int,
    old_root: bytes,
    new_root: bytes,
    proof: list[bytes],
    rng: random.Random,
    every_bit: bool = False,
) -> list[tuple[str, tuple[int, int, bytes, bytes, list[bytes]]]]:
    """Damaged variants of a valid consistency claim, all of which must be rejected."""
    sample = None if every_bit else rng
    out: list[tuple[str, tuple[int, int, bytes, bytes, list[bytes]]]] = []
    for i, p in enumerate(proof):
        for bit in _bits(256, sample):
            out.append(
                (
                    f"flip bit {bit} of proof[{i}]",
                    (old, new, old_root, new_root, [*proof[:i], _flip(p, bit), *proof[i + 1 :]]),
                )
            )
        out.append(
            (
                f"proof[{i}] 31 bytes",
                (old, new, old_root, new_root, [*proof[:i], p[:31], *proof[i + 1 :]]),
            )
        )
        out.append(
            (
                f"proof[{i}] 33 bytes",
                (old, new, old_root, new_root, [*proof[:i], p + b"\x00", *proof[i + 1 :]]),
            )
        )
    for bit in _bits(256, sample):
        out.append(
            (f"flip bit {bit} of old root", (old, new, _flip(old_root, bit), new_root, proof))
        )
        # Every tree extends the empty tree, so only then may the new root vary.
        if old > 0:
            out.append(
                (f"flip bit {bit} of new root", (old, new, old_root, _flip(new_root, bit), proof))
            )
    extra = rng.randbytes(32)
    out += [
        ("appended hash", (old, new, old_root, new_root, [*proof, extra])),
        ("prepended hash", (old, new, old_root, new_root, [extra, *proof])),
        ("old root 31 bytes", (old, new, old_root[:31], new_root, proof)),
        ("old root 33 bytes", (old, new, old_root + b"\x00", new_root, proof)),
        ("new root 31 bytes", (old, new, old_root, new_root[:31], proof)),
        ("new root 33 bytes", (old, new, old_root, new_root + b"\x00", proof)),
        ("negative old size", (-old - 1, new, old_root, new_root, proof)),
    ]
    if old < new:
        out += [
            ("swapped roots", (old, new, new_root, old_root, proof)),
            ("swapped sizes and roots", (new, old, new_root, old_root, proof)),
            ("new size smaller than old", (new, old, old_root, new_root, proof)),
            ("new root given for both", (old, new, new_root, new_root, proof)),
            ("equal sizes with a proof", (new, new, new_root, new_root, proof or [extra])),
        ]
    if 0 < old < new:
        out += [
            ("dropped first hash", (old, new, old_root, new_root, proof[1:])),
            ("dropped last hash", (old, new, old_root, new_root, proof[:-1])),
            ("empty proof", (old, new, old_root, new_root, [])),
            ("proof from the empty tree", (0, new, EMPTY_ROOT, new_root, proof)),
            ("old root claimed for the empty tree", (0, new, old_root, new_root, [])),
        ]
    else:
        out.append(("garbage instead of an empty proof", (old, new, old_root, new_root, [extra])))
    if old == new:
        out.append(("equal sizes, different roots", (old, new, old_root, extra, [])))
    return out


@settings(max_examples=300, deadline=None)
@given(new=sizes, seed=seeds, data=st.data())
def test_consistency_proofs_match_reference_and_reject_every_mutation(
    new: int, seed: int, data: st.DataObject
) -> None:
    leaves = _leaves(new, seed)
    old = data.draw(st.integers(min_value=0, max_value=new), label="old")
    old_root, new_root = ref_mth(leaves[:old]), ref_mth(leaves)
    proof = consistency_proof(leaves, old)
    assert proof == ref_proof(old, leaves)
    verify_consistency(old, new, old_root, new_root, proof)
    assert ref_accepts_consistency(old, new, old_root, new_root, proof)

    rng = random.Random(seed)
    for what, args in _consistency_mutations(old, new, old_root, new_root, proof, rng):
        with pytest.raises(ProofError):
            verify_consistency(*args)
        assert not ref_accepts_consistency(*args), what

    for other_old, other_new in [
        (old + 1, new),
        (old - 1, new),
        (old, new + 1),
        (old, new - 1),
        (old, 2 * new),
    ]:
        if not 0 <= other_old <= other_new:
            continue
        args = (other_old, other_new, old_root, new_root, proof)
        assert accepts(verify_consistency, *args) == ref_accepts_consistency(*args)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8])
def test_every_single_bit_flip_is_rejected(size: int) -> None:
    leaves = CT_LEAVES[:size]
    root = merkle_root(leaves)
    rng = random.Random(size)
    for index in range(size):
        proof = inclusion_proof(leaves, index)
        for what, args in _inclusion_mutations(
            leaves[index], index, size, proof, root, rng, every_bit=True
        ):
            assert not accepts(verify_inclusion, *args), what
    for old in range(size + 1):
        old_root = merkle_root(leaves[:old])
        proof = consistency_proof(leaves, old)
        for what, args in _consistency_mutations(
            old, size, old_root, root, proof, rng, every_bit=True
        ):
            assert not accepts(verify_consistency, *args), what


@settings(max_examples=100, deadline=None)
@given(size=st.integers(min_value=0, max_value=300), seed=seeds)
def test_accumulator_and_hash_roots_agree_with_merkle_root(size: int, seed: int) -> None:
    leaves = _leaves(size, seed)
    hashes = [leaf_hash(x) for x in leaves]
    acc = MerkleAccumulator()
    assert acc.size == 0
    assert acc.root() == EMPTY_ROOT
    for n, h in enumerate(hashes, start=1):
        acc.append(h)
        assert acc.size == n
        # Every intermediate root, not only the last, because the stack shape
        # changes with each bit of the size.
        assert acc.root() == root_from_leaf_hashes(hashes[:n])
    assert acc.root() == merkle_root(leaves) == root_from_leaf_hashes(hashes)
    assert merkle_root(leaves) == ref_mth(leaves)
    other = MerkleAccumulator()
    other.extend(iter(hashes))
    assert other.size == size
    assert other.root() == acc.root()


def test_accumulator_memory_stays_logarithmic() -> None:
    acc = MerkleAccumulator()
    for i in range(5000):
        acc.append(leaf_hash(i.to_bytes(4, "big")))
        assert len(acc._stack) == acc.size.bit_count()


def test_larger_tree_roots_and_proofs() -> None:
    leaves = [i.to_bytes(4, "big") for i in range(3001)]
    hashes = [leaf_hash(x) for x in leaves]
    root = merkle_root(leaves)
    assert root_from_leaf_hashes(hashes) == root
    acc = MerkleAccumulator()
    acc.extend(hashes)
    assert acc.root() == root
    for index in (0, 1, 1023, 1024, 2047, 2048, 3000):
        verify_inclusion(
            leaves[index], index, 3001, inclusion_proof_from_hashes(hashes, index), root
        )
    for old in (1, 1024, 1025, 2048, 3000):
        old_root = root_from_leaf_hashes(hashes[:old])
        verify_consistency(old, 3001, old_root, root, consistency_proof_from_hashes(hashes, old))


# --------------------------------------------------------------------------------------
# Bad input to the producing functions and the verifiers


@pytest.mark.parametrize("index", [-1, 5, 6, 100])
def test_inclusion_proof_index_out_of_range(index: int) -> None:
    with pytest.raises(ProofError, match="index"):
        inclusion_proof(_leaves(5), index)


def test_inclusion_proof_of_empty_tree() -> None:
    with pytest.raises(ProofError, match="not in a tree of size 0"):
        inclusion_proof([], 0)


@pytest.mark.parametrize("old_size", [-1, 6])
def test_consistency_proof_old_size_out_of_range(old_size: int) -> None:
    with pytest.raises(ProofError, match="old_size"):
        consistency_proof(_leaves(5), old_size)


def test_non_int_index_and_sizes() -> None:
    leaves = _leaves(3)
    with pytest.raises(ProofError, match="must be an int"):
        inclusion_proof(leaves, True)
    with pytest.raises(ProofError, match="must be an int"):
        consistency_proof(leaves, 1.0)  # type: ignore[arg-type]
    root = merkle_root(leaves)
    with pytest.raises(ProofError, match="must be an int"):
        verify_inclusion(leaves[0], "0", 3, [], root)  # type: ignore[arg-type]


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_wrong_length_leaf_hashes_are_rejected(length: int) -> None:
    hashes = [leaf_hash(b"a"), bytes(length), leaf_hash(b"c")]
    with pytest.raises(ProofError, match=f"leaf hash 1 is {length} bytes"):
        root_from_leaf_hashes(hashes)
    with pytest.raises(ProofError, match="32 bytes"):
        inclusion_proof_from_hashes(hashes, 0)
    with pytest.raises(ProofError, match="32 bytes"):
        consistency_proof_from_hashes(hashes, 1)
    acc = MerkleAccumulator()
    acc.append(hashes[0])
    with pytest.raises(ProofError, match="leaf hash 1 must be 32 bytes"):
        acc.append(hashes[1])
    assert acc.size == 1  # a rejected hash leaves the accumulator unchanged


def test_values_that_are_not_bytes_are_rejected() -> None:
    leaves = _leaves(2)
    root = merkle_root(leaves)
    proof = inclusion_proof(leaves, 0)
    with pytest.raises(ProofError, match="proof hash 0 must be bytes, got a str"):
        verify_inclusion(leaves[0], 0, 2, [proof[0].hex()], root)  # type: ignore[list-item]
    with pytest.raises(ProofError, match="leaf must be bytes, got a str"):
        verify_inclusion("leaf", 0, 2, proof, root)  # type: ignore[arg-type]
    with pytest.raises(ProofError, match="root must be bytes, got a bytearray"):
        verify_inclusion(leaves[0], 0, 2, proof, bytearray(root))  # type: ignore[arg-type]
    with pytest.raises(ProofError, match="leaf hash 0 must be 32 bytes, got a str"):
        MerkleAccumulator().append("0" * 32)  # type: ignore[arg-type]


def test_proof_that_is_a_single_bytes_object() -> None:
    leaves = _leaves(2)
    root = merkle_root(leaves)
    (single,) = inclusion_proof(leaves, 0)
    with pytest.raises(ProofError, match="not a single string"):
        verify_inclusion(leaves[0], 0, 2, single, root)


def test_error_messages_say_what_is_wrong() -> None:
    leaves = _leaves(7)
    root = merkle_root(leaves)
    proof = inclusion_proof(leaves, 3)
    with pytest.raises(ProofError, match=r"must have exactly 3 hashes, got 4 \(it has extra"):
        verify_inclusion(leaves[3], 3, 7, [*proof, root], root)
    with pytest.raises(ProofError, match=r"got 2 \(hashes are missing"):
        verify_inclusion(leaves[3], 3, 7, proof[:2], root)
    with pytest.raises(ProofError, match="index 7 is not in a tree of size 7"):
        verify_inclusion(leaves[3], 7, 7, proof, root)
    with pytest.raises(ProofError, match="proof hash 1 must be 32 bytes"):
        verify_inclusion(leaves[3], 3, 7, [proof[0], proof[1][:31], proof[2]], root)
    old_root = merkle_root(leaves[:3])
    cproof = consistency_proof(leaves, 3)
    with pytest.raises(ProofError, match="new_size 3 is smaller than old_size 7"):
        verify_consistency(7, 3, root, old_root, cproof)
    with pytest.raises(ProofError, match="is empty, but a non-empty proof is needed"):
        verify_consistency(3, 7, old_root, root, [])
    with pytest.raises(ProofError, match="between equal sizes must have exactly 0"):
        verify_consistency(7, 7, root, root, cproof)
    with pytest.raises(ProofError, match="same size 7 have different roots"):
        verify_consistency(7, 7, root, old_root, [])
    with pytest.raises(ProofError, match="from the empty tree must have exactly 0"):
        verify_consistency(0, 7, EMPTY_ROOT, root, cproof)
    with pytest.raises(ProofError, match="old root"):
        verify_consistency(3, 7, root, old_root, cproof)
    with pytest.raises(ProofError, match="new root"):
        verify_consistency(3, 7, old_root, old_root, cproof)
    with pytest.raises(ProofError, match="empty tree must be SHA-256"):
        verify_consistency(0, 0, root, root, [])


def test_proof_errors_are_integrity_errors() -> None:
    assert issubclass(ProofError, IntegrityError)
