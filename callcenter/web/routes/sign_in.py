"""Signing in and out, and a visitor's language choice."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from callcenter.web.audit import client_address
from callcenter.web.auth import end_session, principal, start_session
from callcenter.web.i18n import LANGUAGES, translations
from callcenter.web.pages import LANGUAGE_COOKIE, language_of, render
from callcenter.web.throttle import SignInThrottle

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only a path on this site (``/calls?...``), never another site: anything else goes to the start page."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/calls"
    return target


@router.get("/")
def start(request: Request) -> RedirectResponse:
    """The start page: the call history, or the sign-in page."""
    return RedirectResponse("/calls" if principal(request) else "/sign-in", status_code=303)


@router.get("/sign-in")
def sign_in_page(request: Request, next: str | None = None) -> Response:
    """The sign-in form (a signed-in user goes on)."""
    if principal(request):
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "sign_in.html", title="Sign in", next=safe_next(next), name="", error="")


@router.post("/sign-in")
def sign_in(request: Request, name: Annotated[str, Form(max_length=64)], password: Annotated[str, Form(max_length=256)],
            next: Annotated[str, Form(max_length=2000)] = "/calls") -> Response:
    """Check the password; too many failures lock the account and the address out for a while."""
    from callcenter.store import accounts

    throttle: SignInThrottle = request.app.state.throttle
    address = client_address(request)
    words = translations(language_of(request, None))
    lockout = throttle.locked(name, address)
    if lockout is not None:
        message = words.gettext("Too many failed sign-ins: try again in %(minutes)s minutes.") % {
            "minutes": lockout.minutes}
        return _again(request, name, next, message, 429)
    with request.app.state.db.session() as session:
        user = accounts.authenticate(session, name, password)
        if user is not None:
            start_session(request, user)
    if user is None:
        throttle.failed(name, address)
        return _again(request, name, next, words.gettext("Wrong user name or password."), 401)
    return RedirectResponse(safe_next(next), status_code=303)


def _again(request: Request, name: str, target: str, error: str, status: int) -> HTMLResponse:
    return render(request, "sign_in.html", status=status, title="Sign in", next=safe_next(target), name=name,
                  error=error)


@router.post("/sign-out")
def sign_out(request: Request) -> RedirectResponse:
    """End the session."""
    end_session(request)
    return RedirectResponse("/sign-in", status_code=303)


@router.get("/language/{language}")
def choose_language(request: Request, language: str, next: str | None = None) -> RedirectResponse:
    """A visitor's language (signed-in users keep theirs in their account)."""
    response = RedirectResponse(safe_next(next) if next else "/sign-in", status_code=303)
    if language in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 86400, samesite="lax", httponly=True)
    return response
