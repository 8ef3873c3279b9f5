"""Data keys: one per household (and per worker), wrapped by the deployment's master key.

Personal fields are sealed (:mod:`caseledger.codec`) with AES-256-GCM under the data
key of their *owner*: the household an event is about, or the worker whose name a
``WorkerRegistered`` carries (a per-worker key, so a worker's data can be destroyed
like a household's). Data keys live in the table ``caseledger_keys`` of the same
database as the events (so a new key is written in the same transaction as the first
event it seals, or not at all), never in plain text: each is wrapped with AES-256-GCM
under the *master key*, with the owner id as associated data so wrapped keys cannot be
swapped between owners.

The master key (32 bytes) comes from the deployment, first found of:

1. ``Ledger.open(..., master_key=...)``: raw bytes, base64 text, or a key file ``Path``;
2. ``$CASELEDGER_MASTER_KEY``: base64 of 32 bytes;
3. ``$CASELEDGER_MASTER_KEY_FILE``: a file holding that base64 text;
4. an in-memory ledger (``":memory:"``) makes an ephemeral key, gone with the ledger;
5. an SQLite ledger uses a key file beside it (``caseledger.db.key``) if one exists;
   ``caseledger demo`` and ``caseledger keygen`` create one (mode 0600). Convenient
   for trying caseledger out; a production deployment keeps the master key elsewhere.

Without a master key the ledger still opens and records everything structural;
sealing or opening personal data raises :class:`~caseledger.errors.ConfigurationError`.

Sealing is deterministic: the nonce is an HMAC of the associated data and plaintext
under a key derived from the data key (a synthetic IV), so re-encoding a decoded event
gives the stored bytes again, and equal nonces only ever come with equal plaintext for
the same record and field.

Erasure (crypto-shredding) deletes the household's wrapped key and leaves a tombstone
row (no key, ``erased_at``), in the transaction that records ``HouseholdErased``. Then
it makes sure no copy is left in the database files: SQLite connections run with
``secure_delete=ON`` (deleted content is overwritten with zeros) and the WAL is
checkpointed and truncated; on PostgreSQL the key table is rewritten with
``VACUUM FULL`` (plain ``VACUUM`` marks dead rows reusable but does not overwrite them).
Copies made before the erasure (backups, PostgreSQL WAL archives) still hold the
wrapped key; :meth:`KeyRing.rotate` re-wraps every remaining key under a new master key,
after which the old master key can be destroyed and those copies no longer open.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from caseledger.codec import Opener
from caseledger.errors import ConfigurationError, CorruptRecord, RuleViolation, StoreError
from caseledger.events import HouseholdErased
from caseledger.store import Dialect, EventStore, StoredEvent, Tx

__all__ = [
    "KEY_FILE_SUFFIX",
    "MASTER_KEY_ENV",
    "MASTER_KEY_FILE_ENV",
    "KeyRing",
    "Sealing",
    "create_key_file",
    "find_master_key",
    "generate_master_key",
    "key_file_beside",
    "master_key_text",
    "parse_master_key",
    "read_key_file",
]

#: Environment variable holding the master key (base64 of 32 bytes).
MASTER_KEY_ENV = "CASELEDGER_MASTER_KEY"
#: Environment variable naming a file that holds the master key.
MASTER_KEY_FILE_ENV = "CASELEDGER_MASTER_KEY_FILE"
#: A key file beside an SQLite database ``X`` is named ``X`` + this suffix.
KEY_FILE_SUFFIX = ".key"

_KEY_SIZE = 32
_NONCE_SIZE = 12
_WRAP_AAD = b"caseledger:key:1\x00"
_TABLE = "caseledger_keys"
_NO_MASTER_KEY = (
    "personal data must be sealed or opened, but no master key is configured: set "
    f"{MASTER_KEY_ENV} (base64 of 32 bytes, e.g. from `caseledger keygen --print`) or "
    f"{MASTER_KEY_FILE_ENV}, or pass Ledger.open(..., master_key=...)"
)


# ---------------------------------------------------------------------------
# Master keys


def generate_master_key() -> bytes:
    """A new random 32-byte master key."""
    return os.urandom(_KEY_SIZE)


def master_key_text(key: bytes) -> str:
    """The base64 text of a master key, as ``$CASELEDGER_MASTER_KEY`` and key files hold it."""
    return base64.b64encode(key).decode("ascii")


def parse_master_key(text: str | bytes, where: str = "the master key") -> bytes:
    """The 32 bytes of a master key given as base64 text."""
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != _KEY_SIZE:
        msg = f"{where} must be base64 of exactly {_KEY_SIZE} random bytes"
        raise ConfigurationError(msg)
    return key


def read_key_file(path: str | Path) -> bytes:
    """The master key held (as base64 text) in a key file."""
    try:
        text = Path(path).read_text("ascii")
    except (OSError, UnicodeDecodeError) as e:
        msg = f"cannot read the master key file {path}: {getattr(e, 'strerror', None) or e}"
        raise ConfigurationError(msg) from None
    return parse_master_key(text, f"the master key file {path}")


def create_key_file(path: str | Path, key: bytes | None = None) -> bytes:
    """Write a new master key (or ``key``) to a new file readable only by its owner (0600).

    Refuses to overwrite an existing file: losing a master key loses every personal
    value sealed under it.
    """
    key = key if key is not None else generate_master_key()
    if len(key) != _KEY_SIZE:
        msg = f"a master key is {_KEY_SIZE} bytes, not {len(key)}"
        raise ConfigurationError(msg)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        msg = f"{path} exists already; a key file is never overwritten"
        raise ConfigurationError(msg) from None
    except OSError as e:
        msg = f"cannot create the key file {path}: {e.strerror or e}"
        raise ConfigurationError(msg) from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(master_key_text(key) + "\n")
    return key


def key_file_beside(database: str | Path) -> Path:
    """Where the key file of an SQLite database file lives: ``<database>.key``."""
    return Path(str(database) + KEY_FILE_SUFFIX)


def find_master_key(
    given: bytes | str | Path | None, *, sqlite_file: Path | None, in_memory: bool
) -> tuple[bytes | None, str]:
    """The master key and where it came from, in the order the module docstring gives."""
    if isinstance(given, bytes):
        if len(given) != _KEY_SIZE:
            msg = f"master_key must be {_KEY_SIZE} bytes, not {len(given)}"
            raise ConfigurationError(msg)
        return given, "given"
    if isinstance(given, Path):
        return read_key_file(given), f"key file {given}"
    if isinstance(given, str):
        return parse_master_key(given, "master_key"), "given"
    text = os.environ.get(MASTER_KEY_ENV)
    if text:
        return parse_master_key(text, f"${MASTER_KEY_ENV}"), f"${MASTER_KEY_ENV}"
    path = os.environ.get(MASTER_KEY_FILE_ENV)
    if path:
        return read_key_file(path), f"key file {path} (${MASTER_KEY_FILE_ENV})"
    if in_memory:
        return generate_master_key(), "ephemeral (in-memory ledger)"
    if sqlite_file is not None:
        beside = key_file_beside(sqlite_file)
        if beside.exists():
            return read_key_file(beside), f"key file {beside}"
    return None, "none"


# ---------------------------------------------------------------------------
# Data keys


class _DataKey:
    """An unwrapped data key, split by HKDF into an encryption and a nonce key."""

    __slots__ = ("_aead", "_nonce_key")

    def __init__(self, raw: bytes) -> None:
        okm = HKDF(
            algorithm=hashes.SHA256(), length=64, salt=None, info=b"caseledger:data-key:1"
        ).derive(raw)
        self._aead = AESGCM(okm[:32])
        self._nonce_key = okm[32:]

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        # HMAC-SHA256(nonce key, len(aad) ‖ aad ‖ plaintext), in one call.
        message = len(aad).to_bytes(4, "big") + aad + plaintext
        nonce = hmac.digest(self._nonce_key, message, "sha256")[:_NONCE_SIZE]
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:], aad)
        except InvalidTag:
            msg = (
                "a sealed personal field does not open with its data key: the stored "
                "bytes were changed or moved from another record"
            )
            raise CorruptRecord(msg) from None


def _wrap(master: AESGCM, owner: UUID, raw: bytes) -> bytes:
    nonce = os.urandom(_NONCE_SIZE)
    return nonce + master.encrypt(nonce, raw, _WRAP_AAD + owner.bytes)


def _owner_text(owner: UUID) -> str:
    return owner.hex


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class KeyRing:
    """The data keys of one ledger: creates, wraps, caches, opens and destroys them.

    The ledger makes one (``ledger.keys``); pass it to nothing yourself. It is the
    :class:`~caseledger.codec.Sealer` behind ``Ledger`` writes (through a per-commit
    :class:`Sealing`) and hands out :class:`~caseledger.codec.Opener` objects for reads.
    """

    def __init__(
        self,
        store: EventStore,
        master_key: bytes | None,
        *,
        source: str = "given",
        cache_size: int = 50_000,
    ) -> None:
        self._store = store
        self._master = AESGCM(master_key) if master_key is not None else None
        self.source = source
        self._cache: OrderedDict[UUID, _DataKey] = OrderedDict()
        self._cache_size = cache_size
        self._erased_now: set[UUID] = set()
        self._erasure_xid: str | None = None
        store.add_hook(_KeyHook(self))

    @property
    def has_master_key(self) -> bool:
        """Whether a master key is configured (personal data can be sealed and opened)."""
        return self._master is not None

    def _master_aead(self) -> AESGCM:
        if self._master is None:
            raise ConfigurationError(_NO_MASTER_KEY)
        return self._master

    # -- wrapping ---------------------------------------------------------------------------

    def _wrap(self, owner: UUID, raw: bytes) -> bytes:
        return _wrap(self._master_aead(), owner, raw)

    def _unwrap(self, owner: UUID, wrapped: bytes) -> bytes:
        try:
            return self._master_aead().decrypt(
                wrapped[:_NONCE_SIZE], wrapped[_NONCE_SIZE:], _WRAP_AAD + owner.bytes
            )
        except InvalidTag:
            msg = (
                f"the master key ({self.source}) does not open the data key of {owner}: "
                "is it the master key this ledger was created with?"
            )
            raise ConfigurationError(msg) from None

    # -- the key table ----------------------------------------------------------------------

    def _row(self, owner: UUID) -> tuple[bytes | None, str | None] | None:
        rows = self._store.query(
            f"SELECT wrapped, erased_at FROM {_TABLE} WHERE owner_id = ?",  # noqa: S608
            (_owner_text(owner),),
        )
        if not rows:
            return None
        wrapped, erased_at = rows[0]
        return (bytes(wrapped) if wrapped is not None else None), erased_at

    def wrapped_key(self, owner: UUID) -> bytes | None:
        """The stored wrapped data key of ``owner`` (None if it has none, or was erased)."""
        row = self._row(owner)
        return row[0] if row is not None else None

    def erased_at(self, owner: UUID) -> str | None:
        """When ``owner``'s data key was destroyed (ISO text), or None."""
        row = self._row(owner)
        return row[1] if row is not None else None

    def _remember(self, owner: UUID, key: _DataKey) -> None:
        self._cache[owner] = key
        self._cache.move_to_end(owner)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _load(self, owner: UUID) -> _DataKey | Literal["erased"] | None:
        return self._from_row(owner, self._row(owner))

    def _from_row(
        self, owner: UUID, row: tuple[bytes | None, str | None] | None
    ) -> _DataKey | Literal["erased"] | None:
        if row is None:
            return None
        wrapped, erased_at = row
        if wrapped is None or erased_at is not None:
            self._cache.pop(owner, None)
            return "erased"
        key = _DataKey(self._unwrap(owner, wrapped))
        self._remember(owner, key)
        return key

    # -- sealing and opening ----------------------------------------------------------------

    def sealing(self) -> Sealing:
        """A sealer for the records of one commit; the ledger passes it to its write hook."""
        return Sealing(self)

    def opener(self) -> Opener:
        """An opener for one read: keys are looked up afresh, so an erasure is seen at once."""
        return _Opener(self)

    def committed(self, sealing: Sealing) -> None:
        """After a commit: remember its new keys, forget erased ones, scrub the files."""
        for owner, (_, key) in sealing.new.items():
            self._remember(owner, key)
        if self._erased_now:
            for owner in self._erased_now:
                self._cache.pop(owner, None)
            self._erased_now.clear()
            self.scrub()

    def scrub(self, *, timeout: float = 30.0) -> None:
        """Make sure no deleted key survives in the database files (see module docstring).

        Waits up to ``timeout`` seconds for readers that still hold the old state, then
        raises :class:`~caseledger.errors.StoreError` (the erasure itself stands: no
        reader can open the data any more; call ``scrub()`` again later).
        """
        deadline = time.monotonic() + timeout
        if self._store.dialect == "postgres":
            self._scrub_postgres(deadline)
            return
        if self._store.display == ":memory:":
            return
        while self._store.maintain("PRAGMA wal_checkpoint(TRUNCATE)")[0][0]:
            if time.monotonic() > deadline:
                msg = (
                    "the household was erased, but another connection keeps the write-ahead "
                    "log from being truncated, so an old copy of its key may still be in the "
                    "-wal file; close other readers and call ledger.keys.scrub() again"
                )
                raise StoreError(msg)
            time.sleep(0.02)

    def _scrub_postgres(self, deadline: float) -> None:
        # VACUUM FULL copies a deleted row that an older snapshot might still see, so wait
        # until every transaction that began before the erasure has finished.
        xid = self._erasure_xid
        while xid is not None:
            older = self._store.query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type <> 'autovacuum worker' "
                "AND backend_xmin IS NOT NULL AND age(backend_xmin) >= age(?::xid)",
                (xid,),
            )[0][0]
            if not older:
                break
            if time.monotonic() > deadline:
                msg = (
                    f"the household was erased, but {older} transaction(s) that began before "
                    "the erasure are still open, so PostgreSQL keeps the old row version of "
                    "its key on disk; call ledger.keys.scrub() again when they have finished"
                )
                raise StoreError(msg)
            time.sleep(0.05)
        self._store.maintain(f"VACUUM FULL {_TABLE}")
        self._erasure_xid = None

    # -- master key rotation ----------------------------------------------------------------

    def rotate(self, new_master_key: bytes) -> int:
        """Re-wrap every data key under ``new_master_key``; return how many.

        Afterwards only the new master key opens this ledger; destroy the old one, and
        copies of wrapped keys in old backups or archived logs no longer open. Readers
        and writers in other processes need the new key from now on.
        """
        if len(new_master_key) != _KEY_SIZE:
            msg = f"a master key is {_KEY_SIZE} bytes, not {len(new_master_key)}"
            raise ConfigurationError(msg)
        new = AESGCM(new_master_key)
        count = 0
        with self._store.transaction() as tx:
            tx.execute(f"SELECT owner_id, wrapped FROM {_TABLE} WHERE wrapped IS NOT NULL")  # noqa: S608
            rows = tx.fetchall()
            for owner_text, wrapped in rows:
                owner = UUID(hex=owner_text)
                raw = self._unwrap(owner, bytes(wrapped))
                tx.execute(
                    f"UPDATE {_TABLE} SET wrapped = ? WHERE owner_id = ?",  # noqa: S608
                    (_wrap(new, owner, raw), owner_text),
                )
                count += 1
        self._master = new
        self.source = "rotated"
        self.scrub()
        return count


