"""The ledger's Merkle log: leaf hashes kept with every write, checkpoints, proofs, verification.

Every stored event record is one leaf of an RFC 9162 Merkle tree (hashing in
:mod:`caseledger.integrity`), in log order. The leaf is the record *as it sits in
the store* (:func:`record_leaf`): log position, aggregate id, version, topic and the
stored state bytes (personal fields sealed, so erasing a household's data key never
changes a leaf). ``docs/integrity.md`` gives the layout byte for byte.

Trust model
-----------

The database keeps a *leaf cache*, written by a write hook (:class:`MerkleLog`) in
the same transaction as the events: each record's leaf hash (``caseledger_leaves``),
the roots of perfect subtrees of height 4 and more (``caseledger_merkle_nodes``) and
the tree head with its frontier (``caseledger_merkle_head``). The cache makes a
checkpoint O(1) and a proof O(log n) on any size of log. It is **not evidence**: the
operator of the database can rewrite it along with the records.

Evidence is a *signed checkpoint* (:meth:`MerkleLog.checkpoint`) handed to someone
else: an auditor, a partner organisation. :meth:`MerkleLog.verify` recomputes every
leaf from the stored records, compares each checkpoint's root with the root of the
first ``size`` records and checks consistency between successive checkpoints; the
leaf cache only tells it *where* records changed (modified, deleted, inserted,
reordered, cut off the end). Without a checkpoint, verification shows only that the
records match the cache, which catches a change made to the rows behind the ledger's
back but not one made by someone who also rewrote the cache.

A :class:`ProofBundle` (:meth:`MerkleLog.prove`) carries a case's records, a signed
checkpoint and an inclusion proof per record; :func:`verify_bundle` checks it with no
database. The cache is rebuilt from the records when its tables are missing (the
first opening of a ledger written before it existed) and on request
(:meth:`MerkleLog.rebuild`); a rebuild accepts the records as they are, so do it
only after :meth:`~MerkleLog.verify` has been read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import struct
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from caseledger._gc import gc_paused
from caseledger.errors import (
    CaseNotFound,
    CheckpointError,
    ConfigurationError,
    IntegrityError,
    InvalidInput,
    ProofError,
)
from caseledger.events import CaseOpened, topic_of
from caseledger.integrity import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_NOTE_SIZE,
    Checkpoint,
    consistency_proof_ranges,
    generate_key,
    inclusion_proof_ranges,
    key_name,
    leaf_hash,
    node_hash,
    parse_checkpoint,
    root_from_leaf_hashes,
    sign_checkpoint,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from caseledger.store import Dialect, EventStore, StoredEvent, Tx

__all__ = [
    "BUNDLE_FORMAT",
    "LEAF_FORMAT",
    "BundleRecord",
    "BundleReport",
    "CheckpointResult",
    "Finding",
    "FindingKind",
    "MerkleLog",
    "ProofBundle",
    "VerificationReport",
    "read_bundle",
    "read_checkpoint",
    "read_signer_key",
    "read_verifier_key",
    "record_leaf",
    "verify_bundle",
    "write_key_pair",
]

LEAF_FORMAT = 1
"""The first byte of every leaf: the version of the leaf layout (:func:`record_leaf`)."""

BUNDLE_FORMAT = "caseledger-proof-bundle/1"
"""The ``format`` value of a proof bundle's JSON (see :class:`ProofBundle`)."""

_LEAVES = "caseledger_leaves"
_NODES = "caseledger_merkle_nodes"
_HEAD = "caseledger_merkle_head"
_READ_HEAD = f"SELECT size, last_position, frontier FROM {_HEAD} WHERE id = 1"  # noqa: S608
#: Interior nodes of this height and more are stored; lower ones are rehashed from at
#: most 8 leaf hashes when a proof needs them. Storing every level would double the
#: rows written per event for nodes that cost microseconds to recompute.
_STORED_LEVEL = 4

_HEADER = struct.Struct(">BQ16sQ")
#: The RFC 9162 leaf prefix 0x00, then the leaf's header: hashed without a copy.
_HASHED_HEADER = struct.Struct(">BBQ16sQ")
_ID_CACHE = 1 << 16
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_MAX_U64 = (1 << 64) - 1
_MAX_KEY_FILE = 4096
_MAX_BUNDLE_FILE = 64 << 20
#: Positional findings listed one by one; more are counted in ``omitted``.
_FINDING_LIMIT = 1000
#: Records whose content is kept to look for reordering, and the work allowed for it.
_CONTENT_LIMIT = 512
_REORDER_WORK = 250_000
_PAGE = 5000
#: Largest block of leaf hashes hashed level by level in one go.
_BULK_LEVEL = 10
_IN_CHUNK = 500

_sha256 = hashlib.sha256
# A leaf hash that no encodable record produces (every real leaf is non-empty), used
# for a stored row that cannot be encoded as a leaf at all.
_UNENCODABLE = leaf_hash(b"")


# --------------------------------------------------------------------------------------
# Leaves


def record_leaf(
    position: int, aggregate_id: UUID | bytes, version: int, topic: str, state: bytes
) -> bytes:
    """Return the Merkle leaf of one stored record: its canonical byte encoding.

    ``1 (u8) ‖ position (u64) ‖ aggregate id (16 bytes) ‖ version (u64) ‖ topic length
    (u16) ‖ topic (UTF-8) ‖ state length (u32) ‖ state``, integers big-endian. The
    recorded time is not a separate field: it is inside the state bytes (key
    ``recorded_at``), which the leaf holds exactly as stored. Raises
    :class:`~caseledger.errors.ProofError` if a field cannot be encoded.

    >>> record_leaf(1, UUID(int=0), 1, "t", b"").hex()
    '01000000000000000100000000000000000000000000000000000000000000000100017400000000'
    """
    if isinstance(aggregate_id, UUID):
        aggregate_id = aggregate_id.bytes
    problem = _unencodable(position, aggregate_id, version, topic, state)
    if problem:
        raise ProofError(f"record cannot be encoded as a leaf: {problem}")
    return _leaf(position, aggregate_id, version, topic.encode(), state)


def _unencodable(position: object, aggregate_id: object, version: object, topic: object,
                 state: object) -> str:  # fmt: skip
    for name, value in (("position", position), ("version", version)):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} must be an int, got {type(value).__name__}"
        if not 1 <= value <= _MAX_U64:
            return f"{name} must be between 1 and 2**64-1, got {value}"
    if not isinstance(aggregate_id, bytes) or len(aggregate_id) != 16:
        return "aggregate id must be 16 bytes"
    if not isinstance(topic, str):
        return f"topic must be a str, got {type(topic).__name__}"
    try:
        encoded = topic.encode()
    except UnicodeEncodeError:
        return "topic is not encodable as UTF-8"
    if len(encoded) > 0xFFFF:
        return "topic is longer than 65535 bytes"
    if not isinstance(state, bytes):
        return f"state must be bytes, got {type(state).__name__}"
    if len(state) > 0xFFFFFFFF:
        return "state is longer than 2**32-1 bytes"
    return ""


def _leaf(position: int, aggregate_id: bytes, version: int, topic: bytes, state: bytes) -> bytes:
    return b"".join(
        (
            _HEADER.pack(LEAF_FORMAT, position, aggregate_id, version),
            _U16.pack(len(topic)),
            topic,
            _U32.pack(len(state)),
            state,
        )
    )


