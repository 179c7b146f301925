"""Server-rendered pages: one Jinja2 environment, and :func:`render`, which gives every template the signed-in
user, their translations and formats, the CSRF token and the navigation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from callcenter.model.contract import Role
from callcenter.web.auth import STAFF, Principal, principal
from callcenter.web.i18n import LANGUAGES, Formats, translations

if TYPE_CHECKING:
    from callcenter.live.feed import LiveFeed

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                  extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
LANGUAGE_COOKIE = "lang"  # a visitor's choice before signing in


@dataclass(frozen=True)
class NavItem:
    """A link in the header."""

    path: str
    label: str  # an English message id, translated when rendered
    roles: tuple[Role, ...]


NAV = (NavItem("/desk", "Desk", (Role.OPERATOR,)),
       NavItem("/worklist", "Call-backs", (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)),
       NavItem("/cases", "Cases", tuple(Role)), NavItem("/calls", "History", tuple(Role)),
       NavItem("/live", "Live", STAFF),
       NavItem("/stats", "Statistics", STAFF), NavItem("/audit", "Audit", STAFF),
       NavItem("/users", "Users", (Role.ADMIN,)))


def language_of(request: Request, who: Principal | None) -> str:
    """The user's language; a visitor's cookie; the settings' default."""
    if who is not None:
        return who.language
    chosen = request.cookies.get(LANGUAGE_COOKIE, "")
    return chosen if chosen in LANGUAGES else str(request.app.state.settings.api.default_language)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page for whoever asks."""
    who = principal(request)
    language = language_of(request, who)
    words = translations(language)
    zone = who.timezone if who else request.app.state.settings.api.default_timezone
    csrf = request.scope.get("csrftoken")
    values = {"request": request, "me": who, "lang": language, "fmt": Formats(language, zone),
              "_": words.gettext, "gettext": words.gettext, "ngettext": words.ngettext,
              "csrf": csrf() if callable(csrf) else "", "nav": [i for i in NAV if who and who.role in i.roles],
              "path": request.url.path, "query": query_without, **context}
    return HTMLResponse(ENV.get_template(template).render(values), status_code=status)


def json_block(value: object) -> str:
    """JSON for a data block inside a page (``<script type="application/json">``): nothing in it can close the
    element."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def live_feed(request: Request) -> LiveFeed | None:
    """The app's own PBX session (live board and desk), or None when it is turned off."""
    feed: LiveFeed | None = getattr(request.app.state, "live", None)
    return feed


def query_without(request: Request, **changes: Any) -> str:
    """The current query string with some parameters changed (None drops one): for paging and sorting links."""
    params = {key: value for key, value in request.query_params.multi_items()}
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    return "?" + urlencode(params)


def back_to(path: str, problem: str = "") -> RedirectResponse:
    """After a form's POST: back to ``path`` (303), with the problem to show, if any, in ``?problem=``."""
    return RedirectResponse(path + (f"?{urlencode({'problem': problem})}" if problem else ""), status_code=303)
