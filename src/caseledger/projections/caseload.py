"""The caseload: every case's state, on both time axes, and the queries over it.

Each case event that moves a case (intake, assessment, a meeting discussing it,
classification, plan, service link, a check that stops a service, closure,
follow-up, reopening, transfer) becomes a *transition*: a small structural row kept
in ``caseledger_case_transition``. Folding a case's transitions gives its state
(stage, track, level, assigned worker and organisation, dong and district, and the
dates the deadlines need). The fold is kept as *versions*: rows valid over an
interval, one table per time axis:

``caseledger_case_recorded``
    transitions folded in log order; a version is valid from the ``recorded_at`` of
    the event that made it until the next version. The versions still open make the
    current caseload; ``as_of_recorded=T`` picks the versions valid at ``T``.
``caseledger_case_occurred``
    transitions folded in ``occurred_at`` order (an event that occurred before its
    case was opened counts from the opening); ``as_of=D`` picks the versions valid at
    ``D``. An entry recorded late with an earlier ``occurred_at`` refolds that one
    case's versions from its transitions.

A new version starts only when something a caseload shows changes; the number of
active service links (which only decides the next stage) is kept on the latest
version in place, and service checks are looked up from the transitions, so the
high-volume events (links, checks) add no versions. Asking both axes at once
(``as_of`` and ``as_of_recorded``) folds the transitions recorded by ``T`` in
Python: exact, but it reads every transition rather than an index.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any, ClassVar, NamedTuple
from uuid import UUID

from caseledger.codec import trusted_uuid
from caseledger.errors import CaseNotFound, InvalidInput
from caseledger.events import (
    CaseClassified,
    CaseClosed,
    CaseMeetingHeld,
    CaseOpened,
    CaseReopened,
    CaseTransferred,
    ConsentGranted,
    ConsentWithdrawn,
    ConsultationRecorded,
    Event,
    FollowUpConducted,
    HouseholdDiscovered,
    HouseholdErased,
    NeedsAssessed,
    NeedsReassessed,
    OrganisationRegistered,
    ReferralAccepted,
    ReferralCompleted,
    ReferralRejected,
    ReferralRevoked,
    ReferralSent,
    ServiceChecked,
    ServiceLinked,
    ServicePlanAgreed,
    SupervisionRecorded,
    WorkerRegistered,
)
from caseledger.projections.base import (
    END,
    Item,
    Projection,
    Schema,
    chunks,
    fetch,
    fetch_one,
    local_date,
    placeholders,
)
from caseledger.projections.due import Deadlines, DueItem, due_on
from caseledger.store import Tx
from caseledger.values import ClosureReason, Level, Stage, Track

__all__ = [
    "BUCKETS",
    "Caseload",
    "CaseloadEntry",
    "FoundCase",
    "WorkerCaseload",
    "WorkerCaseloads",
    "bucket_of",
    "caseload_query",
    "due_query",
    "dues_of",
    "open_states_at",
    "worker_caseloads_query",
]

#: Caseload size buckets per worker (domain guide).
BUCKETS = ("0-9", "10-19", "20-29", "30+")

_TRANSITIONS = "caseledger_case_transition"
_RECORDED = "caseledger_case_recorded"
_OCCURRED = "caseledger_case_occurred"

# Transition kinds.
_OPENED = "opened"
_ASSESSED = "assessed"
_MEETING = "meeting"
_CLASSIFIED = "classified"
_PLANNED = "planned"
_LINKED = "linked"
_CHECKED = "checked"
_CLOSED = "closed"
_FOLLOW_UP = "follow_up"
_REOPENED = "reopened"
_TRANSFERRED = "transferred"


def bucket_of(count: int) -> str:
    """The caseload bucket of a worker with ``count`` open cases."""
    if count >= 30:
        return "30+"
    return BUCKETS[count // 10]


# ---------------------------------------------------------------------------
# The fold


class _State(NamedTuple):
    household_id: str
    dong: str
    district: str
    organisation: str
    worker: str
    stage: str
    stage_since: str
    track: str | None
    level: str | None
    opened_at: str
    intake_at: str
    assessed_at: str | None
    classified_at: str | None
    plan_at: str | None
    closed_at: str | None
    closure_reason: str | None
    meeting_at: str | None
    follow_up_at: str | None
    reopened: int
    # Last, so that everything before it is what a caseload shows (see shown()).
    active_links: int

    def shown(self) -> tuple[Any, ...]:
        # Everything but the active link count, which changes with every link.
        return self[:-1]


_STATE_COLUMNS = _State._fields
_CLOSED_STAGE = Stage.CLOSED.value


class _T(NamedTuple):
    """A transition: one structural change of one case."""

    case_id: str
    position: int
    occurred: str
    recorded: str
    eff: str
    kind: str
    a: str | None
    b: str | None
    c: str | None
    d: str | None
    e: str | None


_CASE_MANAGED = Track.CASE_MANAGED.value
_LINKAGE_ONLY = Track.LINKAGE_ONLY.value
_NOT_SELECTED = Track.NOT_SELECTED.value
_IN_SERVICE = Stage.IN_SERVICE.value
_PLANNED_STAGE = Stage.PLANNED.value
_SELECTED = Stage.SELECTED.value
_LINKED_STAGE = Stage.LINKED.value
_LINKAGE_SELECTED = Stage.LINKAGE_SELECTED.value
_NOT_SELECTED_STAGE = Stage.NOT_SELECTED.value
_OPENED_STAGE = Stage.OPENED.value
_ASSESSED_STAGE = Stage.ASSESSED.value
#: Where fields sit in a _State tuple (for building the next state without _replace);
#: ``stage_since`` follows ``stage``.
_STAGE = _STATE_COLUMNS.index("stage")
_MEETING_AT = _STATE_COLUMNS.index("meeting_at")
_FOLLOW_UP_AT = _STATE_COLUMNS.index("follow_up_at")
_LINKS = _STATE_COLUMNS.index("active_links")
#: Builds a _State or _T from a tuple of its fields in order, without per-field checks.
_new = tuple.__new__


def _stage_for_track(s: _State) -> str:
    track = s.track
    if track == _CASE_MANAGED:
        if s.active_links:
            return _IN_SERVICE
        return _PLANNED_STAGE if s.plan_at else _SELECTED
    if track == _LINKAGE_ONLY:
        return _LINKED_STAGE if s.active_links else _LINKAGE_SELECTED
    if track == _NOT_SELECTED:
        return _NOT_SELECTED_STAGE
    return s.stage


def _links_changed(s: _State, links: int, when: str) -> _State:
    """``s`` with ``links`` active service links, and the stage that follows from them."""
    n: _State = _new(_State, (*s[:_LINKS], links))
    stage = _stage_for_track(n)
    if stage == n[_STAGE]:
        return n
    return _new(_State, (*n[:_STAGE], stage, when, *n[_STAGE + 2 :]))


def _moved(s: _State, stage: str, when: str) -> _State:
    return s if stage == s.stage else s._replace(stage=stage, stage_since=when)


def _step(s: _State | None, t: _T, when: str) -> _State | None:
    """The state after transition ``t`` at time ``when``; ``s`` itself if nothing changed.

    Mirrors :class:`caseledger.case.Case`. The guards (nothing but reopening moves a
    closed case; assessment only moves an opened one) never fire in log order, where
    the decisions already refused such commands, but keep the occurred-order fold
    sensible when entries were backdated across a closure.
    """
    kind = t.kind
    if s is None:
        if kind != _OPENED:
            return None
        return _State(
            household_id=t.a or "",
            dong=t.b or "",
            district=t.c or "",
            organisation=t.d or "",
            worker=t.e or "",
            stage=_OPENED_STAGE,
            stage_since=when,
            track=None,
            level=None,
            opened_at=when,
            intake_at=when,
            assessed_at=None,
            classified_at=None,
            plan_at=None,
            closed_at=None,
            closure_reason=None,
            meeting_at=None,
            follow_up_at=None,
            reopened=0,
            active_links=0,
        )
    closed = s.stage == _CLOSED_STAGE
    # The frequent kinds first, building the next tuple directly (_replace is slow).
    if kind == _LINKED:
        if closed:
            return s
        return _links_changed(s, s.active_links + 1, when)
    if kind == _CHECKED:
        if t.a != "stop" or closed or not s.active_links:
            return s
        return _links_changed(s, s.active_links - 1, when)
    if kind == _MEETING:
        return _new(_State, (*s[:_MEETING_AT], when, *s[_MEETING_AT + 1 :]))
    if kind == _FOLLOW_UP:
        return _new(_State, (*s[:_FOLLOW_UP_AT], when, *s[_FOLLOW_UP_AT + 1 :]))
    if kind == _TRANSFERRED:
        return s._replace(
            organisation=t.a or "", worker=t.b or "", dong=t.c or "", district=t.d or ""
        )
    if kind == _REOPENED:
        if not closed:
            return s
        n = s._replace(
            reopened=s.reopened + 1,
            worker=t.a or s.worker,
            track=None,
            level=None,
            intake_at=when,
            assessed_at=None,
            classified_at=None,
            plan_at=None,
            closed_at=None,
            closure_reason=None,
            meeting_at=None,
            active_links=0,
        )
        return _moved(n, _OPENED_STAGE, when)
    if closed:
        return s
    if kind == _ASSESSED:
        if s.stage != _OPENED_STAGE:
            return s
        n = s._replace(assessed_at=when)
        return _moved(n, _ASSESSED_STAGE, when)
    if kind == _CLASSIFIED:
        n = s._replace(track=t.a, level=t.b, classified_at=when)
        return _moved(n, _stage_for_track(n), when)
    if kind == _PLANNED:
        n = s._replace(plan_at=s.plan_at or when)
        return _moved(n, _stage_for_track(n), when)
    if kind == _CLOSED:
        n = s._replace(closed_at=when, closure_reason=t.a, active_links=0)
        return _moved(n, _CLOSED_STAGE, when)
    return s  # pragma: no cover - every kind is handled above


class _Version:
    """A version of a case's state being built: valid from ``start`` to ``end``."""

    __slots__ = ("case_id", "end", "position", "start", "state")

    def __init__(self, case_id: str, start: str, end: str, position: int, state: _State) -> None:
        self.case_id = case_id
        self.start = start
        self.end = end
        self.position = position
        self.state = state

    def row(self) -> tuple[Any, ...]:
        return (self.case_id, self.start, self.end, self.position, *self.state)