class _Hasher:
    """Leaf hashes of stored rows, fast: topics are encoded once, nothing is re-validated.

    Gives None for a row that cannot be a leaf (an aggregate id that is not a
    canonical UUID, a version that is not an int …): only a tampered row looks so.
    """

    __slots__ = ("_ids", "_topics")

    def __init__(self) -> None:
        self._topics: dict[object, bytes] = {}
        self._ids: dict[object, bytes] = {}

    def _topic(self, topic: object) -> bytes | None:
        # SQLite rows give the topic's UTF-8 bytes (so a tampered one cannot fail the
        # read); they must decode, as the ledger would have to decode them.
        if isinstance(topic, bytes):
            encoded = topic if _text(topic) is not None else None
        elif isinstance(topic, str):
            try:
                encoded = topic.encode()
            except UnicodeEncodeError:
                encoded = None
        else:
            encoded = None
        if encoded is None or len(encoded) > 0xFFFF:
            return None
        prefix = self._topics[topic] = _U16.pack(len(encoded)) + encoded
        return prefix

    def __call__(
        self, position: int, aggregate_id: object, version: object, topic: object, state: object
    ) -> bytes | None:
        return self.many([(position, aggregate_id, version, topic, state)])[0]

    def many(self, rows: Sequence[tuple[Any, ...]]) -> list[bytes | None]:
        """The leaf hash of each ``(position, aggregate id, version, topic, state)`` row."""
        topics = self._topics
        ids = self._ids
        if len(ids) > _ID_CACHE:
            ids.clear()
        header = _HASHED_HEADER.pack
        length = _U32.pack
        sha = _sha256
        join = b"".join
        out: list[bytes | None] = []
        append = out.append
        for position, aggregate_id, version, topic, state in rows:
            prefix = topics.get(topic) or self._topic(topic)
            id16 = ids.get(aggregate_id)
            if id16 is None:
                id16 = _id_bytes(aggregate_id)
                if id16 is not None:
                    ids[aggregate_id] = id16
            if (
                id16 is None
                or prefix is None
                or type(state) is not bytes
                or type(version) is not int
                or version < 1
            ):
                append(None)
                continue
            try:
                head = header(0, LEAF_FORMAT, position, id16, version)
            except struct.error:
                append(None)
                continue
            append(sha(join((head, prefix, length(len(state)), state))).digest())
        return out

    def typed_many(self, rows: Sequence[tuple[Any, ...]]) -> list[bytes | None]:
        """As :meth:`many`, for rows whose columns the query typed already.

        The aggregate id and topic must be bytes or None, the version a positive int or
        None and the state bytes or None (SQLite's reading of the records ensures it).
        One expression per row; a row that cannot be a leaf makes the whole page go
        through :meth:`many`, which says which row.
        """
        ids = self._ids
        if len(ids) > _ID_CACHE:
            ids.clear()
        id_get = ids.get
        topic_get = self._topics.get
        topic: Callable[[object], Any] = self._topic  # None fails the join, as wanted
        header = _HASHED_HEADER.pack
        length = _U32.pack
        sha = _sha256
        join = b"".join

        def id_of(value: object) -> bytes | None:
            raw = _id_bytes(value)
            if raw is not None:
                ids[value] = raw
            return raw

        try:
            # A None id, version, topic prefix or state fails the pack, join or len.
            return [
                sha(join((header(0, LEAF_FORMAT, p, id_get(a) or id_of(a), v),
                          topic_get(t) or topic(t), length(len(s)), s))).digest()
                for p, a, v, t, s in rows
            ]  # fmt: skip
        except (TypeError, struct.error):
            return self.many(rows)


def _id_bytes(value: object) -> bytes | None:
    """The 16 bytes of a stored aggregate id: a UUID, or SQLite's 32 lowercase hex digits."""
    if isinstance(value, UUID):
        return value.bytes
    if isinstance(value, bytes) and len(value) == 32:
        try:
            raw = binascii.unhexlify(value)
        except (binascii.Error, ValueError):
            return None
        # Anything but the canonical spelling is not what the ledger wrote, and the
        # ledger would not find the record under its id.
        return raw if raw.hex().encode() == value else None
    return None


def _text(value: object) -> str | None:
    """``value`` as text: a str, or UTF-8 bytes; None when it is neither."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def _leaf_problem(row: tuple[Any, ...], digest: bytes | None) -> str:
    """Why a stored row cannot be a leaf ("" when it can: it is just not the one recorded)."""
    if digest is not None:
        return ""
    _, aggregate_id, version, topic, state = row
    if _id_bytes(aggregate_id) is None:
        return "its aggregate id is not a canonical UUID"
    if type(version) is not int or version < 1:
        return "its version is not a positive whole number"
    if _text(topic) is None:
        return "its topic is not UTF-8 text"
    if type(state) is not bytes:
        return "its state is not bytes"
    return "it cannot be encoded as a leaf"


# --------------------------------------------------------------------------------------
# A Merkle tree grown leaf by leaf


class _Tree:
    """The frontier of a Merkle tree (one perfect-subtree root per set bit of ``size``).

    ``keep``: completed interior nodes of at least this height are listed in ``kept``
    as ``(level, index, hash)``. ``want``: nodes whose hashes to collect in ``got``.
    ``notify``: roots to take at checkpoint sizes (see :class:`_Targets`).
    """

    __slots__ = ("got", "keep", "kept", "notify", "size", "stack", "want")

    def __init__(
        self,
        size: int = 0,
        stack: Sequence[bytes] = (),
        *,
        keep: int = 0,
        want: set[tuple[int, int]] | None = None,
        notify: Sequence[_Targets] = (),
    ) -> None:
        self.size = size
        self.stack = list(stack)
        self.keep = keep
        self.kept: list[tuple[int, int, bytes]] = []
        self.want = want
        self.got: dict[tuple[int, int], bytes] = {}
        self.notify = list(notify)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash."""
        self._push(leaf_hash, 0)

    def extend(self, hashes: Sequence[bytes]) -> None:
        """Add leaf hashes in order, hashing aligned blocks level by level (faster)."""
        i, n = 0, len(hashes)
        while i < n:
            size = self.size
            room = n - i
            target = self.notify[0].next if self.notify else -1
            if target > size:
                room = min(room, target - size)
            aligned = (size & -size).bit_length() - 1 if size else _BULK_LEVEL
            level = min(aligned, room.bit_length() - 1, _BULK_LEVEL)
            if level < 2:
                self._push(hashes[i], 0)
                i += 1
                continue
            width = 1 << level
            self._push(self._block(hashes[i : i + width], level), level)
            i += width

    def _block(self, nodes: Sequence[bytes], height: int) -> bytes:
        """The root of an aligned perfect block of leaf hashes starting at ``size``."""
        base = self.size
        self._collect(0, base, nodes)
        sha = _sha256
        for level in range(1, height + 1):
            pairs = iter(nodes)
            nodes = [
                sha(b"\x01" + left + right).digest()
                for left, right in zip(pairs, pairs, strict=True)
            ]
            self._collect(level, base >> level, nodes)
        return nodes[0]

    def _collect(self, level: int, start: int, nodes: Sequence[bytes]) -> None:
        if self.keep and level >= self.keep:
            self.kept.extend((level, start + j, node) for j, node in enumerate(nodes))
        if self.want:
            stop = start + len(nodes)
            for key in self.want:
                if key[0] == level and start <= key[1] < stop:
                    self.got[key] = nodes[key[1] - start]

    def _push(self, node: bytes, height: int) -> None:
        """Add a perfect subtree of ``height``; ``size`` is a multiple of its width."""
        n = self.size
        stack = self.stack
        want = self.want
        if height == 0 and want and (0, n) in want:
            self.got[(0, n)] = node
        # Each one bit of the size above ``height`` is a perfect subtree of the height
        # just completed: merge them like a binary carry.
        carry = n >> height
        level = height
        while carry & 1:
            node = _sha256(b"\x01" + stack.pop() + node).digest()
            carry >>= 1
            level += 1
            index = n >> level
            if self.keep and level >= self.keep:
                self.kept.append((level, index, node))
            if want and (level, index) in want:
                self.got[(level, index)] = node
        stack.append(node)
        self.size = n + (1 << height)
        for targets in self.notify:
            if self.size == targets.next:
                targets.hit(self)

    def root(self) -> bytes:
        return _fold(self.stack)

    def copy(self, notify: Sequence[_Targets] = ()) -> _Tree:
        return _Tree(self.size, self.stack, notify=notify)


def _fold(stack: Sequence[bytes]) -> bytes:
    """The root of a tree from its frontier (perfect-subtree roots, largest first)."""
    if not stack:
        return EMPTY_ROOT
    node = stack[-1]
    for left in reversed(stack[:-1]):
        node = node_hash(left, node)
    return node


