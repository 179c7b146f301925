"""The API process's operations endpoints over a real database: /healthz, /readyz (the database and Asterisk's AMI,
each really up or really down) and /metrics (who may read it; latency labelled by route template)."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callcenter.api.app import create_app
from callcenter.model.addresses import Address
from callcenter.model.hotline import HotlineModel, load
from callcenter.settings import Settings
from callcenter.store.db import Database
from tests.factories import local_nodes
from tests.scraping import value
from tests.webclient import add_call, api_client, settings_for

LOOPBACK = ("127.0.0.1", 50000)


def dead_port() -> int:
    """A TCP port nobody listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def ami_port() -> Iterator[int]:
    """A TCP listener standing in for Asterisk's AMI port (readiness only connects)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


def model_with_ami(settings: Settings, port: int) -> Callable[[], HotlineModel]:
    model = load(settings.model_file)
    moved = model.model_copy(update={"pbx": model.pbx.model_copy(update={"ami": Address("127.0.0.1", port)})})
    return lambda: moved


def anonymous(db: Database, settings: Settings, port: int, client: tuple[str, int] = LOOPBACK) -> TestClient:
    return TestClient(create_app(settings, db, model_with_ami(settings, port)), client=client)


def test_healthz_answers_without_the_database(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    dead = Database(f"postgresql+psycopg://postgres@127.0.0.1:{dead_port()}/nothing")
    response = anonymous(dead, settings, dead_port()).get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "alive"})


def test_ready_when_the_database_and_ami_answer(db: Database, tmp_path: Path, ami_port: int) -> None:
    response = anonymous(db, settings_for(tmp_path), ami_port).get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "ami": "ok"}, "down": []}
    assert anonymous(db, settings_for(tmp_path), ami_port).get("/api/health").json() == {"status": "ok"}


@pytest.mark.parametrize("where", ["postgresql", "sqlite"])
def test_not_ready_names_the_database_when_it_does_not_answer(where: str, tmp_path: Path, ami_port: int) -> None:
    (tmp_path / "a-folder").mkdir()
    url = (f"postgresql+psycopg://postgres:secret-pw@127.0.0.1:{dead_port()}/callcenter" if where == "postgresql"
           else f"sqlite:///{tmp_path / 'a-folder'}")  # a folder: SQLite cannot open it
    response = anonymous(Database(url), settings_for(tmp_path), ami_port).get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "checks": {"database": "down", "ami": "ok"},
                               "down": ["database"]}
    assert "secret-pw" not in response.text and "127.0.0.1" not in response.text


def test_not_ready_names_ami_unless_told_it_does_not_count(db: Database, tmp_path: Path) -> None:
    response = anonymous(db, settings_for(tmp_path), dead_port()).get("/readyz")
    assert (response.status_code, response.json()["down"]) == (503, ["ami"])
    relaxed = anonymous(db, settings_for(tmp_path, ready_needs_ami=False), dead_port()).get("/readyz")
    assert relaxed.status_code == 200
    assert relaxed.json()["checks"] == {"database": "ok", "ami": "down"}


def test_several_nodes_ready_while_one_answers_not_ready_when_none_does(db: Database, tmp_path: Path,
                                                                         ami_port: int) -> None:
    def with_nodes(*ports: int) -> Settings:
        settings = settings_for(tmp_path)
        settings.nodes = local_nodes(tmp_path, {f"pbx{n}": port for n, port in enumerate(ports)})
        return settings

    both = anonymous(db, with_nodes(ami_port, ami_port), dead_port()).get("/readyz")  # the nodes', not the model's
    assert (both.status_code, both.json()["checks"]["ami"]) == (200, "ok")
    one = anonymous(db, with_nodes(ami_port, dead_port()), ami_port).get("/readyz")
    assert (one.status_code, one.json()["checks"]["ami"], one.json()["down"]) == (200, "partial", [])
    none = anonymous(db, with_nodes(dead_port(), dead_port()), ami_port).get("/readyz")
    assert (none.status_code, none.json()["checks"]["ami"], none.json()["down"]) == (503, "down", ["ami"])


def test_metrics_are_for_loopback_clients_and_staff(db: Database, tmp_path: Path, ami_port: int) -> None:
    assert anonymous(db, settings_for(tmp_path), ami_port).get("/metrics").status_code == 200
    remote = anonymous(db, settings_for(tmp_path), ami_port, client=("192.0.2.7", 50000))
    assert remote.get("/metrics").status_code == 401
    proxied = anonymous(db, settings_for(tmp_path), ami_port)  # loopback, but forwarded by a proxy on this host
    assert proxied.get("/metrics", headers={"X-Forwarded-For": "198.51.100.9"}).status_code == 401
    assert api_client(db, settings_for(tmp_path), user="super1").get("/metrics").status_code == 200
    assert api_client(db, settings_for(tmp_path), user="op101").get("/metrics").status_code == 403
    assert api_client(db, settings_for(tmp_path), user="dept1").get("/metrics").status_code == 403


def test_latency_is_labelled_by_route_template_never_by_raw_path(db: Database, tmp_path: Path) -> None:
    call_id, _ = add_call(db, 1)
    client = api_client(db, settings_for(tmp_path))
    route = "/api/calls/{call_id}"
    before = value(client.get("/metrics").text, "callcenter_http_request_duration_seconds_count", method="GET",
                   route=route, status="2xx") or 0.0
    assert client.get(f"/api/calls/{call_id}").status_code == 200
    assert client.get(f"/api/calls/{call_id}").status_code == 200
    assert client.get("/api/calls/987654321").status_code == 404
    assert client.get("/no/such/page/4711").status_code == 404
    text = client.get("/metrics").text
    count = "callcenter_http_request_duration_seconds_count"
    assert value(text, count, method="GET", route=route, status="2xx") == before + 2
    assert (value(text, count, method="GET", route=route, status="4xx") or 0) >= 1
    assert (value(text, count, method="GET", route="unmatched", status="4xx") or 0) >= 1
    # No raw path among the route labels (a metric's value may hold any digits: look at the labels only).
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert route in routes and "unmatched" in routes
    assert not [label for label in routes if re.search(r"/\d+(/|$)", label)], routes


def test_the_api_says_at_start_that_nobody_catches_nodes_up_with_the_live_board_off(
        db: Database, tmp_path: Path, ami_port: int, caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(create_app(settings_for(tmp_path), db, model_with_ami(settings_for(tmp_path), ami_port))):
        pass  # the app started and stopped (its lifespan ran)
    assert "not given the desk changes it missed nor the standing pauses" in caplog.text