def _advance(
    current: _Version | None, transitions: Iterable[_T], occurred_axis: bool
) -> list[_Version]:
    """Fold ``transitions`` (in the axis' order) onto ``current``; return the new versions.

    ``current`` (the latest stored version, or None) may be changed in place: its end
    when a new version follows, its active link count otherwise.
    """
    latest = current
    state = current.state if current is not None else None
    made: list[_Version] = []
    for t in transitions:
        when = t.eff if occurred_axis else t.occurred
        nxt = _step(state, t, when)
        if nxt is None or nxt is state:
            continue
        if latest is not None and state is not None and nxt.shown() == state.shown():
            latest.state = nxt
        else:
            start = t.eff if occurred_axis else t.recorded
            if latest is not None:
                start = max(start, latest.start)
                latest.end = start
            latest = _Version(t.case_id, start, END, t.position, nxt)
            made.append(latest)
        state = nxt
    return made


# ---------------------------------------------------------------------------
# From events to transitions


def _transitions_of(item: Item) -> list[tuple[str, str, Any, Any, Any, Any, Any]]:
    """``(case_id, kind, a, b, c, d, e)`` for each case ``item`` moves."""
    cls = item.cls
    f = item.fields
    cid = item.subject
    if cls is ServiceLinked:
        return [(cid, _LINKED, None, None, None, None, None)]
    if cls is ServiceChecked:
        return [(cid, _CHECKED, str(f["decision"]), None, None, None, None)]
    if cls is CaseOpened:
        return [
            (
                cid,
                _OPENED,
                str(f["household_id"]),
                f["dong"],
                f["district"],
                f["case_organisation"],
                f["worker"],
            )
        ]
    if cls is NeedsAssessed:
        return [(cid, _ASSESSED, None, None, None, None, None)]
    if cls is CaseClassified:
        return [(cid, _CLASSIFIED, str(f["track"]), str(f["level"]), None, None, None)]
    if cls is ServicePlanAgreed:
        return [(cid, _PLANNED, None, None, None, None, None)]
    if cls is CaseClosed:
        return [(cid, _CLOSED, str(f["reason"]), None, None, None, None)]
    if cls is FollowUpConducted:
        return [(cid, _FOLLOW_UP, None, None, None, None, None)]
    if cls is CaseReopened:
        return [(cid, _REOPENED, f["worker"], None, None, None, None)]
    if cls is CaseTransferred:
        return [
            (
                cid,
                _TRANSFERRED,
                f["to_organisation"],
                f["to_worker"],
                f["to_dong"],
                f["to_district"],
                None,
            )
        ]
    if cls is CaseMeetingHeld:
        return [
            (
                str(entry["case_id"]),
                _MEETING,
                str(entry.get("decision") or ""),
                item.subject,
                None,
                None,
                None,
            )
            for entry in f["agenda"]
        ]
    return []