def _pieces(lo: int, hi: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` that make up the RFC 9162 subtree ``[lo, hi)``.

    Largest first; their roots folded from the right give the subtree's root.
    """
    pieces = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        pieces.append((level, lo >> level))
        lo += 1 << level
    return pieces


# --------------------------------------------------------------------------------------
# Verification results

FindingKind = Literal[
    "modified", "deleted", "inserted", "reordered", "truncated", "checkpoint", "inconsistent",
    "cache",
]  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One thing verification found wrong.

    ``kind`` is one of:

    ``modified``
        the record at the position differs from the one recorded;
    ``deleted``
        a record was recorded at the position and is gone;
    ``truncated``
        records were cut off the end of the log;
    ``inserted``
        a record at the position was never recorded through the ledger;
    ``reordered``
        a recorded record now sits at another position (``positions`` names both);
    ``checkpoint``
        the records do not have a signed checkpoint's root, or are fewer than its size
        (the positional findings say where, unless the leaf cache was rewritten too);
    ``inconsistent``
        two signed checkpoints cannot both be views of one append-only log;
    ``cache``
        the leaf cache itself is damaged (records that a signed checkpoint vouches for,
        or a cache row that contradicts the others).
    """

    kind: FindingKind
    positions: tuple[int, ...]
    message: str

    def line(self) -> str:
        """The finding as one line of a report."""
        where = _positions_text(self.positions)
        return f"{self.kind:<12} {where + ': ' if where else ''}{self.message}"


@dataclass(frozen=True)
class CheckpointResult:
    """How one signed checkpoint compares with the records.

    ``matches``: the first ``size`` records have the checkpoint's root.
    ``consistent``: with the previous (smaller) checkpoint given; None for the first one,
    or when it could not be decided (the records match neither).
    """

    origin: str
    size: int
    root: bytes
    matches: bool
    consistent: bool | None = None


@dataclass(frozen=True)
class VerificationReport:
    """What :meth:`MerkleLog.verify` found. ``ok`` is True when nothing is wrong."""

    records: int
    last_position: int
    root: bytes
    cached_size: int | None
    checkpoints: tuple[CheckpointResult, ...]
    findings: tuple[Finding, ...]
    omitted: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the records, the leaf cache and every checkpoint agree."""
        return not self.findings and not self.omitted

    def by_kind(self) -> dict[str, tuple[int, ...]]:
        """Positions per kind of finding, sorted (kinds without positions map to ``()``)."""
        found: dict[str, set[int]] = {}
        for finding in self.findings:
            found.setdefault(finding.kind, set()).update(finding.positions)
        return {kind: tuple(sorted(positions)) for kind, positions in sorted(found.items())}

    def summary(self) -> str:
        """One line: intact or not, how many records, the root, the checkpoints."""
        root = base64.b64encode(self.root).decode()
        span = f"{self.records:,} records"
        if self.records:
            span += f" (log positions up to {self.last_position:,})"
        if self.ok:
            if self.checkpoints:
                sizes = ", ".join(f"{c.size:,}" for c in self.checkpoints)
                trust = f"{len(self.checkpoints)} signed checkpoint(s) match (sizes {sizes})"
            else:
                trust = (
                    "no signed checkpoint given, so only the operator's own leaf hashes "
                    "were compared"
                )
            return f"intact: {span}, root {root}; {trust}"
        count = len(self.findings) + self.omitted
        kinds = ", ".join(
            f"{kind} {_positions_text(positions) or ''}".rstrip()
            for kind, positions in self.by_kind().items()
        )
        return f"NOT INTACT: {count} problem(s) in {span}: {kinds}"

    def lines(self) -> list[str]:
        """The whole report: the summary, then one line per finding and per checkpoint."""
        out = [self.summary()]
        out.extend("  " + finding.line() for finding in self.findings)
        if self.omitted:
            out.append(f"  … and {self.omitted:,} more positions with problems")
        for check in self.checkpoints:
            state = "matches" if check.matches else "does NOT match"
            consistent = {True: "; consistent with the previous checkpoint",
                          False: "; NOT consistent with the previous checkpoint",
                          None: ""}[check.consistent]  # fmt: skip
            out.append(f"  checkpoint {check.origin} size {check.size:,}: {state}{consistent}")
        return out


def _positions_text(positions: Sequence[int]) -> str:
    if not positions:
        return ""
    if len(positions) == 1:
        return f"position {positions[0]}"
    ordered = sorted(positions)
    if ordered[-1] - ordered[0] == len(ordered) - 1 and len(ordered) > 2:
        return f"positions {ordered[0]}–{ordered[-1]}"
    return "positions " + ", ".join(str(p) for p in positions)


# --------------------------------------------------------------------------------------
# Proof bundles


@dataclass(frozen=True)
class BundleRecord:
    """One stored record in a proof bundle, with its inclusion proof."""

    position: int
    leaf_index: int
    aggregate_id: UUID
    version: int
    topic: str
    state: bytes
    inclusion_proof: tuple[bytes, ...]

    def leaf(self) -> bytes:
        """The record's Merkle leaf (:func:`record_leaf`)."""
        return record_leaf(self.position, self.aggregate_id, self.version, self.topic, self.state)


@dataclass(frozen=True)
class ProofBundle:
    """A case's records, a signed checkpoint, and a proof that each record is in that log.

    Written as JSON (:meth:`to_json`, format :data:`BUNDLE_FORMAT`, byte fields in
    standard base64) and checked offline by :func:`verify_bundle`.
    """

    case_id: UUID
    checkpoint: str
    records: tuple[BundleRecord, ...]

    def to_json(self) -> str:
        """The bundle as a JSON document (see ``docs/integrity.md``)."""
        data = {
            "format": BUNDLE_FORMAT,
            "case_id": str(self.case_id),
            "checkpoint": self.checkpoint,
            "records": [
                {
                    "position": r.position,
                    "leaf_index": r.leaf_index,
                    "aggregate_id": str(r.aggregate_id),
                    "version": r.version,
                    "topic": r.topic,
                    "state": _b64(r.state),
                    "inclusion_proof": [_b64(h) for h in r.inclusion_proof],
                }
                for r in self.records
            ],
        }
        return json.dumps(data, indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> ProofBundle:
        """Parse a bundle written by :meth:`to_json`, without verifying it.

        Raises :class:`~caseledger.errors.ProofError` saying what is malformed.
        """
        if isinstance(text, bytes):
            if len(text) > _MAX_BUNDLE_FILE:
                raise ProofError(f"proof bundle is larger than {_MAX_BUNDLE_FILE >> 20} MiB")
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ProofError(f"proof bundle is not UTF-8 text (byte {e.start})") from None
        if not isinstance(text, str):
            raise ProofError(f"proof bundle must be JSON text, got {type(text).__name__}")
        if len(text) > _MAX_BUNDLE_FILE:
            raise ProofError(f"proof bundle is larger than {_MAX_BUNDLE_FILE >> 20} MiB")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise ProofError(f"proof bundle is not valid JSON: {_first_line(e)}") from None
        return _bundle_from_data(data)


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise ProofError(f"proof bundle: {where} must be base64 text")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProofError(f"proof bundle: {where} is not valid base64") from None
    if _b64(raw) != value:
        raise ProofError(f"proof bundle: {where} is not canonical base64")
    return raw


def _fields(data: object, names: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ProofError(f"proof bundle: {where} must be a JSON object")
    missing = [n for n in names if n not in data]
    if missing:
        raise ProofError(f"proof bundle: {where} lacks {', '.join(missing)}")
    extra = sorted(str(k) for k in data if k not in names)
    if extra:
        raise ProofError(f"proof bundle: {where} has unknown field(s) {', '.join(extra)}")
    return data


def _int(value: object, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofError(f"proof bundle: {where} must be a whole number")
    if not minimum <= value <= _MAX_U64:
        raise ProofError(f"proof bundle: {where} must be between {minimum} and 2**64-1")
    return value


def _uuid(value: object, where: str) -> UUID:
    if not isinstance(value, str):
        raise ProofError(f"proof bundle: {where} must be a UUID string")
    try:
        parsed = UUID(value)
    except ValueError:
        raise ProofError(f"proof bundle: {where} is not a UUID") from None
    if str(parsed) != value:
        raise ProofError(f"proof bundle: {where} must be a lowercase hyphenated UUID")
    return parsed


_BUNDLE_FIELDS = ("format", "case_id", "checkpoint", "records")
_RECORD_FIELDS = (
    "position", "leaf_index", "aggregate_id", "version", "topic", "state", "inclusion_proof",
)  # fmt: skip


def _bundle_from_data(data: object) -> ProofBundle:
    if isinstance(data, dict) and "format" in data and data["format"] != BUNDLE_FORMAT:
        found = data["format"]
        shown = found if isinstance(found, str) and len(found) < 80 else "another format"
        raise ProofError(
            f"proof bundle format {shown!r} is not {BUNDLE_FORMAT!r}: "
            "it was written by another program or version"
        )
    top = _fields(data, _BUNDLE_FIELDS, "the document")
    case_id = _uuid(top["case_id"], "case_id")
    note = top["checkpoint"]
    if not isinstance(note, str):
        raise ProofError("proof bundle: checkpoint must be the signed note's text")
    rows = top["records"]
    if not isinstance(rows, list):
        raise ProofError("proof bundle: records must be a list")
    records = []
    for i, row in enumerate(rows):
        where = f"records[{i}]"
        item = _fields(row, _RECORD_FIELDS, where)
        proof = item["inclusion_proof"]
        if not isinstance(proof, list):
            raise ProofError(f"proof bundle: {where}.inclusion_proof must be a list")
        if len(proof) > 64:
            raise ProofError(f"proof bundle: {where}.inclusion_proof has more than 64 hashes")
        hashes = tuple(_unb64(h, f"{where}.inclusion_proof[{j}]") for j, h in enumerate(proof))
        topic = item["topic"]
        if not isinstance(topic, str):
            raise ProofError(f"proof bundle: {where}.topic must be text")
        records.append(
            BundleRecord(
                position=_int(item["position"], f"{where}.position", 1),
                leaf_index=_int(item["leaf_index"], f"{where}.leaf_index", 0),
                aggregate_id=_uuid(item["aggregate_id"], f"{where}.aggregate_id"),
                version=_int(item["version"], f"{where}.version", 1),
                topic=topic,
                state=_unb64(item["state"], f"{where}.state"),
                inclusion_proof=hashes,
            )
        )
    return ProofBundle(case_id, note, tuple(records))


@dataclass(frozen=True)
class BundleReport:
    """A proof bundle that verified: whose records, in which log, at which size."""

    case_id: UUID
    checkpoint: Checkpoint
    positions: tuple[int, ...]
    topics: tuple[str, ...]

    def summary(self) -> str:
        """One line saying what the bundle proves."""
        root = base64.b64encode(self.checkpoint.root).decode()
        return (
            f"valid: {len(self.positions)} record(s) of case {self.case_id} (versions "
            f"1–{len(self.positions)}) are in log {self.checkpoint.origin} of "
            f"{self.checkpoint.size:,} records, root {root}"
        )


def verify_bundle(bundle: ProofBundle | str | bytes, public_key: str) -> BundleReport:
    """Check a proof bundle offline: the checkpoint's signature and every record's proof.

    Each record's leaf is recomputed from the record bytes in the bundle, so a changed
    byte anywhere fails. The records must be the case's versions 1, 2, … in log order.
    A bundle shows that these records are in the signed log; it cannot show that the
    case has no later records. Raises :class:`~caseledger.errors.CheckpointError` or
    :class:`~caseledger.errors.ProofError` saying what failed.
    """
    if not isinstance(bundle, ProofBundle):
        bundle = ProofBundle.from_json(bundle)
    checkpoint = verify_checkpoint(bundle.checkpoint, public_key)
    if not bundle.records:
        raise ProofError("proof bundle holds no records")
    previous: BundleRecord | None = None
    for number, record in enumerate(bundle.records, start=1):
        what = f"record {number} (log position {record.position})"
        if record.aggregate_id != bundle.case_id:
            raise ProofError(f"{what} belongs to {record.aggregate_id}, not case {bundle.case_id}")
        if record.version != number:
            raise ProofError(
                f"{what} is version {record.version}, expected {number}: "
                "a record of the case is missing from the bundle or out of order"
            )
        if previous is not None and (
            record.position <= previous.position or record.leaf_index <= previous.leaf_index
        ):
            raise ProofError(f"{what} is not after the previous record in the log")
        if record.leaf_index >= checkpoint.size:
            raise ProofError(
                f"{what} has leaf index {record.leaf_index}, outside the checkpoint's "
                f"{checkpoint.size} records"
            )
        try:
            verify_inclusion(
                record.leaf(), record.leaf_index, checkpoint.size, record.inclusion_proof,
                checkpoint.root,
            )  # fmt: skip
        except ProofError as e:
            raise ProofError(f"{what}: {e}") from None
        previous = record
    return BundleReport(
        bundle.case_id,
        checkpoint,
        tuple(r.position for r in bundle.records),
        tuple(r.topic for r in bundle.records),
    )


# --------------------------------------------------------------------------------------
# Key, checkpoint and bundle files


def _read_text(path: str | Path, what: str, limit: int) -> str:
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise ConfigurationError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{what} {path} is a directory, not a file") from None
    except OSError as e:
        raise ConfigurationError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if len(raw) > limit:
        raise ConfigurationError(f"{what} {path} is larger than {limit:,} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{what} {path} is not UTF-8 text") from None


def _read_key(path: str | Path, what: str) -> str:
    text = _read_text(path, what, _MAX_KEY_FILE)
    key = text.strip()
    if not key or any(ch.isspace() for ch in key):
        raise CheckpointError(f"{what} {path} must hold exactly one key on one line")
    return key


def read_signer_key(path: str | Path) -> str:
    """The signer key in the file ``path`` (``caseledger keygen`` writes ``PREFIX.key``).

    Raises :class:`~caseledger.errors.ConfigurationError` if the file cannot be read and
    :class:`~caseledger.errors.CheckpointError` if it holds no valid signer key.
    """
    key = _read_key(path, "signer key file")
    if not key.startswith("PRIVATE+KEY+"):
        raise CheckpointError(
            f"signer key file {path} does not hold a signer key (PRIVATE+KEY+...): "
            "give the .key file, not the .pub file"
        )
    key_name(key)
    return key


def read_verifier_key(path: str | Path) -> str:
    """The verifier key in the file ``path`` (``caseledger keygen`` writes ``PREFIX.pub``).

    Raises :class:`~caseledger.errors.ConfigurationError` if the file cannot be read and
    :class:`~caseledger.errors.CheckpointError` if it holds no valid verifier key.
    """
    key = _read_key(path, "public key file")
    if key.startswith("PRIVATE+KEY+"):
        raise CheckpointError(
            f"public key file {path} holds a signer key (a secret): give the .pub file"
        )
    key_name(key)
    return key


def read_checkpoint(path: str | Path) -> str:
    """The signed checkpoint in the file ``path``, checked for form (not yet for signature).

    Raises :class:`~caseledger.errors.ConfigurationError` if the file cannot be read and
    :class:`~caseledger.errors.CheckpointError` if it is not a checkpoint.
    """
    text = _read_text(path, "checkpoint file", MAX_NOTE_SIZE)
    try:
        parse_checkpoint(text)
    except CheckpointError as e:
        raise CheckpointError(f"checkpoint file {path}: {e}") from None
    return text


def read_bundle(path: str | Path) -> ProofBundle:
    """The proof bundle in the file ``path``, checked for form (not yet verified).

    Raises :class:`~caseledger.errors.ConfigurationError` if the file cannot be read and
    :class:`~caseledger.errors.ProofError` if it is not a proof bundle.
    """
    text = _read_text(path, "proof bundle", _MAX_BUNDLE_FILE)
    try:
        return ProofBundle.from_json(text)
    except ProofError as e:
        raise ProofError(f"{path}: {e}") from None


def write_key_pair(prefix: str | Path, name: str) -> tuple[Path, Path]:
    """Make an Ed25519 key pair called ``name``; write ``PREFIX.key`` and ``PREFIX.pub``.

    ``PREFIX.key`` holds the signer key (a secret, created with mode 0600) and
    ``PREFIX.pub`` the verifier key to hand to auditors. Neither file may exist yet.
    Raises :class:`~caseledger.errors.CheckpointError` for a bad ``name`` and
    :class:`~caseledger.errors.ConfigurationError` if a file exists or cannot be written.
    """
    signer, verifier = generate_key(name)
    prefix = Path(prefix)
    secret, public = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    for path in (secret, public):
        if path.exists():
            raise ConfigurationError(f"{path} exists already: choose another prefix")
    if not secret.parent.is_dir():
        raise ConfigurationError(f"the folder {secret.parent} does not exist: create it first")
    _write_new(secret, signer, 0o600)
    try:
        _write_new(public, verifier, 0o644)
    except BaseException:
        secret.unlink(missing_ok=True)
        raise
    return secret, public


def _write_new(path: Path, text: str, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise ConfigurationError(f"{path} exists already: choose another prefix") from None
    except OSError as e:
        raise ConfigurationError(f"cannot write {path}: {e.strerror or e}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")


# --------------------------------------------------------------------------------------
# The Merkle log of a store


@dataclass
class _Head:
    size: int
    last_position: int
    stack: list[bytes]


@dataclass
class _Content:
    """A stored record kept to look for it elsewhere in the log (reordering)."""

    ordinal: int
    row: tuple[Any, ...]


@dataclass
class _Scan:
    """What one pass over the records and the leaf cache collected."""

    modified: dict[int, tuple[int, bytes, str]] = field(default_factory=dict)
    deleted: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    inserted: dict[int, tuple[int, str]] = field(default_factory=dict)
    contents: dict[int, _Content] = field(default_factory=dict)
    cache: list[Finding] = field(default_factory=list)
    omitted: int = 0

    def room(self) -> bool:
        if len(self.modified) + len(self.deleted) + len(self.inserted) < _FINDING_LIMIT:
            return True
        self.omitted += 1
        return False

    def keep(self, row: tuple[Any, ...], ordinal: int) -> None:
        if len(self.contents) < _CONTENT_LIMIT:
            self.contents[row[0]] = _Content(ordinal, row)

    def gap(self, expect: int, index: int) -> None:
        if index > expect:
            span = f"{expect}" if index - 1 == expect else f"{expect}–{index - 1}"
            message = f"the leaf cache has no rows for tree indices {span}"
        else:
            message = f"the leaf cache lists tree index {index} twice"
        self.cache.append(Finding("cache", (), message))


class _Targets:
    """Roots of a growing tree at the checkpoint sizes."""

    __slots__ = ("_sizes", "next", "roots")

    def __init__(self, sizes: Sequence[int]) -> None:
        self._sizes = iter(sorted({s for s in sizes if s > 0}))
        self.roots: dict[int, bytes] = {0: EMPTY_ROOT}
        self.next = next(self._sizes, -1)

    def hit(self, tree: _Tree) -> None:
        self.roots[tree.size] = tree.root()
        self.next = next(self._sizes, -1)


class _CacheRows:
    """The leaf cache's rows ``(leaf index, position, leaf hash)`` in order, read in pages."""

    __slots__ = ("_buffer", "_done", "_i", "_last", "_limit", "_size", "_tx")

    def __init__(self, tx: Tx, size: int, limit: int) -> None:
        self._tx = tx
        self._size = size
        self._limit = limit
        self._buffer: list[tuple[Any, ...]] = []
        self._i = 0
        self._last = -1
        self._done = size == 0

    def _fill(self, count: int) -> None:
        if self._i:
            del self._buffer[: self._i]
            self._i = 0
        tx = self._tx
        while len(self._buffer) < count and not self._done:
            high = min(self._last + max(self._limit, count), self._size - 1)
            tx.execute(
                f"SELECT leaf_index, position, leaf_hash FROM {_LEAVES} "  # noqa: S608
                "WHERE leaf_index > ? AND leaf_index <= ? ORDER BY leaf_index",
                (self._last, high),
            )
            rows = tx.fetchall()
            if rows:
                self._buffer.extend(rows)
            self._last = high
            self._done = high >= self._size - 1

    def peek(self) -> tuple[Any, ...] | None:
        """The next row, or None at the end."""
        if self._i >= len(self._buffer):
            self._fill(1)
            if not self._buffer:
                return None
        return self._buffer[self._i]

    def consume(self, count: int) -> None:
        """Move past ``count`` rows."""
        self._i += count

    def restart(self, index: int) -> None:
        """Read on from leaf index ``index``."""
        self._buffer = []
        self._i = 0
        self._last = index - 1
        self._done = index >= self._size


class MerkleLog:
    """The Merkle tree over a store's log: a write hook, checkpoints, proofs and verification.

    Usually reached through :class:`~caseledger.Ledger` (``ledger.verify()``,
    ``ledger.checkpoint(key)``, ``ledger.prove(case_id, key)``). Creating one installs
    the hook on ``store`` and builds the leaf cache if the store has none.
    """

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._hasher = _Hasher()
        recorder = store.recorder
        if store.dialect == "sqlite":
            self._events = recorder.events_table_name
            self._position = "rowid"
            self._lock: str | None = None
        else:
            schema = recorder.datastore.schema
            self._events = f'"{schema}"."{recorder.events_table_name}"'
            self._position = "notification_id"
            self._lock = f"LOCK TABLE {self._events} IN EXCLUSIVE MODE"
        # Table names are ours, never input.
        if store.dialect == "sqlite":
            # SQLite columns hold any type: read each one only when it has the type the
            # ledger writes (else NULL), and text as bytes, so no tampered value can
            # fail the read itself; the row is then reported as malformed.
            columns = (
                "e.rowid, "
                "CASE WHEN typeof(e.originator_id) = 'text' "
                "THEN CAST(e.originator_id AS BLOB) END, "
                "CASE WHEN typeof(e.originator_version) = 'integer' "
                "THEN e.originator_version END, "
                "CASE WHEN typeof(e.topic) = 'text' THEN CAST(e.topic AS BLOB) END, "
                "CASE WHEN typeof(e.state) = 'blob' THEN e.state END"
            )
        else:
            columns = "e.notification_id, e.originator_id, e.originator_version, e.topic, e.state"
        # Pages are windows of positions, not LIMITs: with a LIMIT and stale statistics
        # PostgreSQL may sort everything after the page start, for every page.
        position = f"e.{self._position}"
        page = f"WHERE {position} > ? AND {position} <= ? ORDER BY {position}"
        self._select_records = f"SELECT {columns} FROM {self._events} e {page}"  # noqa: S608
        # The records with their cached leaves: one read instead of two while they agree.
        self._select_joined = (
            f"SELECT {columns}, l.leaf_index, l.leaf_hash FROM {self._events} e "  # noqa: S608
            f"LEFT JOIN {_LEAVES} l ON l.position = {position} "
            f"AND l.position > ? AND l.position <= ? {page}"
        )
        self._next_position = f"SELECT MIN({position}) FROM {self._events} e WHERE {position} > ?"  # noqa: S608
        self._select_aggregate = (
            f"SELECT {columns} FROM {self._events} e "  # noqa: S608
            "WHERE e.originator_id = ? ORDER BY e.originator_version"
        )
        # Verification on SQLite streams the records (typed for _Hasher.typed_many: a
        # version below 1 reads as NULL, as no leaf can have it) beside the leaf cache.
        typed = columns.replace(
            "typeof(e.originator_version) = 'integer'",
            "typeof(e.originator_version) = 'integer' AND e.originator_version > 0",
        )
        self._stream_records = f"SELECT {typed} FROM {self._events} e {page}"  # noqa: S608
        self._stream_leaves = (
            f"SELECT leaf_index, position, leaf_hash FROM {_LEAVES} "  # noqa: S608
            "ORDER BY leaf_index"
        )
        store.add_hook(self)
        if not store.query(f"SELECT size FROM {_HEAD} WHERE id = 1"):  # noqa: S608
            with store.transaction() as tx:
                if self._lock:
                    tx.execute(self._lock)
                if self._read_head(tx) is None:
                    self._build(tx)

    # -- the write hook --------------------------------------------------------------------

    def create_statements(self, dialect: Dialect) -> list[str]:
        """The leaf cache's tables."""
        blob, big = ("BLOB", "INTEGER") if dialect == "sqlite" else ("BYTEA", "BIGINT")
        rowid = " WITHOUT ROWID" if dialect == "sqlite" else ""
        return [
            f"CREATE TABLE IF NOT EXISTS {_LEAVES} (leaf_index {big} PRIMARY KEY, "
            f"position {big} NOT NULL UNIQUE, leaf_hash {blob} NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {_NODES} (level SMALLINT NOT NULL, idx {big} NOT NULL, "
            f"hash {blob} NOT NULL, PRIMARY KEY (level, idx)){rowid}",
            f"CREATE TABLE IF NOT EXISTS {_HEAD} (id SMALLINT PRIMARY KEY CHECK (id = 1), "
            f"size {big} NOT NULL, last_position {big} NOT NULL, frontier {blob} NOT NULL)",
        ]

    def prefetch(self, tx: Tx, records: Sequence[StoredEvent], context: dict[str, Any]) -> None:
        """Send the read of the tree's head ahead, with the insert."""
        tx.prefetch(_READ_HEAD)

    def after_insert(
        self,
        tx: Tx,
        records: Sequence[StoredEvent],
        positions: Sequence[int],
        context: dict[str, Any],
    ) -> None:
        """Append the new records' leaves to the cache, in the write transaction."""
        head = self._read_head(tx)
        if head is None:
            self._build(tx)  # the records just inserted are in the table already
            return
        pairs = sorted(zip(positions, records, strict=True), key=lambda pair: pair[0])
        last = head.last_position
        for position, _ in pairs:
            if position <= last:
                msg = (
                    f"log position {position} is being written again, after position "
                    f"{head.last_position} was recorded: records were cut off the end of the "
                    "log. Nothing was written; run `caseledger verify` to see which"
                )
                raise IntegrityError(msg)
            last = position
        tree = _Tree(head.size, head.stack, keep=_STORED_LEVEL)
        digests = self._hasher.many(
            [(position, r.originator_id, r.originator_version, r.topic, r.state)
             for position, r in pairs]
        )  # fmt: skip
        start = tree.size
        rows: list[tuple[int, int, bytes]] = []
        for i, ((position, _), digest) in enumerate(zip(pairs, digests, strict=True)):
            if digest is None:
                msg = f"the record for log position {position} cannot be encoded as a leaf"
                raise IntegrityError(msg)
            rows.append((start + i, position, digest))
        tree.extend([row[2] for row in rows])
        self._write(tx, rows, tree, last)

    def _write(self, tx: Tx, rows: list[tuple[int, int, bytes]], tree: _Tree, last: int) -> None:
        tx.executemany(
            f"INSERT INTO {_LEAVES} (leaf_index, position, leaf_hash) VALUES (?,?,?)",  # noqa: S608
            rows,
        )
        if tree.kept:
            tx.executemany(
                f"INSERT INTO {_NODES} (level, idx, hash) VALUES (?,?,?)",  # noqa: S608
                tree.kept,
            )
            tree.kept = []
        tx.execute(
            f"UPDATE {_HEAD} SET size = ?, last_position = ?, frontier = ? WHERE id = 1",  # noqa: S608
            (tree.size, last, b"".join(tree.stack)),
        )

    def _read_head(self, tx: Tx) -> _Head | None:
        tx.execute(_READ_HEAD)
        row = tx.fetchone()
        if row is None:
            return None
        return _parse_head(row)

    def _build(self, tx: Tx) -> int:
        """Replace the leaf cache with leaves recomputed from every stored record."""
        for table in (_LEAVES, _NODES, _HEAD):
            tx.execute(f"DELETE FROM {table}")  # noqa: S608
        tx.execute(
            f"INSERT INTO {_HEAD} (id, size, last_position, frontier) VALUES (1, 0, 0, ?)",  # noqa: S608
            (b"",),
        )
        tree = _Tree(keep=_STORED_LEVEL)
        hasher = self._hasher
        after = 0
        while True:
            page = self._page(tx, after, _MAX_U64 >> 1, _PAGE)
            if not page:
                break
            digests = [digest or _UNENCODABLE for digest in hasher.many(page)]
            start = tree.size
            rows = [
                (start + i, row[0], digest)
                for i, (row, digest) in enumerate(zip(page, digests, strict=True))
            ]
            tree.extend(digests)
            after = page[-1][0]
            self._write(tx, rows, tree, after)
        return tree.size

    def _page(
        self, tx: Tx, after: int, upto: int, limit: int, *, joined: bool = False
    ) -> list[tuple[Any, ...]]:
        """The records after position ``after`` up to ``upto``: at most ``limit`` positions."""
        while after < upto:
            high = min(after + limit, upto)
            if joined:
                tx.execute(self._select_joined, (after, high, after, high))
            else:
                tx.execute(self._select_records, (after, high))
            rows = tx.fetchall()
            if rows:
                return rows
            # A gap in the positions (rolled-back writes, or deleted rows): skip it.
            tx.execute(self._next_position, (high,))
            found = tx.fetchone()
            if found is None or found[0] is None:
                return []
            after = int(found[0]) - 1
        return []

    def rebuild(self) -> int:
        """Recompute the whole leaf cache from the records as they are now; return its size.

        For after an incident has been investigated (:meth:`verify`), or when writes are
        refused because records were cut off the end of the log: the rebuilt cache
        accepts the records as they are, while signed checkpoints keep showing what
        they were.
        """
        with self._store.transaction() as tx:
            if self._lock:
                tx.execute(self._lock)
            return self._build(tx)

    # -- tree heads and checkpoints ---------------------------------------------------------

    def tree_head(self) -> tuple[int, bytes]:
        """``(size, root)`` of the tree over the leaf cache (no verification)."""
        with self._store.transaction(commit=False) as tx:
            head = self._read_head(tx)
        if head is None:
            msg = "the leaf cache is missing: reopen the ledger to rebuild it"
            raise IntegrityError(msg)
        return head.size, _fold(head.stack)

    def checkpoint(self, signer_key: str, *, origin: str | None = None) -> str:
        """A signed checkpoint (C2SP signed note) of the log as it is now.

        ``origin`` names the log; by default the key's name. The root comes from the
        leaf cache, so signing costs the same on any size of log; run :meth:`verify`
        first if the database may have been touched since the last checkpoint.
        """
        name = key_name(signer_key)
        if not signer_key.startswith("PRIVATE+KEY+"):
            raise CheckpointError("a checkpoint is signed with a signer key (PRIVATE+KEY+...)")
        size, root = self.tree_head()
        return sign_checkpoint(Checkpoint(origin or name, size, root), signer_key)

    # -- proofs ------------------------------------------------------------------------------

    def prove(self, case_id: UUID, signer_key: str, *, origin: str | None = None) -> ProofBundle:
        """A proof bundle for the case: its records, inclusion proofs, a new signed checkpoint.

        Raises :class:`~caseledger.errors.CaseNotFound` for an unknown case and
        :class:`~caseledger.errors.IntegrityError` if a record of the case no longer
        matches its leaf hash (run :meth:`verify`).
        """
        if not isinstance(case_id, UUID):
            raise InvalidInput(f"case_id must be a UUID, got {type(case_id).__name__}")
        name = key_name(signer_key)
        if not signer_key.startswith("PRIVATE+KEY+"):
            raise CheckpointError("a proof bundle is signed with a signer key (PRIVATE+KEY+...)")
        key = case_id.hex if self._store.dialect == "sqlite" else case_id
        with self._store.transaction(commit=False) as tx:
            # The records first: the head read after them covers every one.
            tx.execute(self._select_aggregate, (key,))
            records = tx.fetchall()
            if not records or _text(records[0][3]) != topic_of(CaseOpened):
                raise CaseNotFound(f"case {case_id} does not exist in this ledger")
            head = self._read_head(tx)
            if head is None:
                msg = "the leaf cache is missing: reopen the ledger to rebuild it"
                raise IntegrityError(msg)
            cached = self._leaves_at(tx, [r[0] for r in records])
            bundle_records = []
            indices = []
            for position, aggregate_id, version, raw_topic, state in records:
                found = cached.get(position)
                digest = self._hasher(position, aggregate_id, version, raw_topic, state)
                topic = _text(raw_topic)
                if found is None or found[0] >= head.size or digest != found[1] or topic is None:
                    msg = (
                        f"the record at log position {position} (version {version} of case "
                        f"{case_id}) does not match its leaf hash: run `caseledger verify`"
                    )
                    raise IntegrityError(msg)
                indices.append(found[0])
                bundle_records.append((position, found[0], version, topic, state))
            proofs = self._inclusion_proofs(tx, indices, head.size)
        root = _fold(head.stack)
        note = sign_checkpoint(Checkpoint(origin or name, head.size, root), signer_key)
        out = []
        for (position, index, version, topic, state), proof in zip(
            bundle_records, proofs, strict=True
        ):
            item = BundleRecord(position, index, case_id, version, topic, state, tuple(proof))
            try:
                verify_inclusion(item.leaf(), index, head.size, proof, root)
            except ProofError:
                msg = (
                    "the leaf cache's stored subtree hashes do not match its tree head: "
                    "run `caseledger verify`, then `caseledger verify --rebuild-leaves`"
                )
                raise IntegrityError(msg) from None
            out.append(item)
        return ProofBundle(case_id, note, tuple(out))

    def _leaves_at(self, tx: Tx, positions: Sequence[int]) -> dict[int, tuple[int, bytes]]:
        found: dict[int, tuple[int, bytes]] = {}
        for start in range(0, len(positions), _IN_CHUNK):
            chunk = positions[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            tx.execute(
                f"SELECT position, leaf_index, leaf_hash FROM {_LEAVES} "  # noqa: S608
                f"WHERE position IN ({marks})",
                chunk,
            )
            for position, index, digest in tx.fetchall():
                found[position] = (index, bytes(digest))
        return found

    def _inclusion_proofs(self, tx: Tx, indices: Sequence[int], size: int) -> list[list[bytes]]:
        ranges = [inclusion_proof_ranges(index, size) for index in indices]
        pieces = {piece for proof in ranges for lo, hi in proof for piece in _pieces(lo, hi)}
        hashes = self._perfect_roots(tx, pieces)

        def root(lo: int, hi: int) -> bytes:
            parts = [hashes[p] for p in _pieces(lo, hi)]
            node = parts[-1]
            for left in reversed(parts[:-1]):
                node = node_hash(left, node)
            return node

        return [[root(lo, hi) for lo, hi in proof] for proof in ranges]

    def _perfect_roots(self, tx: Tx, pieces: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Roots of perfect subtrees from the cache: stored nodes, or rehashed leaf hashes."""
        leaf_indices: set[int] = set()
        by_level: dict[int, list[int]] = {}
        for level, index in pieces:
            if level < _STORED_LEVEL:
                leaf_indices.update(range(index << level, (index + 1) << level))
            else:
                by_level.setdefault(level, []).append(index)
        leaves: dict[int, bytes] = {}
        ordered = sorted(leaf_indices)
        for start in range(0, len(ordered), _IN_CHUNK):
            chunk = ordered[start : start + _IN_CHUNK]
            tx.execute(
                f"SELECT leaf_index, leaf_hash FROM {_LEAVES} "  # noqa: S608
                f"WHERE leaf_index IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            leaves.update((i, bytes(h)) for i, h in tx.fetchall())
        nodes: dict[tuple[int, int], bytes] = {}
        for level, wanted in by_level.items():
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                tx.execute(
                    f"SELECT idx, hash FROM {_NODES} "  # noqa: S608
                    f"WHERE level = ? AND idx IN ({','.join('?' * len(chunk))})",
                    [level, *chunk],
                )
                nodes.update(((level, i), bytes(h)) for i, h in tx.fetchall())
        out: dict[tuple[int, int], bytes] = {}
        for level, index in pieces:
            try:
                if level < _STORED_LEVEL:
                    span = range(index << level, (index + 1) << level)
                    out[(level, index)] = root_from_leaf_hashes([leaves[i] for i in span])
                else:
                    out[(level, index)] = nodes[(level, index)]
            except (KeyError, ProofError):
                msg = (
                    f"the leaf cache lacks the subtree at height {level}, index {index}: "
                    "run `caseledger verify`, then `caseledger verify --rebuild-leaves`"
                )
                raise IntegrityError(msg) from None
        return out

    # -- verification -----------------------------------------------------------------------

    def verify(
        self,
        checkpoints: Sequence[str | bytes] = (),
        public_key: str | None = None,
        *,
        batch_size: int = _PAGE,
        on_progress: Callable[[int], None] | None = None,
    ) -> VerificationReport:
        """Recompute every leaf from the stored records and check them; see the module doc.

        ``checkpoints`` are signed notes, each verified with ``public_key`` (required
        with checkpoints). Raises :class:`~caseledger.errors.CheckpointError` if a
        checkpoint is malformed or not signed by that key; anything wrong with the log
        is reported in the returned :class:`VerificationReport`, not raised.
        ``on_progress``, if given, is called after each page of ``batch_size`` records
        with the number of records checked so far (for a progress bar).
        """
        started = time.perf_counter()
        if isinstance(checkpoints, (str, bytes)):
            checkpoints = [checkpoints]
        if checkpoints and public_key is None:
            raise CheckpointError("checkpoints can only be checked with the public key")
        given: list[Checkpoint] = []
        for number, note in enumerate(checkpoints, start=1):
            try:
                given.append(verify_checkpoint(note, public_key))  # type: ignore[arg-type]
            except CheckpointError as e:
                raise CheckpointError(f"checkpoint {number}: {e}") from None
        origins = {c.origin for c in given}
        if len(origins) > 1:
            raise CheckpointError(
                f"the checkpoints name different logs ({', '.join(sorted(origins))}): "
                "give checkpoints of one log"
            )
        given.sort(key=lambda c: c.size)
        if batch_size < 1:
            raise InvalidInput("batch_size must be at least 1")
        with self._store.transaction(commit=False) as tx, gc_paused():
            return self._verify(tx, given, batch_size, started, on_progress)

    def _verify(
        self,
        tx: Tx,
        given: list[Checkpoint],
        batch_size: int,
        started: float,
        on_progress: Callable[[int], None] | None = None,
    ) -> VerificationReport:
        tx.execute(f"SELECT MAX({self._position}) FROM {self._events}")  # noqa: S608
        max_row = tx.fetchone()
        max_position = int(max_row[0] or 0) if max_row else 0
        # Read after the maximum: the head then covers every record up to it, and records
        # appended meanwhile are beyond it (both are written in one transaction).
        head = self._read_head(tx)
        scan = _Scan()
        sizes = [c.size for c in given]
        want = {
            piece
            for a, b in pairwise(given)
            if a.size < b.size
            for lo, hi in consistency_proof_ranges(a.size, b.size)
            for piece in _pieces(lo, hi)
        }
        rec_roots, cache_roots = _Targets(sizes), _Targets(sizes)
        # One tree serves the records and the cache until they first differ.
        rec = _Tree(want=want or None, notify=[rec_roots, cache_roots])
        cache: _Tree | None = None
        reader = _CacheRows(tx, head.size if head else 0, batch_size)
        hasher = self._hasher
        expect = 0  # the next leaf index the cache should list
        last_cached = 0  # the position of the last cache row seen
        last_position = 0
        after = 0
        pending: tuple[list[tuple[Any, ...]], list[bytes | None]] | None = None
        pages = self._checked_pages(tx, max_position, batch_size)
        try:
            for page, digests, in_step in pages:
                if not in_step:
                    pending = (page, digests)
                    break
                # The common case: every record has its cached leaf, in step.
                rec.extend(digests)  # type: ignore[arg-type]
                expect += len(page)
                after = last_cached = last_position = page[-1][0]
                if on_progress is not None:
                    on_progress(rec.size)
        finally:
            pages.close()
        if pending is not None:
            # From here on the records and the cache are read apart and merged.
            rec.notify = [rec_roots]
            cache = rec.copy(notify=[cache_roots])
            reader.restart(expect)
        while cache is not None:
            if pending is not None:
                page, digests = pending
                pending = None
            else:
                if after >= max_position:
                    break
                page = self._page(tx, after, max_position, batch_size)
                if not page:
                    break
                digests = hasher.many(page)
            after = page[-1][0]
            for row, digest in zip(page, digests, strict=True):
                position = row[0]
                found = reader.peek()
                while found is not None and found[1] < position:
                    # A leaf for a position that has no record (any more).
                    self._orphan(scan, found, expect, last_cached, rec.size)
                    expect, last_cached = found[0] + 1, found[1]
                    cache.append(found[2])
                    reader.consume(1)
                    found = reader.peek()
                ordinal = rec.size
                if found is not None and found[1] == position:
                    index, _, stored = found
                    reader.consume(1)
                    if index != expect:
                        scan.gap(expect, index)
                    expect, last_cached = index + 1, position
                    cache.append(stored)
                    if digest != stored and scan.room():
                        scan.modified[position] = (ordinal, stored, _leaf_problem(row, digest))
                        scan.keep(row, ordinal)
                elif scan.room():
                    scan.inserted[position] = (ordinal, _leaf_problem(row, digest))
                    scan.keep(row, ordinal)
                rec.append(digest or _UNENCODABLE)
            last_position = after
            if on_progress is not None:
                on_progress(rec.size)
        if cache is None:
            reader.restart(expect)
        found = reader.peek()
        if found is not None and cache is None:
            rec.notify = [rec_roots]
            cache = rec.copy(notify=[cache_roots])
        while found is not None and cache is not None:
            # Leaves after the last record: records cut off the end.
            self._orphan(scan, found, expect, last_cached, rec.size)
            expect, last_cached = found[0] + 1, found[1]
            cache.append(found[2])
            reader.consume(1)
            found = reader.peek()

        final = cache or rec
        if head is None:
            scan.cache.append(
                Finding("cache", (), "the leaf cache is missing: only checkpoints were checked")
            )
        elif final.size != head.size:
            scan.cache.append(
                Finding(
                    "cache",
                    (),
                    f"the tree head says {head.size:,} leaves, the leaf cache holds {final.size:,}",
                )
            )
        elif final.stack != head.stack:
            scan.cache.append(
                Finding("cache", (), "the tree head does not match the stored leaf hashes")
            )
        return self._report(
            scan, given, rec, rec_roots.roots, cache_roots.roots, head, last_position, started
        )

    def _checked_pages(
        self, tx: Tx, upto: int, size: int
    ) -> Generator[tuple[list[tuple[Any, ...]], list[bytes | None], bool], None, None]:
        """The records up to position ``upto`` in pages, each with its recomputed leaf hashes
        and whether the leaf cache lists exactly those leaves next, in step.

        Stops after the first page that is not in step (the caller merges from there).
        """
        hasher = self._hasher
        if tx.dialect != "sqlite":
            expect = after = 0
            while after < upto:
                joined = self._page(tx, after, upto, size, joined=True)
                if not joined:
                    return
                page = [row[:5] for row in joined]
                digests = hasher.many(page)
                count = len(page)
                in_step = [row[5] for row in joined] == list(range(expect, expect + count)) and [
                    row[6] for row in joined
                ] == digests
                yield page, digests, in_step
                if not in_step:
                    return
                expect += count
                after = page[-1][0]
            return
        # SQLite: one statement for the records and one for the cache, read side by side
        # (no join: two sequential scans), compared a page at a time.
        records = tx.stream(self._stream_records, (0, upto), size=size)
        leaves = tx.stream(self._stream_leaves, size=size)
        first = itemgetter(0)
        expect = 0
        try:
            for page in records:
                digests = hasher.typed_many(page)
                count = len(page)
                cached = next(leaves, None)
                in_step = False
                if cached is not None and len(cached) == count:
                    indices, positions, stored = zip(*cached, strict=True)
                    in_step = (
                        indices == tuple(range(expect, expect + count))
                        and positions == tuple(map(first, page))
                        and stored == tuple(digests)
                    )
                yield page, digests, in_step
                if not in_step:
                    return
                expect += count
        finally:
            records.close()
            leaves.close()

    @staticmethod
    def _orphan(
        scan: _Scan, row: tuple[int, int, bytes], expect: int, last_cached: int, ordinal: int
    ) -> None:
        """Note a cache row whose record is gone, or that is out of step with the others."""
        index, position, stored = row
        if index != expect:
            scan.gap(expect, index)
        if position <= last_cached:
            scan.cache.append(
                Finding("cache", (position,), "the leaf cache lists this position out of order")
            )
        elif scan.room():
            scan.deleted[position] = (ordinal, stored)

    def _report(
        self,
        scan: _Scan,
        given: list[Checkpoint],
        records_tree: _Tree,
        record_roots: dict[int, bytes],
        cache_roots: dict[int, bytes],
        head: _Head | None,
        last_position: int,
        started: float,
    ) -> VerificationReport:
        count = records_tree.size
        findings: list[Finding] = []
        moved = self._find_moves(scan)
        # The largest checkpoint the records match vouches for every record before it:
        # anything the cache disagrees with there is the cache's fault.
        matched = {c.size for c in given if record_roots.get(c.size) == c.root}
        vouched = max(matched, default=0)

        def matches_records(check: Checkpoint) -> bool:
            return record_roots.get(check.size) == check.root

        results: list[CheckpointResult] = []
        previous: Checkpoint | None = None
        for check in given:
            matches = matches_records(check)
            consistent: bool | None = None
            if previous is not None:
                consistent = self._consistent(previous, check, matches, records_tree)
                if consistent is False:
                    findings.append(
                        Finding(
                            "inconsistent",
                            (),
                            f"checkpoint of size {previous.size:,} is not a prefix of "
                            f"checkpoint of size {check.size:,}: the log was rewritten "
                            "between them, or they come from different logs",
                        )
                    )
            previous = check
            results.append(CheckpointResult(check.origin, check.size, check.root, matches,
                                            consistent))  # fmt: skip
            if matches:
                continue
            if check.size > count:
                findings.append(
                    Finding(
                        "checkpoint",
                        (),
                        f"the signed checkpoint of size {check.size:,} holds "
                        f"{check.size - count:,} more record(s) than the log ({count:,}): "
                        "records were deleted or cut off the end",
                    )
                )
                continue
            below = max((s for s in matched if s < check.size), default=0)
            where = f"records {below + 1:,}–{check.size:,} of the log"
            if cache_roots.get(check.size) == check.root:
                detail = "the positions listed show where"
            else:
                detail = (
                    f"the leaf cache was rewritten as well, so the change is somewhere in {where}"
                )
            findings.append(
                Finding(
                    "checkpoint",
                    (),
                    f"the first {check.size:,} records do not have the root of the signed "
                    f"checkpoint of that size: {detail}",
                )
            )

        def blame(ordinal: int, kind: FindingKind) -> FindingKind:
            return "cache" if ordinal < vouched else kind

        for (position, source), ordinal in moved.items():
            partner = moved.get((source, position))
            if partner is not None and source < position:
                continue  # reported once, with the pair
            if partner is not None:
                message = f"the records at positions {position} and {source} were swapped"
                findings.append(Finding(blame(ordinal, "reordered"), (position, source), message))
            else:
                message = f"holds the record that was recorded at position {source}"
                findings.append(Finding(blame(ordinal, "reordered"), (position, source), message))
        for position, (ordinal, _, problem) in scan.modified.items():
            message = (
                f"the stored record is malformed: {problem}"
                if problem
                else "the stored record differs from the one recorded (leaf hash mismatch)"
            )
            findings.append(Finding(blame(ordinal, "modified"), (position,), message))
        tail = [p for p in scan.deleted if p > last_position]
        middle = [p for p in scan.deleted if p <= last_position]
        for run in _runs(middle):
            ordinal = scan.deleted[run[0]][0]
            message = "recorded, and no longer in the log"
            findings.append(Finding(blame(ordinal, "deleted"), tuple(run), message))
        if tail:
            findings.append(
                Finding(
                    "truncated",
                    tuple(tail),
                    "recorded, and cut off the end of the log",
                )
            )
        for run in _runs(list(scan.inserted)):
            ordinal, problem = scan.inserted[run[0]]
            message = "never recorded through the ledger (it has no leaf hash)"
            if problem:
                message += f"; malformed: {problem}"
            findings.append(Finding(blame(ordinal, "inserted"), tuple(run), message))
        findings.extend(scan.cache)
        # Positions first, in log order; then what concerns the log as a whole.
        findings.sort(key=lambda f: (not f.positions, f.positions[:1], f.kind))
        return VerificationReport(
            records=count,
            last_position=last_position,
            root=records_tree.root(),
            cached_size=head.size if head else None,
            checkpoints=tuple(results),
            findings=tuple(findings),
            omitted=scan.omitted,
            seconds=time.perf_counter() - started,
        )

    def _find_moves(self, scan: _Scan) -> dict[tuple[int, int], int]:
        """Records that sit where another recorded record was: ``(now, was) -> ordinal``.

        A leaf commits to its position, so a record moved elsewhere no longer matches
        any leaf hash; re-encoded at each vacated position, it matches the one it left.
        """
        targets = {p: stored for p, (_, stored, _) in scan.modified.items()}
        targets.update((p, stored) for p, (_, stored) in scan.deleted.items())
        candidates = [
            item
            for position, item in scan.contents.items()
            if position in scan.modified or position in scan.inserted
        ]
        if not targets or not candidates or len(targets) * len(candidates) > _REORDER_WORK:
            return {}
        moved: dict[tuple[int, int], int] = {}
        for item in candidates:
            now, *content = item.row
            sources = [source for source in targets if source != now]
            digests = self._hasher.many([(source, *content) for source in sources])
            for source, digest in zip(sources, digests, strict=True):
                if digest == targets[source]:
                    moved[(now, source)] = item.ordinal
                    break
        for now, was in moved:
            scan.modified.pop(now, None)
            scan.inserted.pop(now, None)
            scan.deleted.pop(was, None)
        return moved

    def _consistent(
        self, old: Checkpoint, new: Checkpoint, new_matches: bool, records_tree: _Tree
    ) -> bool | None:
        """Whether ``old`` is a prefix of ``new``, when the records let us prove either way."""
        if old.size == new.size:
            return old.root == new.root
        if not new_matches:
            return None  # no tree with the new root to build a proof from
        got = records_tree.got
        proof = []
        for lo, hi in consistency_proof_ranges(old.size, new.size):
            parts = [got[p] for p in _pieces(lo, hi)]
            proof.append(_fold(parts))
        try:
            verify_consistency(old.size, new.size, old.root, new.root, proof)
        except ProofError:
            return False
        return True


def _runs(positions: list[int]) -> list[list[int]]:
    """Sorted positions grouped into runs of consecutive numbers."""
    runs: list[list[int]] = []
    for p in sorted(positions):
        if runs and p == runs[-1][-1] + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs


def _parse_head(row: tuple[Any, ...]) -> _Head:
    size, last_position, frontier = int(row[0]), int(row[1]), bytes(row[2])
    if size < 0 or len(frontier) != HASH_SIZE * size.bit_count():
        msg = (
            "the Merkle log's tree head is damaged: run `caseledger verify`, then "
            "`caseledger verify --rebuild-leaves`"
        )
        raise IntegrityError(msg)
    stack = [frontier[i : i + HASH_SIZE] for i in range(0, len(frontier), HASH_SIZE)]
    return _Head(size, last_position, stack)