class Sealing:
    """Seals the personal fields of one commit; new data keys are written with it."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self.new: dict[UUID, tuple[bytes, _DataKey]] = {}
        self.reused: set[UUID] = set()
        self._looked_up: dict[UUID, _DataKey | Literal["erased"] | None] = {}

    def prefetch(self, owners: Iterable[UUID]) -> None:
        """Look up the data keys of ``owners`` not cached yet, 500 to a query.

        For a commit that seals for many owners: one query instead of one per owner.
        """
        ring = self._ring
        if ring._master is None:
            return
        todo = list(
            {o for o in owners if o not in ring._cache and o not in self.new}
            - self._looked_up.keys()
        )
        for start in range(0, len(todo), 500):
            chunk = todo[start : start + 500]
            rows = ring._store.query(
                f"SELECT owner_id, wrapped, erased_at FROM {_TABLE} "  # noqa: S608
                f"WHERE owner_id IN ({','.join('?' * len(chunk))})",
                [_owner_text(o) for o in chunk],
            )
            found = {str(r[0]): ((bytes(r[1]) if r[1] is not None else None), r[2]) for r in rows}
            for owner in chunk:
                self._looked_up[owner] = ring._from_row(owner, found.get(_owner_text(owner)))

    def _key(self, owner: UUID) -> _DataKey:
        if owner in self.new:
            return self.new[owner][1]
        ring = self._ring
        ring._master_aead()  # fail early and clearly without a master key
        found: _DataKey | Literal["erased"] | None = ring._cache.get(owner)
        if found is None:
            looked_up = self._looked_up
            found = looked_up[owner] if owner in looked_up else ring._load(owner)
        if found == "erased":
            msg = (
                f"the personal data of {owner} was erased; no personal data can be "
                "recorded for it any more (structural fields still can)"
            )
            raise RuleViolation(msg)
        if isinstance(found, _DataKey):
            self.reused.add(owner)
            return found
        raw = os.urandom(_KEY_SIZE)
        key = _DataKey(raw)
        self.new[owner] = (ring._wrap(owner, raw), key)
        return key

    def seal(self, owner: UUID, plaintext: bytes, aad: bytes) -> bytes:
        """``nonce ‖ ciphertext`` of ``plaintext`` under ``owner``'s data key."""
        return self._key(owner).seal(plaintext, aad)

    def _erased_checks(self) -> Iterator[tuple[str, list[str]]]:
        """The reads that find which reused keys were erased meanwhile."""
        owners = sorted(_owner_text(o) for o in self.reused)
        for start in range(0, len(owners), 500):
            chunk = owners[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT owner_id FROM {_TABLE} WHERE wrapped IS NULL AND owner_id IN ({marks})"  # noqa: S608
            yield sql, chunk

    def send_checks(self, tx: Tx) -> None:
        """Send the reads of :meth:`write` ahead, with the insert."""
        for sql, params in self._erased_checks():
            tx.prefetch(sql, params)

    def write(self, tx: Tx) -> None:
        """Inside the write transaction: refuse keys erased meanwhile; store new keys."""
        for sql, params in self._erased_checks():
            tx.execute(sql, params)
            erased = tx.fetchall()
            if erased:
                owner = UUID(hex=erased[0][0])
                self._ring._cache.pop(owner, None)
                msg = (
                    f"the personal data of {owner} was erased meanwhile; no personal data "
                    "can be recorded for it any more"
                )
                raise RuleViolation(msg)
        if self.new:
            now = _now_text()
            tx.executemany(
                f"INSERT INTO {_TABLE} (owner_id, wrapped, created_at) VALUES (?,?,?)",  # noqa: S608
                [(_owner_text(o), wrapped, now) for o, (wrapped, _) in self.new.items()],
            )


class _Opener:
    """Opens sealed fields for one read, looking keys up afresh."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self._keys: dict[UUID, _DataKey | Literal["erased"]] = {}

    def open(self, owner: UUID, sealed: bytes, aad: bytes) -> bytes | Literal["erased", "withheld"]:
        key = self._keys.get(owner)
        if key is None:
            found = self._ring._load(owner)
            if found is None:
                msg = f"personal data of {owner} is sealed but its data key is missing"
                raise CorruptRecord(msg)
            key = self._keys[owner] = found
        if key == "erased":
            return "erased"
        assert isinstance(key, _DataKey)  # noqa: S101 - narrowed above
        return key.open(sealed, aad)


class _KeyHook:
    """Writes new data keys and destroys erased ones in the events' transaction."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    def create_statements(self, dialect: Dialect) -> list[str]:
        blob = "BYTEA" if dialect == "postgres" else "BLOB"
        return [
            f"CREATE TABLE IF NOT EXISTS {_TABLE} (owner_id TEXT PRIMARY KEY, "
            f"wrapped {blob}, created_at TEXT NOT NULL, erased_at TEXT)"
        ]

    def prefetch(self, tx: Tx, records: Sequence[StoredEvent], context: dict[str, Any]) -> None:
        sealing = context.get("sealing")
        if isinstance(sealing, Sealing):
            sealing.send_checks(tx)

    def after_insert(
        self,
        tx: Tx,
        records: Sequence[StoredEvent],
        positions: Sequence[int],
        context: dict[str, Any],
    ) -> None:
        sealing = context.get("sealing")
        if isinstance(sealing, Sealing):
            sealing.write(tx)
        for event in context.get("events", ()):
            if isinstance(event, HouseholdErased):
                owner = _owner_text(event.originator_id)
                # secure_delete (set on every SQLite connection) zeroes the deleted row.
                tx.execute(f"DELETE FROM {_TABLE} WHERE owner_id = ?", (owner,))  # noqa: S608
                tx.execute(
                    f"INSERT INTO {_TABLE} (owner_id, wrapped, created_at, erased_at) "  # noqa: S608
                    "VALUES (?, NULL, ?, ?)",
                    (owner, _now_text(), event.occurred_at.astimezone(UTC).isoformat()),
                )
                self._ring._erased_now.add(event.originator_id)
                if tx.dialect == "postgres":
                    tx.execute("SELECT pg_current_xact_id()::xid::text")
                    found = tx.fetchone()
                    self._ring._erasure_xid = str(found[0]) if found else None