_HANDLED: frozenset[type[Event]] = frozenset(
    {
        CaseOpened,
        NeedsAssessed,
        CaseMeetingHeld,
        CaseClassified,
        ServicePlanAgreed,
        ServiceLinked,
        ServiceChecked,
        CaseClosed,
        FollowUpConducted,
        CaseReopened,
        CaseTransferred,
    }
)


class Caseload(Projection):
    """Case states on both time axes (see the module docstring)."""

    name: ClassVar[str] = "caseload"
    version: ClassVar[int] = 1
    handles: ClassVar[frozenset[type[Event]]] = _HANDLED
    # Registry and household events do not move a case; referrals, reassessment and
    # supervision change nothing a caseload shows or a deadline needs.
    ignores: ClassVar[frozenset[type[Event]]] = frozenset(
        {
            OrganisationRegistered, WorkerRegistered, HouseholdDiscovered, ConsultationRecorded,
            ConsentGranted, ConsentWithdrawn, HouseholdErased, ReferralSent, ReferralAccepted,
            ReferralRejected, ReferralCompleted, ReferralRevoked, NeedsReassessed,
            SupervisionRecorded,
        }
    )  # fmt: skip
    tables: ClassVar[tuple[str, ...]] = (_TRANSITIONS, _RECORDED, _OCCURRED)

    def __init__(self, schema: Schema) -> None:
        super().__init__(schema)
        s = schema
        cols = ", ".join(("case_id", "vfrom", "vto", "position", *_STATE_COLUMNS))
        marks = placeholders(4 + len(_STATE_COLUMNS))
        self._insert_transition = (
            f"INSERT INTO {s.t(_TRANSITIONS)} (case_id, position, occurred_at, recorded_at, "
            "eff_at, kind, a, b, c, d, e) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
        )
        self._insert = {
            t: f"INSERT INTO {s.t(t)} ({cols}) VALUES ({marks})" for t in (_RECORDED, _OCCURRED)
        }
        self._update = {
            t: f"UPDATE {s.t(t)} SET vto = ?, active_links = ? WHERE case_id = ? AND position = ?"
            for t in (_RECORDED, _OCCURRED)
        }
        self._delete_occurred = f"DELETE FROM {s.t(_OCCURRED)} WHERE case_id = ?"
        self._update_eff = (
            f"UPDATE {s.t(_TRANSITIONS)} SET eff_at = ? WHERE case_id = ? AND position = ?"
        )
        self._deferred = False

    def create_statements(self) -> list[str]:
        s = self.schema
        time, text = s.time, s.text
        state = (
            f"household_id {text} NOT NULL, dong TEXT NOT NULL, district TEXT NOT NULL, "
            f"organisation {text} NOT NULL, worker {text} NOT NULL, stage TEXT NOT NULL, "
            f"stage_since {time} NOT NULL, track TEXT, level TEXT, opened_at {time} NOT NULL, "
            f"intake_at {time} NOT NULL, assessed_at {time}, classified_at {time}, "
            f"plan_at {time}, closed_at {time}, closure_reason TEXT, meeting_at {time}, "
            f"follow_up_at {time}, reopened INTEGER NOT NULL, active_links INTEGER NOT NULL"
        )
        statements = [
            f"CREATE TABLE IF NOT EXISTS {s.t(_TRANSITIONS)} ("
            f"case_id {text} NOT NULL, position BIGINT NOT NULL, occurred_at {time} NOT NULL, "
            f"recorded_at {time} NOT NULL, eff_at {time} NOT NULL, kind TEXT NOT NULL, "
            "a TEXT, b TEXT, c TEXT, d TEXT, e TEXT, PRIMARY KEY (case_id, position))",
            # A case's last service check on either axis, read from the index alone.
            f"CREATE INDEX IF NOT EXISTS caseledger_case_transition_checked "
            f"ON {s.t(_TRANSITIONS)} (case_id, kind, occurred_at, recorded_at) "
            f"WHERE kind = '{_CHECKED}'",
            # Replaced by the one above (it did not cover the recorded axis).
            f"DROP INDEX IF EXISTS {s.t('caseledger_case_transition_kind')}",
            f"CREATE INDEX IF NOT EXISTS caseledger_case_transition_eff "
            f"ON {s.t(_TRANSITIONS)} (case_id, eff_at, position)",
        ]
        for table in (_RECORDED, _OCCURRED):
            statements += [
                f"CREATE TABLE IF NOT EXISTS {s.t(table)} ("
                f"case_id {text} NOT NULL, vfrom {time} NOT NULL, vto {time} NOT NULL, "
                f"position BIGINT NOT NULL, {state}, PRIMARY KEY (case_id, position))",
                f"CREATE INDEX IF NOT EXISTS {table}_valid ON {s.t(table)} (vto, vfrom)",
                # A caseload without closed cases: most versions valid until further
                # notice are closures, which this index leaves out.
                f"CREATE INDEX IF NOT EXISTS {table}_open ON {s.t(table)} (vto, vfrom) "
                f"WHERE stage <> '{_CLOSED_STAGE}'",
            ]
        return statements

    def prefetch(self, tx: Tx, items: Sequence[Item]) -> None:
        if self._deferred:
            return
        raw = _raw_transitions(items)
        if not raw:
            return
        s = self.schema
        # Cases whose state moves: as in apply, where the occurred axis is read for them.
        moving = sorted({r[3][0] for r in raw if not _stops_nothing(r[3][1], r[3][2])})
        reads = [
            *_current_reads(s, _RECORDED, sorted({r[3][0] for r in raw})),
            *_max_eff_reads(s, moving),
            *_current_reads(s, _OCCURRED, moving),
        ]
        for sql, params in reads:
            tx.prefetch(sql, params)

    def apply(self, tx: Tx, items: Sequence[Item]) -> None:
        raw = _raw_transitions(items)
        if not raw:
            return
        case_ids = sorted({r[3][0] for r in raw})
        if self._deferred:
            # A rebuild folds both axes once, at the end, from the stored transitions.
            # A case opened in an earlier batch is not looked up: its transitions take
            # effect when they occurred, and end_rebuild corrects the few that occurred
            # before the opening.
            recorded_now: dict[str, _Version] = {}
            opened_at: dict[str, str] = {}
        else:
            recorded_now = _load_current(tx, self.schema, _RECORDED, case_ids)
            opened_at = {cid: v.state.opened_at for cid, v in recorded_now.items()}

        # The recorded axis, in log order; it also gives each case's opening time,
        # from which transitions take effect on the occurred axis.
        by_case: dict[str, list[_T]] = defaultdict(list)
        rows = []
        new_t = _new
        for position, occurred, recorded, (cid, kind, a, b, c, d, e) in raw:
            if kind == _OPENED:
                opened_at[cid] = occurred
            eff = _effective(occurred, opened_at.get(cid))
            t = new_t(_T, (cid, position, occurred, recorded, eff, kind, a, b, c, d, e))
            by_case[cid].append(t)
            rows.append(t)
        if self._deferred:
            # In key order: the transitions' primary key is (case_id, position).
            rows.sort(key=_key_order)
            tx.executemany(self._insert_transition, rows)
            return
        self._write(tx, _RECORDED, recorded_now, by_case, occurred_axis=False)

        # A service check that stops nothing moves no state on either axis (it is kept
        # for the last check): its case's occurred axis stays as it is.
        moving = {cid: ts_ for cid, ts_ in by_case.items() if not all(map(_inert, ts_))}
        stored_eff = _max_eff(tx, self.schema, sorted(moving)) if moving else {}
        tx.executemany(self._insert_transition, rows)

        in_order = {}
        refold = []
        for cid, ts_ in moving.items():
            ts_.sort(key=_eff_order)
            latest = stored_eff.get(cid)
            if latest is None or ts_[0].eff >= latest:
                in_order[cid] = ts_
            else:
                refold.append(cid)
        occurred_now = _load_current(tx, self.schema, _OCCURRED, sorted(in_order))
        self._write(tx, _OCCURRED, occurred_now, in_order, occurred_axis=True)
        for cid in refold:
            tx.execute(self._delete_occurred, (cid,))
            everything = _case_transitions(tx, self.schema, cid)
            made = _advance(None, everything, occurred_axis=True)
            tx.executemany(self._insert[_OCCURRED], [v.row() for v in made])

    def begin_rebuild(self, tx: Tx) -> None:
        # Backdated entries make the occurred axis refold cases again and again while
        # the log is replayed, and the recorded axis would rewrite each case's latest
        # version in every batch; in a rebuild both are folded once, at the end.
        self._deferred = True

    def cancel_rebuild(self) -> None:
        self._deferred = False

    def end_rebuild(self, tx: Tx) -> None:
        self._deferred = False
        after = ""
        table = self.schema.t(_TRANSITIONS)
        while True:
            tx.execute(
                f"SELECT DISTINCT case_id FROM {table} WHERE case_id > ? ORDER BY case_id "
                "LIMIT 500",
                (after,),
            )
            case_ids = [row[0] for row in fetch(tx)]
            if not case_ids:
                return
            after = case_ids[-1]
            # In primary key order (log order within each case): no sort in the database.
            tx.execute(
                f"SELECT {_T_COLUMNS} FROM {table} "
                f"WHERE case_id IN ({placeholders(len(case_ids))}) ORDER BY case_id, position",
                case_ids,
            )
            by_case: dict[str, list[_T]] = defaultdict(list)
            new_t = _new
            for row in fetch(tx):
                by_case[row[0]].append(new_t(_T, row))
            recorded = []
            occurred = []
            for transitions in by_case.values():
                self._settle_eff(tx, transitions)
                recorded += [v.row() for v in _advance(None, transitions, occurred_axis=False)]
                transitions.sort(key=_eff_order)
                occurred += [v.row() for v in _advance(None, transitions, occurred_axis=True)]
            tx.executemany(self._insert[_RECORDED], recorded)
            tx.executemany(self._insert[_OCCURRED], occurred)

    def _settle_eff(self, tx: Tx, transitions: list[_T]) -> None:
        """Give one case's transitions (in log order) their effective times, as apply does.

        A rebuild applies each batch without looking up cases opened in earlier
        batches; a transition that occurred before its case's opening takes effect at
        the opening, so it is corrected here, stored and in ``transitions``.
        """
        opening = None
        for i, t in enumerate(transitions):
            if t.kind == _OPENED:
                opening = t.occurred
            eff = _effective(t.occurred, opening)
            if eff != t.eff:
                transitions[i] = t._replace(eff=eff)
                tx.execute(self._update_eff, (eff, t.case_id, t.position))

    def _write(
        self,
        tx: Tx,
        table: str,
        current: dict[str, _Version],
        by_case: dict[str, list[_T]],
        *,
        occurred_axis: bool,
    ) -> None:
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for cid, transitions in by_case.items():
            before = current.get(cid)
            snapshot = (before.end, before.state.active_links) if before is not None else None
            made = _advance(before, transitions, occurred_axis)
            inserts.extend(v.row() for v in made)
            if before is not None and snapshot != (before.end, before.state.active_links):
                updates.append((before.end, before.state.active_links, cid, before.position))
        tx.executemany(self._update[table], updates)
        tx.executemany(self._insert[table], inserts)


