"""Who is asking: a signed session cookie (people) or a bearer token (scripts), and what their role lets them do.

Sessions carry the user id, the user's ``session_epoch`` (a password change or a disabled account ends them),
when they were issued (absolute expiry) and last seen (idle expiry). Every route states the roles it admits with
:func:`require`; pages send a visitor who is not signed in to the sign-in page, the JSON API answers 401.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from callcenter.model.contract import Role
from callcenter.settings import ApiSettings
from callcenter.store import accounts
from callcenter.store.models import User

SESSION_KEY = "auth"
_UNSET = object()
EVERYONE = tuple(Role)
STAFF = (Role.SUPERVISOR, Role.ADMIN)  # see every call and recording, the live board, statistics, the audit log


@dataclass(frozen=True)
class Principal:
    """The signed-in user as a request sees it."""

    user_id: int
    name: str
    display_name: str
    role: Role
    operator: str | None
    department: str | None
    language: str
    timezone: str
    via: str  # "session" or "token"

    @classmethod
    def of(cls, user: User, via: str) -> Principal:
        """The principal for a user row."""
        return cls(user.id, user.name, user.display_name, Role(user.role), user.operator, user.department,
                   user.language, user.timezone, via)

    @property
    def sees_everything(self) -> bool:
        """Supervisors and admins see every call and recording."""
        return self.role in STAFF

    @property
    def hears_recordings(self) -> bool:
        """Departments never hear recordings; operators only their own (checked per call)."""
        return self.role is not Role.DEPARTMENT

    @property
    def sees_numbers(self) -> bool:
        """Departments see callers' numbers masked."""
        return self.role is not Role.DEPARTMENT


clock: Callable[[], float] = time.time  # epoch seconds; tests move it instead of waiting


def start_session(request: Request, user: User) -> None:
    """Sign ``user`` in on this browser (a fresh session: nothing from before survives)."""
    request.session.clear()
    now = clock()
    request.session[SESSION_KEY] = {"uid": user.id, "epoch": user.session_epoch, "issued": now, "seen": now}


def end_session(request: Request) -> None:
    """Sign out."""
    request.session.clear()


def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings.api
    return settings


def _from_session(request: Request) -> Principal | None:
    data = request.session.get(SESSION_KEY) if "session" in request.scope else None
    if not isinstance(data, dict):
        return None
    settings, now = _settings(request), clock()
    expired = (now - float(data.get("issued", 0)) > settings.session_max_hours * 3600
               or now - float(data.get("seen", 0)) > settings.session_idle_minutes * 60)
    with request.app.state.db.session() as session:
        user = session.get(User, int(data.get("uid", 0)))
        valid = user is not None and user.active and user.session_epoch == data.get("epoch")
        principal = Principal.of(user, "session") if valid and user is not None else None
    if expired or principal is None:
        request.session.clear()
        return None
    data["seen"] = now
    request.session[SESSION_KEY] = data
    return principal


def bearer(request: Request) -> str:
    """The token of an ``Authorization: Bearer`` header, or ''."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def for_token(request: Request, token: str) -> Principal | None:
    """The user an API token belongs to (active, not revoked), or None."""
    if not token:
        return None
    with request.app.state.db.session() as session:
        user = accounts.user_for_token(session, token)
        return Principal.of(user, "token") if user is not None else None


def _from_token(request: Request) -> Principal | None:
    return for_token(request, bearer(request))


def principal(request: Request) -> Principal | None:
    """The signed-in user (bearer token first, then the session cookie), or None; cached on the request."""
    cached = getattr(request.state, "principal", _UNSET)
    if cached is _UNSET:
        cached = _from_token(request) or _from_session(request)
        request.state.principal = cached
    found: Principal | None = cached  # type: ignore[assignment]
    return found


class SignInRequired(Exception):
    """A page was asked for by a visitor who is not signed in: the app sends them to the sign-in page."""


def require(*roles: Role, page: bool = False) -> Callable[[Request], Principal]:
    """A dependency admitting the given roles: 401 (or, for pages, the sign-in page) when nobody is signed in,
    403 for any other role."""
    def dependency(request: Request) -> Principal:
        who = principal(request)
        if who is None:
            if page:
                raise SignInRequired()
            raise HTTPException(401, detail="sign in, or send an API token: Authorization: Bearer <token>",
                                headers={"WWW-Authenticate": "Bearer"})
        if who.role not in roles:
            raise HTTPException(403, detail=f"a {who.role.value} may not do this")
        return who
    return dependency


Anyone = Annotated[Principal, Depends(require(*EVERYONE))]
Staff = Annotated[Principal, Depends(require(*STAFF))]
