"""``callcenter users add|list|passwd|disable|enable``: accounts for the web app and the API, from the shell.

A password is prompted for (twice) on a terminal, or read from standard input (one line) for scripts.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from typing import Any

from sqlalchemy import select

from callcenter.model.contract import Role
from callcenter.model.hotline import HotlineModel
from callcenter.settings import Settings
from callcenter.store import accounts
from callcenter.store.db import Database
from callcenter.store.migrate import upgrade
from callcenter.store.models import User


def read_password(prompt: str = "Password: ") -> str:
    """Prompted twice on a terminal; otherwise one line from standard input."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(prompt)
    if getpass.getpass("Again: ") != first:
        raise accounts.AccountError("the two passwords differ")
    return first


def _add(args: argparse.Namespace, db: Database, model: HotlineModel) -> int:
    if args.operator and args.operator not in model.operators:
        raise accounts.AccountError(f"no operator {args.operator!r} in the telephony model "
                                    f"(known: {', '.join(model.operators)})")
    if args.role == Role.DEPARTMENT.value and args.department not in model.departments:
        raise accounts.AccountError(f"a department user needs --department, one of the telephony model's: "
                                    f"{', '.join(model.departments)}")
    if args.department and args.role != Role.DEPARTMENT.value:  # it would be stored and mean nothing
        raise accounts.AccountError(f"--department is for department users, not a {args.role}")
    new = accounts.NewUser(name=args.name, role=Role(args.role), password=read_password(),
                           display_name=args.display_name or "", operator=args.operator,
                           department=args.department, language=args.language)
    with db.session() as session:
        accounts.create_user(session, new)
    print(f"user {args.name} ({args.role}) added")
    return 0


def _change(args: argparse.Namespace, db: Database) -> int:
    with db.session() as session:
        user = session.scalar(select(User).where(User.name == args.name))
        if user is None:
            raise accounts.AccountError(f"no user {args.name!r}")
        if args.action == "passwd":
            accounts.set_password(user, read_password("New password: "))
        else:
            accounts.set_active(user, args.action == "enable")
    print(f"user {args.name}: {args.action} done (their sessions ended)")
    return 0


def _list(db: Database) -> int:
    with db.session() as session:
        users = session.scalars(select(User).order_by(User.name)).all()
        print(f"{'name':<20} {'role':<11} {'operator':<9} {'state':<8} last sign-in")
        for user in users:
            print(f"{user.name:<20} {user.role:<11} {user.operator or '-':<9} "
                  f"{'active' if user.active else 'disabled':<8} {user.last_sign_in_at or '-'}")
    return 0


def cmd_users(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Add, list, disable or enable users, or set a password."""
    upgrade(settings.db.url)
    db = Database(settings.db.url)
    try:
        if args.action == "list":
            return _list(db)
        if not args.name:
            print(f"users {args.action} needs a NAME", file=sys.stderr)
            return 2
        return _add(args, db, model) if args.action == "add" else _change(args, db)
    except accounts.AccountError as error:
        print(f"callcenter users: {error}", file=sys.stderr)
        return 2
    finally:
        db.dispose()


def ensure_first_admin(db: Database) -> str:
    """Create an ``admin`` user with a random password when there is no user at all; return how to sign in."""
    with db.session() as session:
        if session.scalar(select(User.id).limit(1)) is not None:
            return ""
        password = secrets.token_urlsafe(12)
        accounts.create_user(session, accounts.NewUser("admin", Role.ADMIN, password, display_name="Administrator"))
    return f"first administrator created: sign in as admin with password {password} (change it on /account)"


def add_commands(sub: Any) -> None:
    """Register the users sub-command."""
    parser = sub.add_parser("users", help=cmd_users.__doc__, description=__doc__)
    parser.add_argument("action", choices=("add", "list", "passwd", "disable", "enable"))
    parser.add_argument("name", nargs="?", help="the user name (lower-case letters, digits, . _ -)")
    parser.add_argument("--role", choices=[role.value for role in Role], default=Role.OPERATOR.value)
    parser.add_argument("--operator", help="for operators: the operator id in the model (e.g. op101)")
    parser.add_argument("--department", help="for department users: the department's key in the model (hotline.toml)")
    parser.add_argument("--display-name", help="shown in the pages (default: the user name)")
    parser.add_argument("--language", choices=("vi", "en"), default="vi")
    parser.set_defaults(handler=cmd_users)