def _raw_transitions(items: Sequence[Item]) -> list[tuple[int, str, str, tuple[Any, ...]]]:
    """(position, occurred, recorded, transition) of every transition in ``items``."""
    raw: list[tuple[int, str, str, tuple[Any, ...]]] = []
    handled = _HANDLED
    for item in items:
        if item.cls not in handled:
            continue
        position = item.position
        occurred = item.occurred
        recorded = item.recorded
        for found in _transitions_of(item):
            raw.append((position, occurred, recorded, found))
    return raw


def _current_reads(
    schema: Schema, table: str, case_ids: Sequence[str]
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    cols = ", ".join(("case_id", "vfrom", "vto", "position", *_STATE_COLUMNS))
    for part in chunks(case_ids):
        # "vto || ''": by primary key; the index on vto would visit every current
        # version of every case to find these few.
        sql = (
            f"SELECT {cols} FROM {schema.t(table)} "
            f"WHERE case_id IN ({placeholders(len(part))}) AND vto || '' = ?"
        )
        yield sql, (*part, END)


def _load_current(
    tx: Tx, schema: Schema, table: str, case_ids: Sequence[str]
) -> dict[str, _Version]:
    found: dict[str, _Version] = {}
    for sql, params in _current_reads(schema, table, case_ids):
        tx.execute(sql, params)
        for row in fetch(tx):
            found[row[0]] = _Version(row[0], row[1], row[2], row[3], _State(*row[4:]))
    return found


def _effective(occurred: str, opening: str | None) -> str:
    """When a transition takes effect: when it occurred, or its case's opening if later."""
    return occurred if opening is None or occurred >= opening else opening


def _stops_nothing(kind: str, a: Any) -> bool:
    """Whether a transition of ``kind`` with first value ``a`` leaves every case state as
    it is (a service check that stops no service; see :func:`_step`)."""
    return kind == _CHECKED and a != "stop"


def _inert(t: _T) -> bool:
    """:func:`_stops_nothing` for a stored transition."""
    return _stops_nothing(t.kind, t.a)


def _eff_order(t: _T) -> tuple[str, int]:
    return t.eff, t.position


def _key_order(t: _T) -> tuple[str, int]:
    return t.case_id, t.position


def _max_eff_reads(
    schema: Schema, case_ids: Sequence[str]
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    for part in chunks(case_ids):
        sql = (
            f"SELECT case_id, MAX(eff_at) FROM {schema.t(_TRANSITIONS)} "
            f"WHERE case_id IN ({placeholders(len(part))}) GROUP BY case_id"
        )
        yield sql, tuple(part)


def _max_eff(tx: Tx, schema: Schema, case_ids: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for sql, params in _max_eff_reads(schema, case_ids):
        tx.execute(sql, params)
        for cid, eff in fetch(tx):
            found[cid] = eff
    return found


_T_COLUMNS = "case_id, position, occurred_at, recorded_at, eff_at, kind, a, b, c, d, e"


def _case_transitions(tx: Tx, schema: Schema, case_id: str) -> list[_T]:
    tx.execute(
        f"SELECT {_T_COLUMNS} FROM {schema.t(_TRANSITIONS)} "
        "WHERE case_id = ? ORDER BY eff_at, position",
        (case_id,),
    )
    return [_T(*row) for row in fetch(tx)]


# ---------------------------------------------------------------------------
# Queries


@dataclass(frozen=True)
class CaseloadEntry:
    """One case as a caseload shows it, at the moment the query asked about.

    ``opened_at`` is the latest intake (a reopened case starts again at intake);
    ``days_in_stage`` and ``next_due`` are counted in calendar days of the reporting
    timezone up to the query's reference day; ``last_checked_at`` is the latest
    service check known at that moment.
    """

    case_id: UUID
    household_id: UUID
    dong: str
    district: str
    organisation: str
    worker: str
    stage: Stage
    track: Track | None
    level: Level | None
    stage_since: datetime
    days_in_stage: int
    opened_at: datetime
    last_checked_at: datetime | None
    next_due: date | None
    next_due_kind: str | None
    closed_at: datetime | None
    closure_reason: ClosureReason | None
    reopened: int

    @property
    def is_open(self) -> bool:
        """Whether the case is not closed."""
        return self.stage is not Stage.CLOSED


@dataclass(frozen=True)
class WorkerCaseload:
    """How many open cases one worker carries, and the bucket that puts them in."""

    worker: str
    organisation: str
    open_cases: int
    bucket: str


@dataclass(frozen=True)
class WorkerCaseloads:
    """Open cases per worker, and how many workers fall in each bucket (0–9 … 30+)."""

    workers: tuple[WorkerCaseload, ...]
    buckets: dict[str, int]


class FoundCase(NamedTuple):
    """A case's state at the moment a query asked about, and its last check by then."""

    case_id: str
    state: _State
    last_check: str | None


def _where(filters: dict[str, str | None]) -> tuple[str, list[Any]]:
    clauses = []
    params: list[Any] = []
    for column, value in filters.items():
        if value is not None:
            clauses.append(f"v.{column} = ?")
            params.append(value)
    return "".join(" AND " + c for c in clauses), params


def open_states_at(
    tx: Tx,
    schema: Schema,
    *,
    as_of: str | None,
    as_of_recorded: str | None,
    filters: dict[str, str | None],
    include_closed: bool,
) -> list[FoundCase]:
    """Case states at a moment: current, ``as_of`` (occurred), ``as_of_recorded``, or both.

    ``as_of`` and ``as_of_recorded`` are cut-offs as stored text (see
    :func:`caseledger.projections.base.cutoff`).
    """
    if as_of is not None and as_of_recorded is not None:
        return _fold_both(tx, schema, as_of, as_of_recorded, filters, include_closed)
    cols = ", ".join("v." + c for c in ("case_id", *_STATE_COLUMNS))
    where, params = _where(filters)
    if not include_closed:
        # Written out, not a parameter, so that the planner can use the *_open index.
        where += f" AND v.stage <> '{_CLOSED_STAGE}'"
    check_cond = ""
    check_params: list[Any] = []
    if as_of is not None:
        table, moment = _OCCURRED, as_of
        valid = "v.vfrom <= ? AND v.vto > ?"
        valid_params: list[Any] = [moment, moment]
        check_cond = " AND t.occurred_at <= ?"
        check_params = [as_of]
    elif as_of_recorded is not None:
        table, moment = _RECORDED, as_of_recorded
        valid = "v.vfrom <= ? AND v.vto > ?"
        valid_params = [moment, moment]
        check_cond = " AND t.recorded_at <= ?"
        check_params = [as_of_recorded]
    else:
        table = _RECORDED
        valid = "v.vto = ?"
        valid_params = [END]
    sql = (
        f"SELECT {cols}, (SELECT MAX(t.occurred_at) FROM {schema.t(_TRANSITIONS)} t "
        f"WHERE t.case_id = v.case_id AND t.kind = '{_CHECKED}'{check_cond}) "
        f"FROM {schema.t(table)} v WHERE {valid}{where}"
    )
    with _planned_for_intervals(tx, schema, as_of is not None or as_of_recorded is not None):
        tx.execute(sql, [*check_params, *valid_params, *params])
        rows = fetch(tx)
    # The rows are the state's columns in order.
    return [_new(FoundCase, (row[0], _new(_State, row[1:-1]), row[-1])) for row in rows]


#: PostgreSQL settings for an as-of query (see :func:`_planned_for_intervals`).
_INTERVAL_SETTINGS = (("enable_seqscan", "off"), ("jit", "off"))


@contextmanager
def _planned_for_intervals(tx: Tx, schema: Schema, as_of: bool) -> Iterator[None]:
    """On PostgreSQL, plan an as-of query with the partial interval indexes, without JIT.

    The planner takes ``vfrom <= t`` and ``vto > t`` as independent, so it expects
    several times the rows an as-of moment has open (32,460 for 4,216 on a
    million-event ledger) and reads the whole version table instead of the index
    (57 ms against 27–37 ms on the server), then compiles the plan with JIT (10–25 ms
    more). The settings hold for this one statement: set with ``set_config(...,
    true)`` inside the transaction and put back as they were after it (an error ends
    the transaction, and the settings with it).
    """
    if schema.dialect != "postgres" or not as_of:
        yield
        return
    names = [name for name, _ in _INTERVAL_SETTINGS]
    # Named columns: rows from eventsourcing's connections are dicts by column name.
    columns = ", ".join(f"current_setting(?) AS s{i}" for i in range(len(names)))
    tx.execute("SELECT " + columns, names)
    before = fetch_one(tx)
    _set_locally(tx, _INTERVAL_SETTINGS)
    yield
    # Not on an error: the transaction ends then, and the settings with it.
    if before is not None:
        _set_locally(tx, tuple(zip(names, before, strict=True)))


def _set_locally(tx: Tx, settings: Sequence[tuple[str, Any]]) -> None:
    calls = ", ".join("set_config(?, ?, true)" for _ in settings)
    tx.execute("SELECT " + calls, [v for pair in settings for v in pair])
    fetch_one(tx)


def _fold_both(
    tx: Tx,
    schema: Schema,
    as_of: str,
    as_of_recorded: str,
    filters: dict[str, str | None],
    include_closed: bool,
) -> list[FoundCase]:
    # What the ledger knew at as_of_recorded about the world at as_of: fold each case's
    # transitions recorded by then, in occurred order, up to as_of.
    tx.execute(
        f"SELECT {_T_COLUMNS} FROM {schema.t(_TRANSITIONS)} "
        "WHERE recorded_at <= ? AND eff_at <= ? ORDER BY case_id, eff_at, position",
        (as_of_recorded, as_of),
    )
    found = []
    state: _State | None = None
    last_check: str | None = None
    cid = None
    rows = [_T(*row) for row in fetch(tx)]
    rows.append(_T("", 0, "", "", "", "", None, None, None, None, None))  # flushes the last
    for t in rows:
        if t.case_id != cid:
            if cid is not None and state is not None:
                found.append(FoundCase(cid, state, last_check))
            cid, state, last_check = t.case_id, None, None
        state = _step(state, t, t.eff) or state
        if (
            t.kind == _CHECKED
            and t.occurred <= as_of
            and (last_check is None or t.occurred > last_check)
        ):
            last_check = t.occurred
    keep = []
    for f in found:
        s = f.state
        if not include_closed and s.stage == _CLOSED_STAGE:
            continue
        if any(
            v is not None and (f.case_id if k == "case_id" else getattr(s, k)) != v
            for k, v in filters.items()
        ):
            continue
        keep.append(f)
    return keep


def dues_of(f: FoundCase, tz: tzinfo, deadlines: Deadlines) -> list[tuple[str, date]]:
    """What is due on a found case state (see :func:`caseledger.projections.due.due_dates`)."""
    return _Dues(tz, deadlines)(f)


class _Dues:
    """What is due on found case states, asked one state after another.

    One per query: :func:`due_on` asks for the local days of only the stored times a
    case's stage needs, read from the state being asked about.
    """

    __slots__ = ("_last_check", "_state", "deadlines", "tz")

    def __init__(self, tz: tzinfo, deadlines: Deadlines) -> None:
        self.tz = tz
        self.deadlines = deadlines
        self._state: tuple[Any, ...] = ()
        self._last_check: str | None = None

    def __call__(self, f: FoundCase) -> list[tuple[str, date]]:
        self._state, self._last_check = f.state, f.last_check
        return due_on(_STAGES[f.state.stage], f.state.track, self._day, self.deadlines)

    def _day(self, name: str) -> date | None:
        text = self._last_check if name == "last_check" else self._state[_DUE_FIELDS[name]]
        return None if text is None else local_date(text, self.tz)


#: Where :func:`due_on`'s names for the stored times sit in a state.
_DUE_FIELDS = {
    name: _STATE_COLUMNS.index(column)
    for name, column in (
        ("intake", "intake_at"),
        ("stage_since", "stage_since"),
        ("assessed", "assessed_at"),
        ("meeting", "meeting_at"),
        ("plan", "plan_at"),
        ("closed", "closed_at"),
        ("follow_up", "follow_up_at"),
    )
}
_STAGES = {stage.value: stage for stage in Stage}
_TRACKS = {track.value: track for track in Track}
_LEVELS = {level.value: level for level in Level}
_REASONS = {reason.value: reason for reason in ClosureReason}


def _entries(
    found: Sequence[FoundCase], reference: date, tz: tzinfo, deadlines: Deadlines
) -> list[CaseloadEntry]:
    """Caseload entries for found states, in caseload order (district, dong, worker, intake).

    Stored times are fixed-width UTC text, so ordering by the text orders by time. A
    caseload builds thousands of entries, so this loop unpacks each state once and
    fills each entry's fields directly (see :func:`_trusted_entry`).
    """
    ordered = sorted(found, key=_caseload_order)
    # from_ts, bound directly: stored times are ISO text, read in C (most of a
    # caseload's times are distinct, so a cache of read ones would cost more than it saves).
    moment = datetime.fromisoformat
    stages, tracks, levels, reasons = _STAGES, _TRACKS, _LEVELS, _REASONS
    dues = _Dues(tz, deadlines)
    uuid_of, new_entry = trusted_uuid, _trusted_entry
    entries: list[CaseloadEntry] = []
    append = entries.append
    for f in ordered:
        case_id, state, last_check = f
        (household_id, dong, district, organisation, worker, stage, stage_since, track,
         level, _opened, intake_at, _assessed, _classified, _plan, closed_at,
         closure_reason, _meeting, _follow_up, reopened, _links) = state  # fmt: skip
        due = dues(f)
        first = due[0] if len(due) == 1 else min(due, key=_due_order, default=None)
        since = moment(stage_since)
        append(
            new_entry(
                {
                    # Stored ids are canonical by construction; UUID(text) re-checks them.
                    "case_id": uuid_of(int(case_id.replace("-", ""), 16)),
                    "household_id": uuid_of(int(household_id.replace("-", ""), 16)),
                    "dong": dong,
                    "district": district,
                    "organisation": organisation,
                    "worker": worker,
                    "stage": stages[stage],
                    "track": tracks[track] if track else None,
                    "level": levels[level] if level else None,
                    "stage_since": since,
                    "days_in_stage": max(0, (reference - since.astimezone(tz).date()).days),
                    "opened_at": moment(intake_at),
                    "last_checked_at": moment(last_check) if last_check else None,
                    "next_due": first[1] if first else None,
                    "next_due_kind": first[0] if first else None,
                    "closed_at": moment(closed_at) if closed_at else None,
                    "closure_reason": reasons[closure_reason] if closure_reason else None,
                    "reopened": reopened,
                }
            )
        )
    return entries


def _trusted_entry(values: dict[str, Any]) -> CaseloadEntry:
    """A :class:`CaseloadEntry` of ``values`` (every field by name), set without the
    frozen dataclass's one ``object.__setattr__`` per field (a caseload builds thousands)."""
    entry = object.__new__(CaseloadEntry)
    entry.__dict__.update(values)
    return entry


def _caseload_order(f: FoundCase) -> tuple[str, ...]:
    s = f.state
    return s.district, s.dong, s.worker, s.intake_at, f.case_id


def _due_order(due: tuple[str, date]) -> tuple[date, str]:
    return due[1], due[0]


def _check_stage(stage: Stage | str | None) -> str | None:
    if stage is None:
        return None
    try:
        return Stage(stage).value
    except ValueError:
        choices = ", ".join(s.value for s in Stage)
        msg = f"stage: {stage!r} is not a stage; use one of {choices}"
        raise InvalidInput(msg, [("stage", "unknown stage")]) from None


def caseload_query(
    tx: Tx,
    schema: Schema,
    *,
    as_of: str | None,
    as_of_recorded: str | None,
    reference: date,
    tz: tzinfo,
    deadlines: Deadlines,
    dong: str | None = None,
    district: str | None = None,
    organisation: str | None = None,
    worker: str | None = None,
    stage: Stage | str | None = None,
    case_id: UUID | None = None,
    include_closed: bool = False,
) -> list[CaseloadEntry]:
    """The caseload rows matching the filters, ordered by district, dong, worker, intake."""
    filters = {
        "dong": dong,
        "district": district,
        "organisation": organisation,
        "worker": worker,
        "stage": _check_stage(stage),
        "case_id": str(case_id) if case_id is not None else None,
    }
    found = open_states_at(
        tx,
        schema,
        as_of=as_of,
        as_of_recorded=as_of_recorded,
        filters=filters,
        include_closed=include_closed or stage == Stage.CLOSED or case_id is not None,
    )
    return _entries(found, reference, tz, deadlines)


def case_state_query(
    tx: Tx,
    schema: Schema,
    case_id: UUID,
    **kwargs: Any,
) -> CaseloadEntry:
    """One case's state; :class:`CaseNotFound` if it did not exist at that moment."""
    found = caseload_query(tx, schema, case_id=case_id, include_closed=True, **kwargs)
    if not found:
        msg = f"case {case_id} does not exist in this ledger at that moment"
        raise CaseNotFound(msg)
    return found[0]


def worker_caseloads_query(
    tx: Tx,
    schema: Schema,
    *,
    as_of: str | None,
    as_of_recorded: str | None,
    dong: str | None = None,
    district: str | None = None,
    organisation: str | None = None,
) -> WorkerCaseloads:
    """Open cases per assigned worker, with registered case workers carrying none."""
    filters = {"dong": dong, "district": district, "organisation": organisation}
    found = open_states_at(
        tx,
        schema,
        as_of=as_of,
        as_of_recorded=as_of_recorded,
        filters=filters,
        include_closed=False,
    )
    counts: dict[str, int] = defaultdict(int)
    orgs: dict[str, str] = {}
    for f in found:
        counts[f.state.worker] += 1
        orgs[f.state.worker] = f.state.organisation
    # Workers who could carry cases but carry none belong in the 0-9 bucket too.
    where = ["w.role IN (?, ?)"]
    params: list[Any] = ["dong_officer", "case_manager"]
    for column, value in (("dong", dong), ("district", district)):
        if value is not None:
            where.append(f"o.{column} = ?")
            params.append(value)
    if organisation is not None:
        where.append("w.organisation = ?")
        params.append(organisation)
    moment = as_of_recorded if as_of is None else as_of
    if moment is not None:
        where.append("w.registered_at <= ?")
        params.append(moment)
    tx.execute(
        f"SELECT w.code, w.organisation FROM {schema.t('caseledger_worker')} w "
        f"JOIN {schema.t('caseledger_organisation')} o ON o.code = w.organisation "
        f"WHERE {' AND '.join(where)}",
        params,
    )
    for code, org in fetch(tx):
        counts.setdefault(code, 0)
        orgs.setdefault(code, org)
    workers = tuple(
        WorkerCaseload(w, orgs[w], n, bucket_of(n))
        for w, n in sorted(counts.items(), key=lambda kv: (orgs[kv[0]], kv[0]))
    )
    buckets = dict.fromkeys(BUCKETS, 0)
    for w in workers:
        buckets[w.bucket] += 1
    return WorkerCaseloads(workers, buckets)


def due_query(
    tx: Tx,
    schema: Schema,
    *,
    reference: date,
    tz: tzinfo,
    deadlines: Deadlines,
    overdue_only: bool = False,
    dong: str | None = None,
    district: str | None = None,
    organisation: str | None = None,
    worker: str | None = None,
) -> list[DueItem]:
    """Everything due on current cases (closed ones for follow-up), earliest first."""
    filters = {"dong": dong, "district": district, "organisation": organisation, "worker": worker}
    found = open_states_at(
        tx, schema, as_of=None, as_of_recorded=None, filters=filters, include_closed=True
    )
    items = []
    dues = _Dues(tz, deadlines)
    for f in found:
        s = f.state
        for kind, due_day in dues(f):
            late = (reference - due_day).days
            if overdue_only and late <= 0:
                continue
            items.append(
                DueItem(
                    case_id=UUID(f.case_id),
                    kind=kind,
                    due_on=due_day,
                    overdue=late > 0,
                    days_overdue=max(0, late),
                    stage=Stage(s.stage),
                    worker=s.worker,
                    organisation=s.organisation,
                    dong=s.dong,
                    district=s.district,
                )
            )
    items.sort(key=lambda i: (i.due_on, i.kind, str(i.case_id)))
    return items
