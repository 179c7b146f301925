"""Users and API tokens: create, verify, change; passwords hashed with Argon2 (pwdlib), tokens kept as SHA-256.

The only module that touches password hashes and token digests. Names are lower-case letters, digits, ``.``,
``_`` and ``-``; a password has at least :data:`MIN_PASSWORD` characters.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from pwdlib import PasswordHash
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.model.contract import Role
from callcenter.store.models import ApiToken, User

MIN_PASSWORD = 10
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
TOKEN_PREFIX = "cc_"
HASHER = PasswordHash.recommended()  # Argon2id with the library's current parameters
# Verifying against this when the name is unknown costs the same time as a real check: no timing hint.
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """A user or token request that cannot be done; the message says why."""


@dataclass(frozen=True)
class NewUser:
    """What an administrator gives to create a user."""

    name: str
    role: Role
    password: str
    display_name: str = ""
    operator: str | None = None  # the model's operator id: required for operators
    department: str | None = None
    language: str = "vi"
    timezone: str = "Asia/Ho_Chi_Minh"


def _now() -> datetime:
    return datetime.now(UTC)


def check_password(password: str) -> None:
    """Refuse a password that is too short (AccountError)."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")


def create_user(session: Session, new: NewUser) -> User:
    """Add a user; AccountError for a bad or taken name, a short password, an operator without operator id."""
    if not NAME.match(new.name):
        raise AccountError("a user name is 2-64 lower-case letters, digits, '.', '_' or '-'")
    check_password(new.password)
    if new.role is Role.OPERATOR and not new.operator:
        raise AccountError("an operator user needs the operator id they answer as (e.g. op101)")
    if session.scalar(select(User.id).where(User.name == new.name)) is not None:
        raise AccountError(f"user {new.name!r} already exists")
    user = User(name=new.name, display_name=new.display_name or new.name, role=new.role.value,
                operator=new.operator, department=new.department, password_hash=HASHER.hash(new.password),
                language=new.language, timezone=new.timezone, active=True, session_epoch=0, created_at=_now())
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The active user with this name and password, or None (the same time either way)."""
    user = session.scalar(select(User).where(User.name == name.strip().lower()))
    valid = HASHER.verify(password, user.password_hash if user is not None else _DUMMY_HASH)
    if user is None or not valid or not user.active:
        return None
    user.last_sign_in_at = _now()
    return user


def set_password(user: User, password: str) -> None:
    """Change a password; every session issued before ends."""
    check_password(password)
    user.password_hash = HASHER.hash(password)
    user.session_epoch += 1


def set_active(user: User, active: bool) -> None:
    """Disable (every session and token stops working) or enable a user."""
    user.active = active
    user.session_epoch += 1


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, user: User, name: str) -> str:
    """A new API token for ``user``; the plain token is returned once and never stored."""
    if not 1 <= len(name.strip()) <= 64:
        raise AccountError("a token needs a name of 1-64 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name.strip(), token_hash=_digest(token), prefix=token[:10],
                         created_at=_now()))
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """The active user a bearer token belongs to (its last use noted), or None."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token),
                                                ApiToken.revoked_at.is_(None)))
    if row is None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    row.last_used_at = _now()
    return user


def revoke_token(session: Session, user: User, token_id: int) -> bool:
    """Revoke one of the user's tokens; False when it is not theirs or already revoked."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id or row.revoked_at is not None:
        return False
    row.revoked_at = _now()
    return True
