"""/open311/v2: the Open311 GeoReport v2 API over the hotline's topics (services) and cases (service requests),
with FixMyStreet's service request updates, in JSON and XML (the extension chooses).

Access: discovery and services are public. Requests and updates need ``api_key`` (a query or form parameter, or
``Authorization: Bearer``): an API token of a project user. A department's token sees its own department's cases
only; posting a request needs a hotline role (operator, supervisor, admin). The session cookie is never read here,
so a signed-in browser gets nothing without a key. Every refusal is in the spec's error shape: 400 for a bad
parameter, 403 for a missing or invalid key or a role that may not, 404 for an unknown resource or format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from callcenter.cases.open311 import formats, params
from callcenter.cases.open311.params import Open311Error
from callcenter.model.contract import Role
from callcenter.store import case_feed as feed
from callcenter.store import cases as store
from callcenter.web.auth import EVERYONE, Principal, bearer, for_token

router = APIRouter(prefix="/open311/v2", include_in_schema=False)
HOTLINE = (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)


def _values(items: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """Parameters by name; one given several times is read as its values comma-separated (as the spec allows for
    lists). Uploaded files are not read."""
    found: dict[str, list[str]] = {}
    for key, value in items:
        if isinstance(value, str):
            found.setdefault(key, []).append(value)
    return {key: ",".join(values) for key, values in found.items()}


def _view(request: Request, values: dict[str, str]) -> formats.View:
    settings = request.app.state.settings.api
    return formats.View(request.app.state.model(), params.locale(values, settings.default_language),
                        ZoneInfo(settings.default_timezone))


def _caller(request: Request, values: dict[str, str], roles: tuple[Role, ...] = EVERYONE) -> Principal:
    """The user whose API token came as api_key (or Bearer); 403 without one, for a bad one, or another role."""
    token = values.get("api_key", "").strip() or bearer(request)
    if not token:
        raise Open311Error(403, "api_key required: an API token of a hotline or department user")
    who = for_token(request, token) if len(token) <= 200 and "\x00" not in token else None
    if who is None:
        raise Open311Error(403, "api_key is not valid (unknown, revoked, or its user is disabled)")
    if who.role not in roles:
        raise Open311Error(403, f"a {who.role.value} user may not do this")
    return who


def _scope(who: Principal) -> str:
    """The department a user's view is limited to ('' for the hotline)."""
    if who.role is not Role.DEPARTMENT:
        return ""
    if not who.department:
        raise Open311Error(403, "this department user belongs to no department: ask an administrator")
    return who.department


def _answer(ext: str, build: Callable[[str], Response]) -> Response:
    """Run ``build`` in the asked format; an Open311Error becomes the spec's error in that format."""
    try:
        fmt = params.output_format(ext)
    except Open311Error as exc:
        return formats.error("json", exc.code, exc.description)
    try:
        return build(fmt)
    except Open311Error as exc:
        return formats.error(fmt, exc.code, exc.description)


@router.get("/discovery.{ext}")
def discovery(request: Request, ext: str) -> Response:
    """Where the API is, what it speaks, whom to ask for a key."""
    def build(fmt: str) -> Response:
        number, line = next(iter(request.app.state.model().lines.items()))
        data = formats.discovery(str(request.base_url) + "open311/v2", f"{line.name}, hotline {number}")
        return formats.answer(fmt, "discovery", None, data)
    return _answer(ext, build)


@router.get("/services.{ext}")
def services(request: Request, ext: str) -> Response:
    """Every topic as a service, named in ``locale`` (vi or en; the server's language by default)."""
    def build(fmt: str) -> Response:
        view = _view(request, _values(request.query_params.multi_items()))
        return formats.answer(fmt, "services", "service", [formats.service(view, t) for t in view.model.topics])
    return _answer(ext, build)


@router.get("/services/{code}.{ext}")
def service_definition(request: Request, code: str, ext: str) -> Response:
    """A service's definition (no attributes: the description says it all)."""
    def build(fmt: str) -> Response:
        topic = _view(request, {}).topic(code)
        if topic is None:
            raise Open311Error(404, f"no service {code[:64]!r}")
        return formats.answer(fmt, "service_definition", None, formats.definition(topic))
    return _answer(ext, build)


