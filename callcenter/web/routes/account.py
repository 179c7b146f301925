"""The signed-in user's own account: language, time zone, password, API tokens."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import available_timezones

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from callcenter.store import accounts
from callcenter.store.models import MAX_ID, ApiToken, User
from callcenter.web.auth import EVERYONE, Principal, require, start_session
from callcenter.web.i18n import LANGUAGES, translations
from callcenter.web.pages import render
from callcenter.web.routes.sign_in import safe_next

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(require(*EVERYONE, page=True))]
ZONES = sorted(zone for zone in available_timezones() if "/" in zone and not zone.startswith(("Etc/", "SystemV")))


def _page(request: Request, who: Principal, status: int = 200, **context: object) -> HTMLResponse:
    with request.app.state.db.session() as session:
        tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == who.user_id)
                                 .order_by(ApiToken.created_at.desc())).all()
    return render(request, "account.html", status=status, title="Your account", tokens=tokens, zones=ZONES,
                  **context)


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, who: Person) -> HTMLResponse:
    """The account page."""
    return _page(request, who)


def _user(session: object, who: Principal) -> User:
    user = session.get(User, who.user_id)  # type: ignore[attr-defined]
    assert isinstance(user, User)
    return user


@router.post("/account/preferences")
def preferences(request: Request, who: Person, language: Annotated[str, Form()],
                timezone: Annotated[str, Form()]) -> Response:
    """Save language and time zone."""
    if language not in LANGUAGES or timezone not in ZONES:
        return _page(request, who, 422, flash="unknown language or time zone", flash_kind="error")
    with request.app.state.db.session() as session:
        user = _user(session, who)
        user.language, user.timezone = language, timezone
    return RedirectResponse("/account", status_code=303)


@router.post("/account/language")
def switch_language(request: Request, who: Person, language: Annotated[str, Form()],
                    next: Annotated[str, Form(max_length=2000)] = "/calls") -> RedirectResponse:
    """The header's language switch."""
    if language in LANGUAGES:
        with request.app.state.db.session() as session:
            _user(session, who).language = language
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/account/password")
def change_password(request: Request, who: Person, current: Annotated[str, Form(max_length=256)],
                    new: Annotated[str, Form(max_length=256)]) -> Response:
    """Change the password (the current one first); other sessions end, this one goes on."""
    words = translations(who.language)
    with request.app.state.db.session() as session:
        user = _user(session, who)
        if accounts.authenticate(session, who.name, current) is None:
            return _page(request, who, 403, flash=words.gettext("The current password is wrong."),
                         flash_kind="error")
        try:
            accounts.set_password(user, new)
        except accounts.AccountError as exc:
            return _page(request, who, 422, flash=str(exc), flash_kind="error")
        start_session(request, user)
    return _page(request, who, flash=words.gettext("Password changed."))


@router.post("/account/tokens")
def create_token(request: Request, who: Person, name: Annotated[str, Form(max_length=64)]) -> Response:
    """A new API token, shown once."""
    with request.app.state.db.session() as session:
        try:
            token = accounts.create_token(session, _user(session, who), name)
        except accounts.AccountError as exc:
            return _page(request, who, 422, flash=str(exc), flash_kind="error")
    return _page(request, who, new_token=token)


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(request: Request, who: Person, token_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> RedirectResponse:
    """Revoke one of one's own tokens."""
    with request.app.state.db.session() as session:
        accounts.revoke_token(session, _user(session, who), token_id)
    return RedirectResponse("/account", status_code=303)
