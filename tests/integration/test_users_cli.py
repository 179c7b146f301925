"""`callcenter users` and the first start of `callcenter api` as real processes over a real database: users added
with passwords from standard input, refused with a clear message when wrong, disabled and enabled; the first
administrator created and announced once; the services refusing the sandbox's secrets outside the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from callcenter.settings import PROJECT_ROOT
from callcenter.store import accounts
from callcenter.store.db import Database
from tests.browser.conftest import start_server

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
PASSWORD = "a long enough password"


def cli(db_url: str, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callcenter", *args], cwd=PROJECT_ROOT, input=stdin, text=True,
                          capture_output=True, timeout=60, env={**os.environ, "CALLCENTER_DB__URL": db_url, **env})


def signs_in(db: Database, name: str, password: str) -> bool:
    with db.session() as session:
        return accounts.authenticate(session, name, password) is not None


def test_users_are_added_listed_disabled_and_given_new_passwords(db_url: str, db: Database) -> None:
    added = cli(db_url, "users", "add", "lan", "--role", "supervisor", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert signs_in(db, "lan", PASSWORD)
    operator = cli(db_url, "users", "add", "op.101", "--role", "operator", "--operator", "op101", stdin=PASSWORD)
    assert operator.returncode == 0, operator.stderr
    department = cli(db_url, "users", "add", "tnmt", "--role", "department", "--department", "environment",
                     stdin=PASSWORD)
    assert department.returncode == 0, department.stderr
    listed = cli(db_url, "users", "list").stdout
    assert "lan" in listed and "supervisor" in listed and "op101" in listed

    for args, stdin, message in [
            (("users", "add", "x1", "--role", "operator"), PASSWORD, "needs the operator id"),
            (("users", "add", "x2", "--role", "operator", "--operator", "op999"), PASSWORD, "no operator 'op999'"),
            (("users", "add", "x4", "--role", "department"), PASSWORD, "needs --department"),
            (("users", "add", "x5", "--role", "department", "--department", "mars"), PASSWORD, "environment"),
            (("users", "add", "x6", "--role", "supervisor", "--department", "environment"), PASSWORD,
             "--department is for department users, not a supervisor"),
            (("users", "add", "lan", "--role", "admin"), PASSWORD, "lan"),  # taken
            (("users", "add", "Bad Name!", "--role", "admin"), PASSWORD, "user name"),
            (("users", "add", "x3", "--role", "admin"), "short", "password"),
            (("users", "disable", "nobody"), "", "no user 'nobody'")]:
        refused = cli(db_url, *args, stdin=stdin)
        assert refused.returncode == 2 and message in refused.stderr, (args, refused.stderr)
    assert "x1" not in cli(db_url, "users", "list").stdout  # nothing half-made

    assert cli(db_url, "users", "disable", "lan").returncode == 0
    assert not signs_in(db, "lan", PASSWORD)
    assert cli(db_url, "users", "enable", "lan").returncode == 0
    assert cli(db_url, "users", "passwd", "lan", stdin="another long password\n").returncode == 0
    assert signs_in(db, "lan", "another long password") and not signs_in(db, "lan", PASSWORD)


def test_the_first_start_creates_an_administrator_once(db_url: str, db: Database, tmp_path: Path) -> None:
    first = start_server(db_url, tmp_path)
    try:
        first.stop()
        announced = first.log.read_text()
        assert "first administrator created: sign in as admin with password " in announced
        password = announced.split("with password ")[1].split()[0]
        assert signs_in(db, "admin", password)
    finally:
        first.stop()
    (tmp_path / "again").mkdir()
    again = start_server(db_url, tmp_path / "again")
    again.stop()
    assert "first administrator" not in again.log.read_text()


def test_outside_the_sandbox_the_services_refuse_the_development_secrets(db_url: str, tmp_path: Path) -> None:
    elsewhere = {"CALLCENTER_PBX__CONFIG_DIR": str(tmp_path / "etc-asterisk")}
    for command in ("api", "listen", "notify", "run"):
        refused = cli(db_url, command, **elsewhere)
        assert refused.returncode == 2, (command, refused.stderr)
        assert "refusing to start outside the sandbox" in refused.stderr
        for variable in ("CALLCENTER_AMI__SECRET", "CALLCENTER_PBX__SIP_SECRET", "CALLCENTER_API__SESSION_SECRET",
                         "CALLCENTER_NOTIFY__WEBHOOK_SECRET"):
            assert variable in refused.stderr
    own = {**elsewhere, "CALLCENTER_AMI__SECRET": "s1-deployment", "CALLCENTER_PBX__SIP_SECRET": "s2-deployment",
           "CALLCENTER_PBX__CONTROL_SECRET": "s3-deployment", "CALLCENTER_API__SESSION_SECRET": "s4-deployment",
           "CALLCENTER_NOTIFY__WEBHOOK_SECRET": "s5-deployment", "CALLCENTER_API__LIVE_SECRET": "s6-deployment"}
    server = start_server(db_url, tmp_path, **own)  # with its own secrets it starts
    server.stop()


def test_bad_options_and_folders_get_one_line_and_exit_2(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    for args, message in [(("--log-level", "bogus", "users", "list"), "argument --log-level: invalid choice"),
                          (("--db", "nonsense", "users", "list"), "argument --db: not a database URL"),
                          (("recordings", "hold", "99999999999999999999"), "a call id from 1 to"),
                          (("asterisk", "render", "/dev/null/x"), "to /dev/null/x: Not a directory"),
                          (("asterisk", "render", str(tmp_path / "a-file")), "a-file: not a folder")]:
        refused = cli(db_url, *args)
        assert refused.returncode == 2 and message in refused.stderr, (args, refused.stderr)
        assert "Traceback" not in refused.stderr
    assert cli(db_url, "--log-level", "warning", "users", "list").returncode == 0