@router.get("/requests.{ext}")
def list_requests(request: Request, ext: str) -> Response:
    """Cases by service_request_id, or opened in [start_date, end_date) (the last 90 days by default, at most
    90) by service_code and status; newest first, ``page_size`` (at most 1000, the default) per ``page``."""
    def build(fmt: str) -> Response:
        values = _values(request.query_params.multi_items())
        who, view = _caller(request, values), _view(request, values)
        start, end = params.window(values, datetime.now(UTC))
        where = feed.RequestFilter(start, end, params.request_ids(values),
                                   params.service_codes(values, view.model.topic_codes), params.statuses(values),
                                   _scope(who))
        page, size = params.paging(values)
        with request.app.state.db.session() as session:
            cases = list(session.scalars(feed.requests(where).offset((page - 1) * size).limit(size)))
            last = feed.last_published(session, [case.id for case in cases])
            items = [formats.request(view, case, last.get(case.id)) for case in cases]
        return formats.answer(fmt, "service_requests", "request", items)
    return _answer(ext, build)


@router.get("/requests/{number}.{ext}")
def one_request(request: Request, number: str, ext: str) -> Response:
    """One case, as a one-element list; 404 for a number that names no case (or not the department's)."""
    def build(fmt: str) -> Response:
        values = _values(request.query_params.multi_items())
        who, view = _caller(request, values), _view(request, values)
        with request.app.state.db.session() as session:
            case = store.by_number(session, number)
            if case is None or _scope(who) not in ("", case.department):
                raise Open311Error(404, f"no service request {number[:20]!r}")
            item = formats.request(view, case, feed.last_published(session, [case.id]).get(case.id))
        return formats.answer(fmt, "service_requests", "request", [item])
    return _answer(ext, build)


@router.get("/servicerequestupdates.{ext}")
def request_updates(request: Request, ext: str) -> Response:
    """Status moves and progress notes made in [start_date, end_date) (FixMyStreet's extension), oldest first."""
    def build(fmt: str) -> Response:
        values = _values(request.query_params.multi_items())
        who, view = _caller(request, values), _view(request, values)
        start, end = params.window(values, datetime.now(UTC))
        page, size = params.paging(values)
        with request.app.state.db.session() as session:
            rows = session.execute(feed.published_updates(start, end, _scope(who))
                                   .offset((page - 1) * size).limit(size)).all()
            items = [formats.update(view, row, number, then or "new") for row, number, then in rows]
        return formats.answer(fmt, "service_requests_updates", "request_update", items)
    return _answer(ext, build)


def _create(request: Request, values: dict[str, str], fmt: str) -> Response:
    who, view = _caller(request, values, HOTLINE), _view(request, values)
    new = params.new_request(values, view.model.topic_codes)
    case = store.NewCase(topic=new.service_code, description=new.description, location=new.address,
                         latitude=new.latitude, longitude=new.longitude, contact_name=new.contact_name,
                         contact_phone=new.contact_phone, forward=True)
    try:
        with request.app.state.db.session() as session:
            number = store.open_case(session, view.model, case, store.Actor(who.name, who.role, who.department)).number
    except store.CaseError as exc:
        raise params.bad(str(exc)) from None
    topic = view.topic(new.service_code)
    notice = formats.notice(view, topic) if topic else ""
    return formats.answer(fmt, "service_requests", "request",
                          [{"service_request_id": number, "service_notice": notice, "account_id": None}])


@router.post("/requests.{ext}")
async def post_request(request: Request, ext: str) -> Response:
    """Open a case from a form post (forwarded at once to the topic's department); the answer names its number.
    The citizen's name and phone are kept for the hotline (not shown to the department: no consent was asked);
    email is checked but not kept; a media_url is added to the description."""
    try:
        form = await request.form()
    except HTTPException as exc:  # a malformed multipart body
        return formats.error("json", 400, f"the form cannot be read: {exc.detail}")
    values = {**_values(request.query_params.multi_items()), **_values(form.multi_items())}
    return await run_in_threadpool(_answer, ext, lambda fmt: _create(request, values, fmt))
