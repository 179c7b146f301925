"""Open311 answers, pure: services, cases (service requests), their updates and the discovery document as
GeoReport v2 objects (dicts in the spec's field order), written as JSON or XML.

What a request never carries: the citizen's name, phone or consent, who took the call, the linked calls (caller
numbers) or recordings. Times are W3C date-times in the hotline's time zone, with the offset.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.responses import Response

from callcenter.model.cases import OPEN, CaseStatus
from callcenter.model.hotline import HotlineModel
from callcenter.model.ivr import Topic
from callcenter.store.models import Case, CaseUpdate

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-30T00:00:00+07:00"  # when this API last changed (discovery's changeset)
MEDIA = {"json": "application/json", "xml": "text/xml; charset=utf-8"}
# FixMyStreet's update statuses (it reads them case-insensitively): where a case stands, in its words. Our exact
# status goes along as external_status_code.
UPDATE_STATUS = {CaseStatus.NEW: "OPEN", CaseStatus.FORWARDED: "OPEN", CaseStatus.RETURNED: "OPEN",
                 CaseStatus.REOPENED: "OPEN", CaseStatus.IN_PROGRESS: "IN_PROGRESS", CaseStatus.RESOLVED: "FIXED",
                 CaseStatus.CLOSED: "CLOSED"}
# XML: the element of each item of a list field
SINGULAR = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute"}
# characters XML 1.0 cannot carry (a description may hold them): shown as U+FFFD
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class View:
    """How answers are written: the model (topic labels, departments), the language and the time zone."""

    model: HotlineModel
    language: str
    zone: ZoneInfo

    def topic(self, code: str) -> Topic | None:
        try:
            return self.model.topic(code)
        except KeyError:
            return None

    def department(self, key: str) -> str:
        found = self.model.departments.get(key)
        return found.name if found is not None else key

    def when(self, moment: datetime | None) -> str | None:
        return moment.astimezone(self.zone).isoformat(timespec="seconds") if moment is not None else None


def notice(view: View, topic: Topic) -> str:
    """What to expect once a case on ``topic`` is forwarded."""
    return (f"Forwarded to {view.department(topic.department)}, which answers within {topic.target_hours} hours "
            "of forwarding.")


def service(view: View, topic: Topic) -> dict[str, Any]:
    """A hotline topic as a GeoReport service."""
    return {"service_code": topic.code, "service_name": topic.label.get(view.language),
            "description": f"Cases on {topic.label.en.lower()}. {notice(view, topic)}", "metadata": False,
            "type": "realtime", "keywords": f"{topic.label.vi}, {topic.label.en}",
            "group": view.department(topic.department)}


def definition(topic: Topic) -> dict[str, Any]:
    """A service definition: our topics ask no questions beyond the description."""
    return {"service_code": topic.code, "attributes": []}


def request(view: View, case: Case, last: CaseUpdate | None) -> dict[str, Any]:
    """A case as a GeoReport service request (status open/closed; our exact status as external_status_code)."""
    topic = view.topic(case.topic)
    updated = max(case.created_at, last.at) if last is not None else case.created_at
    return {"service_request_id": case.number,
            "status": "open" if CaseStatus(case.status) in OPEN else "closed",
            "status_notes": last.text if last is not None else "",
            "service_name": topic.label.get(view.language) if topic else case.topic, "service_code": case.topic,
            "description": case.description, "agency_responsible": view.department(case.department),
            "service_notice": notice(view, topic) if topic else "",
            "requested_datetime": view.when(case.created_at), "updated_datetime": view.when(updated),
            "expected_datetime": view.when(case.due_at), "address": case.location, "address_id": "",
            "zipcode": "", "lat": case.latitude, "long": case.longitude, "media_url": "",
            "external_status_code": case.status}


def update(view: View, row: CaseUpdate, number: str, status_then: str) -> dict[str, Any]:
    """A published case update in FixMyStreet's service request update shape; ``status_then`` is the case's
    status once the update was made."""
    return {"update_id": str(row.id), "service_request_id": number,
            "status": UPDATE_STATUS[CaseStatus(status_then)], "updated_datetime": view.when(row.at),
            "description": row.text, "media_url": "", "external_status_code": status_then}


def discovery(base_url: str, contact: str) -> dict[str, Any]:
    """The discovery document: one production endpoint, JSON and XML."""
    return {"changeset": CHANGESET, "contact": contact,
            "key_service": "api_key is an API token of a hotline or department user, made on /account",
            "max_requests": 1000,
            "endpoints": [{"specification": SPECIFICATION, "url": base_url, "changeset": CHANGESET,
                           "type": "production", "formats": ["application/json", "text/xml"]}]}


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return NOT_XML.sub("\ufffd", str(value))


def _fill(parent: ET.Element, fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        child = ET.SubElement(parent, key)
        if isinstance(value, dict):
            _fill(child, value)
        elif isinstance(value, list):
            for entry in value:
                item = ET.SubElement(child, SINGULAR[key])
                if isinstance(entry, dict):
                    _fill(item, entry)
                else:
                    item.text = _scalar(entry)
        elif value is not None:
            child.text = _scalar(value)


def to_xml(root: str, item: str | None, data: dict[str, Any] | Sequence[dict[str, Any]]) -> bytes:
    """``data`` under ``root``: one object's fields, or (with ``item``) one ``item`` element per object."""
    top = ET.Element(root)
    if isinstance(data, dict):
        _fill(top, data)
    else:
        for entry in data:
            _fill(ET.SubElement(top, item or "item"), entry)
    written: bytes = ET.tostring(top, encoding="utf-8", xml_declaration=True)
    return written


def answer(fmt: str, root: str, item: str | None, data: dict[str, Any] | Sequence[dict[str, Any]],
           status: int = 200) -> Response:
    """The response in the asked format (JSON: the object or the list as it is)."""
    body = (json.dumps(data, ensure_ascii=False).encode("utf-8") if fmt == "json"
            else to_xml(root, item, data))
    return Response(body, status_code=status, media_type=MEDIA[fmt])


def error(fmt: str, code: int, description: str) -> Response:
    """The spec's error shape: a list of {code, description} (XML: errors/error)."""
    return answer(fmt, "errors", "error", [{"code": code, "description": description}], status=code)
