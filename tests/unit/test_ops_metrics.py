"""The metrics the listener and the IVR serve, scraped over HTTP as Prometheus would: the listener over the fake
AMI server fed a captured CEL stream (the real-Asterisk version is still to come), the IVR over real FastAGI
sessions (a forked process each)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from callcenter.calls.channels import Directory
from callcenter.listener.service import CallLogStore
from callcenter.ops import metrics
from callcenter.store.db import Database
from tests.factories import file_call, free_port, load_jsonl
from tests.scraping import scrape, value
from tests.unit.agi_client import ENV, running, silent_caller, wait_until
from tests.unit.fake_ami import FakeAmi
from tests.unit.listening import ami_stream, make_listener, until
from tests.unit.listening import running as listening

pytestmark = pytest.mark.timeout(30)


def exporter(registry: object, port: int) -> WSGIServer:
    server = metrics.serve(registry, "127.0.0.1", port)  # type: ignore[arg-type]
    assert server is not None
    return server


def stop(server: WSGIServer) -> None:
    server.shutdown()
    server.server_close()


@pytest.fixture
def listener_port() -> Iterator[int]:
    port = free_port()
    server = exporter(metrics.LISTENER, port)
    yield port
    stop(server)


def counter(text: str, name: str, **labels: str) -> float:
    return value(text, name, **labels) or 0.0


async def test_the_listener_counts_events_in_calls_built_and_its_lag(
        ami: FakeAmi, tmp_path: Path, db: Database, listener_port: int) -> None:
    cel_file = tmp_path / "cel.jsonl"
    cel_file.write_text("".join(file_call(0)), encoding="utf-8")  # one call only Asterisk's own file has
    captured = load_jsonl("cel/answered.jsonl")
    shift = time.time() - 1.0 - captured[-1].time  # as if the call ended a second ago
    events = [replace(e, time=e.time + shift, second=int(e.time + shift)) for e in captured]
    before = await asyncio.to_thread(scrape, listener_port)
    listener = make_listener(ami, tmp_path, db, cel_file=cel_file)
    async with listening(listener):
        await until(lambda: listener.sessions == 1, what="login")
        await ami.push(ami_stream(events))

        def caught_up() -> bool:
            text = scrape(listener_port)
            return (counter(text, "callcenter_calls_built_total") - counter(before, "callcenter_calls_built_total")
                    >= 2 and value(text, "callcenter_listener_spool_pending_bytes", node="sandbox") == 0)

        deadline = time.monotonic() + 10
        while not await asyncio.to_thread(caught_up):
            assert time.monotonic() < deadline, "two calls built and the spool empty"
            await asyncio.sleep(0.05)
        text = await asyncio.to_thread(scrape, listener_port)
    def delta(name: str, **labels: str) -> float:
        return counter(text, name, **labels) - counter(before, name, **labels)

    assert delta("callcenter_cel_events_total", source="ami") == len(events)
    assert delta("callcenter_cel_events_total", source="file") == 17
    assert delta("callcenter_listener_lag_seconds_count") == len(events)
    assert 1.0 <= (value(text, "callcenter_listener_last_lag_seconds") or 0) < 30
    assert delta("callcenter_listener_lag_seconds_bucket", le="0.5") == 0  # every one stored over 1 s after it
    assert value(text, "callcenter_listener_ami_connected", node="sandbox") == 1
    assert value(text, "callcenter_listener_queue_depth", node="sandbox") == 0
    assert delta("callcenter_call_build_failures_total") == 0


def test_a_batch_histogram_reads_as_prometheus_clients_histogram_of_the_same_values() -> None:
    values = [-2.0, 0.0, 0.005, 0.0051, 1, 2.5, 7.25, 3600, 3600.5]  # bounds themselves: "le", inclusive
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("lag_seconds", "doc", buckets=metrics.LAG_BUCKETS, registry=theirs)
    for one in values:
        reference.observe(max(0.0, one))  # as the listener clamped each lag before observing it
    batched = metrics.BatchHistogram("lag_seconds", "doc", metrics.LAG_BUCKETS, ours)
    batched.observe_each(values[:4])
    batched.observe_each(values[4:])

    def samples(registry: CollectorRegistry) -> list[str]:
        return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]

    assert samples(ours) == samples(theirs)


def test_a_call_that_fails_to_build_is_counted(db: Database) -> None:
    def broken() -> Directory:
        raise RuntimeError("a bug")

    before = metrics.BUILD_FAILURES._value.get()
    assert CallLogStore(db, "n1", broken).build(["1.1", "2.1"]) == []
    assert metrics.BUILD_FAILURES._value.get() == before + 2


def test_the_ivr_counts_sessions_in_its_parent_and_frees_the_metrics_port_in_calls() -> None:
    port = free_port()
    server = exporter(metrics.IVR, port)
    before = scrape(port)
    with running(private=[server.socket]) as agi:
        host, agi_port = agi.server_address[:2]
        with socket.create_connection((str(host), int(agi_port)), timeout=10) as call, call.makefile("rb") as reader:
            call.sendall(ENV)
            assert reader.readline().startswith(b"SET VARIABLE")  # the call's process is up, waiting for a reply
            wait_until(lambda: value(scrape(port), "callcenter_ivr_sessions") == 1, what="one session")
            text = scrape(port)
            assert counter(text, "callcenter_ivr_sessions_admitted_total") == (
                counter(before, "callcenter_ivr_sessions_admitted_total") + 1)
            # A restarted IVR binds its metrics port again while calls are up: no call's process holds it.
            stop(server)
            server = exporter(metrics.IVR, port)
            # The caller stays silent to the end. (The call's process was forked from this test's process, so it
            # holds this client socket too: only the session's own end closes the connection.)
            call.sendall(silent_caller(""))
            while reader.readline():
                call.sendall(silent_caller(""))
        wait_until(lambda: value(scrape(port), "callcenter_ivr_sessions") == 0, what="the session over")
    stop(server)
