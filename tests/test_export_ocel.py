"""The OCEL 2.0 export: valid against the format, and true to the ledger.

Validation is against a JSON Schema written from the OCEL 2.0 JSON format description
(https://www.ocel-standard.org/specification/formats/json/), plus the rules the schema
cannot say (declared types and attributes, typed values, relationships to objects that
exist). When pm4py is installed (it is not in the test extra: with scipy and matplotlib
it is about 500 MB), the export is also loaded with it and its counts compared.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from caseledger import Ledger
from caseledger.events import (
    CaseMeetingHeld,
    CaseOpened,
    Event,
    HouseholdDiscovered,
    OrganisationRegistered,
    ReferralSent,
    ServiceLinked,
    WorkerRegistered,
)
from tests.conftest import KST
from tests.test_export import FREE_TEXT, PERSONAL, UUID_TEXT, WORKERS, recorded_ledger

_TYPES = {"string", "time", "integer", "float", "boolean"}
_VALUE = {"type": ["string", "number", "boolean"]}
_RELATIONSHIPS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["objectId", "qualifier"],
        "properties": {"objectId": {"type": "string"}, "qualifier": {"type": "string"}},
    },
}
_TYPE = {
    "type": "object",
    "required": ["name", "attributes"],
    "properties": {
        "name": {"type": "string"},
        "attributes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "type"],
                "properties": {"name": {"type": "string"}, "type": {"enum": sorted(_TYPES)}},
            },
        },
    },
}
#: The OCEL 2.0 JSON format, as its specification describes it.
OCEL20_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["objectTypes", "eventTypes", "objects", "events"],
    "properties": {
        "objectTypes": {"type": "array", "items": _TYPE},
        "eventTypes": {"type": "array", "items": _TYPE},
        "objects": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "type"],
                "properties": {
                    "id": {"type": "string"},
                    "type": {"type": "string"},
                    "attributes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "value", "time"],
                            "properties": {
                                "name": {"type": "string"},
                                "value": _VALUE,
                                "time": {"type": "string", "format": "date-time"},
                            },
                        },
                    },
                    "relationships": _RELATIONSHIPS,
                },
            },
        },
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "type", "time"],
                "properties": {
                    "id": {"type": "string"},
                    "type": {"type": "string"},
                    "time": {"type": "string", "format": "date-time"},
                    "attributes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "value"],
                            "properties": {"name": {"type": "string"}, "value": _VALUE},
                        },
                    },
                    "relationships": _RELATIONSHIPS,
                },
            },
        },
    },
}

#: Which event creates each object type.
CREATED_BY: dict[str, type[Event]] = {
    "household": HouseholdDiscovered,
    "case": CaseOpened,
    "meeting": CaseMeetingHeld,
    "organisation": OrganisationRegistered,
    "worker": WorkerRegistered,
    "service_link": ServiceLinked,
    "referral": ReferralSent,
}


@pytest.fixture(scope="module", params=["memory", "sqlite", "postgres"])
def recorded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ledger]:
    with recorded_ledger(request.param, tmp_path_factory.mktemp("ocel")) as ledger:
        yield ledger


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert moment.tzinfo is not None, f"{text} has no timezone"
    return moment


def _typed(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, str) and _time(value) is not None


def check_ocel(log: dict[str, Any]) -> None:
    """Raise AssertionError (or a schema error) unless ``log`` is a valid OCEL 2.0 log."""
    jsonschema.validate(log, OCEL20_SCHEMA, format_checker=jsonschema.FormatChecker())
    types = {}
    for group in ("objectTypes", "eventTypes"):
        names = [t["name"] for t in log[group]]
        assert len(set(names)) == len(names), f"{group} repeats a type"
        for t in log[group]:
            types[(group, t["name"])] = {a["name"]: a["type"] for a in t["attributes"]}
    object_ids = [o["id"] for o in log["objects"]]
    assert len(set(object_ids)) == len(object_ids), "an object id is used twice"
    known = set(object_ids)
    event_ids = [e["id"] for e in log["events"]]
    assert len(set(event_ids)) == len(event_ids), "an event id is used twice"
    for group, items in (("objectTypes", log["objects"]), ("eventTypes", log["events"])):
        for item in items:
            declared = types[(group, item["type"])]
            for attribute in item.get("attributes", ()):
                kind = declared[attribute["name"]]
                assert _typed(attribute["value"], kind), (item["type"], attribute, kind)
                if "time" in attribute:
                    _time(attribute["time"])
            for relationship in item.get("relationships", ()):
                assert relationship["objectId"] in known, (item["id"], relationship)
            if "time" in item:
                _time(item["time"])


def test_ocel_export_is_valid_and_counts_what_the_ledger_holds(
    recorded: Ledger, tmp_path: Path
) -> None:
    path = tmp_path / "log.jsonocel"
    summary = recorded.export(path, format="ocel", account="jungang-lead", reason="공정 분석")
    log = json.loads(path.read_text(encoding="utf-8"))
    check_ocel(log)
    events = [entry.event for entry in recorded.events()]
    assert len(log["events"]) == summary.rows == len(events)
    created = Counter(type(e) for e in events)
    objects = Counter(o["type"] for o in log["objects"])
    for object_type, cls in CREATED_BY.items():
        assert objects[object_type] == created[cls], object_type
    assert summary.objects == dict(objects)
    assert summary.access_records == created[HouseholdDiscovered]
    first = events[0]
    assert log["events"][0]["id"] == f"{first.originator_id}:{first.originator_version}"
    assert log["events"][0]["type"] == "OrganisationRegistered"
    # A case's attributes change over time; its events name it with qualifiers.
    case_id = str(next(e.originator_id for e in events if isinstance(e, CaseOpened)))
    case = next(o for o in log["objects"] if o["id"] == case_id)
    stages = [a["value"] for a in case["attributes"] if a["name"] == "stage"]
    assert stages[:4] == ["opened", "assessed", "selected", "planned"]
    assert stages[-2:] == ["closed", "opened"]  # closed at the meeting, then reopened
    closing = next(e for e in log["events"] if e["type"] == "CaseClosed")
    qualifiers = {r["qualifier"] for r in closing["relationships"]}
    assert qualifiers >= {"case", "household", "decided at", "actor", "acting organisation"}


def test_deidentified_ocel_has_no_ids_workers_or_free_text(
    recorded: Ledger, tmp_path: Path
) -> None:
    path = tmp_path / "log.ocel.json"
    summary = recorded.export(path, format="ocel", deidentify=True, coarsen_dates=True)
    text = path.read_text(encoding="utf-8")
    log = json.loads(text)
    check_ocel(log)
    assert not UUID_TEXT.search(text)
    for value in (*WORKERS, *FREE_TEXT, *PERSONAL):
        assert value not in text
    assert "worker" not in {t["name"] for t in log["objectTypes"]}
    assert summary.objects is not None
    assert summary.objects["worker"] == 0
    assert summary.access_records == 0
    assert all(re.fullmatch(r"\d{4}-\d{2}-01T00:00:00\+09:00", e["time"]) for e in log["events"])


def test_a_period_keeps_the_objects_its_events_need(recorded: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "2022.jsonocel"
    recorded.export(path, format="ocel", period="2022", deidentify=True)
    log = json.loads(path.read_text(encoding="utf-8"))
    check_ocel(log)
    in_2022 = [e for e in recorded.events() if e.event.occurred_at.astimezone(KST).year == 2022]
    assert len(log["events"]) == len(in_2022)
    households = [o for o in log["objects"] if o["type"] == "household"]
    assert len(households) == 1  # the second household was discovered in 2023


def test_pm4py_reads_the_export_with_the_ledger_counts(recorded: Ledger, tmp_path: Path) -> None:
    pm4py = pytest.importorskip("pm4py", reason="pm4py is optional (about 500 MB installed)")
    path = tmp_path / "log.jsonocel"
    summary = recorded.export(path, format="ocel", account="jungang-lead", reason="공정 분석")
    ocel = pm4py.read_ocel2_json(str(path))
    assert len(ocel.events) == len(recorded)
    assert summary.objects is not None
    assert len(ocel.objects) == sum(summary.objects.values())
    by_type = ocel.objects["ocel:type"].value_counts().to_dict()
    assert by_type == {k: v for k, v in summary.objects.items() if v}
