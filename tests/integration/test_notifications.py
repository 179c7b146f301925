"""Departments learn of cases through the outbox: a forwarded (or reassigned) case and an overdue one are queued in
the same transaction as the change, delivered to a real SMTP server (aiosmtpd) and a real HTTP receiver, retried
with a growing delay while a receiver is down, given up after the configured time, and never sent twice: not
when announced again, not by two workers at once, not by a worker restarted. The last test runs the real
``callcenter notify`` process against receivers that come up only after it has failed."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import select

from callcenter.model.contract import Role
from callcenter.model.hotline import Department, HotlineModel, load
from callcenter.notify import worker as worker_module
from callcenter.notify.messages import Outgoing
from callcenter.notify.senders import Sender, SmtpSender, WebhookSender
from callcenter.notify.worker import Notifier, retry_at
from callcenter.settings import PROJECT_ROOT, NotifySettings
from callcenter.store import cases, outbox
from callcenter.store.db import Database
from callcenter.store.models import Case, Notification
from tests.factories import free_port
from tests.integration.conftest import wait_until
from tests.integration.notify_sinks import SmtpSink, WebhookSink
from tests.scraping import scrape, value

HOTLINE = load(PROJECT_ROOT / "hotline.toml")
OPERATOR = cases.Actor("op101", Role.OPERATOR)
SUPERVISOR = cases.Actor("sup1", Role.SUPERVISOR)


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookSink]:
    sink = WebhookSink()
    yield sink
    sink.stop()


def model_with(smtp: SmtpSink, webhook: WebhookSink) -> HotlineModel:
    """The shipped model, where the environment department has an e-mail address and a webhook."""
    departments = dict(HOTLINE.departments)
    departments["environment"] = Department(name=departments["environment"].name, email="moitruong@example.vn",
                                            webhook=webhook.url)
    return HOTLINE.model_copy(update={"departments": departments})


def settings_for(smtp: SmtpSink, **extra: object) -> NotifySettings:
    return NotifySettings(smtp_port=smtp.port, sender="hotline@tongdai.example.vn", retry_min=30, retry_max=240,
                          base_url="https://hotline.example.vn", **extra)  # type: ignore[arg-type]


def notifier(db: Database, model: HotlineModel, settings: NotifySettings, owner: str = "") -> Notifier:
    senders: dict[str, Sender] = {"email": SmtpSender(settings, "Asia/Ho_Chi_Minh"),
                                  "webhook": WebhookSender(settings)}
    return Notifier(db, lambda: model, settings, senders, owner)


def open_case(db: Database, model: HotlineModel, topic: str = "environment", **extra: object) -> str:
    with db.session() as session:
        new = cases.NewCase(topic=topic, description="Rác thải đổ trộm ở bờ kênh", location="Kênh Thầy Cai",
                            contact_name="Nguyễn Văn Tâm", contact_phone="0905111222", **extra)  # type: ignore[arg-type]
        return cases.open_case(session, model, new, OPERATOR).number


def rows(db: Database) -> list[Notification]:
    with db.session() as session:
        found = list(session.scalars(select(Notification).order_by(Notification.id)))
        session.expunge_all()
        return found


def test_a_forwarded_case_is_told_once_by_email_and_webhook_without_the_citizens_contact(
        db: Database, smtp: SmtpSink, webhook: WebhookSink) -> None:
    model, settings = model_with(smtp, webhook), settings_for(smtp)
    smtp.start()
    webhook.start()
    number = open_case(db, model)
    open_case(db, model, topic="traffic")  # a department without addresses: nothing queued
    queued = rows(db)
    assert [(r.kind, r.channel, r.target, r.status) for r in queued] == [
        ("forwarded", "email", "moitruong@example.vn", "pending"), ("forwarded", "webhook", webhook.url, "pending")]

    done = notifier(db, model, settings).run_once()
    assert (done.sent, done.failed) == (2, 0)
    [mail] = smtp.messages
    assert mail["To"] == "moitruong@example.vn" and number in mail["Subject"]
    body = mail.get_content()
    assert f"https://hotline.example.vn/cases/{number}" in body and "Rác thải đổ trộm" in body
    assert "0905111222" not in mail.as_string() and "Tâm" not in body
    [hook] = webhook.received
    expected = hmac.new(settings.webhook_secret.encode(), hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["x-callcenter-signature"] == f"sha256={expected}"
    assert hook.headers["idempotency-key"] == queued[1].key == hook.json()["key"]
    sent_case = hook.json()["case"]
    assert (hook.json()["event"], sent_case["number"], sent_case["status"]) == ("case.forwarded", number, "forwarded")
    assert "contact_phone" not in sent_case and "0905111222" not in hook.body.decode()
    assert all(r.status == "sent" and r.sent_at and r.attempts == 1 for r in rows(db))

    assert notifier(db, model, settings).run_once().sent == 0  # nothing twice
    with db.session() as session:  # announcing the same occasion again adds nothing
        case = session.scalars(select(Case).where(Case.number == number)).one()
        occasion = queued[0].key.rsplit("/", 1)[1]
        assert outbox.announce(session, model, case, "forwarded", occasion) == 0
    assert len(smtp.messages) == len(webhook.received) == 1


def test_receivers_down_for_a_while_get_each_message_once_after_growing_delays(
        db: Database, smtp: SmtpSink, webhook: WebhookSink) -> None:
    model, settings = model_with(smtp, webhook), settings_for(smtp)
    open_case(db, model)
    worker = notifier(db, model, settings)
    start = datetime.now(UTC)
    assert worker.run_once(start).failed == 2  # nothing listens on either port yet
    first = rows(db)
    assert all(r.status == "pending" and r.attempts == 1 and r.last_error for r in first)
    assert {r.next_at - start for r in first} == {timedelta(seconds=30)}
    assert "webhook" in first[1].last_error and "smtp" in first[0].last_error

    assert worker.run_once(start + timedelta(seconds=29)).failed == 0  # not due yet: not tried
    webhook.status = 503  # the webhook's server is up but failing; SMTP still down
    webhook.start()
    assert worker.run_once(start + timedelta(seconds=30)).failed == 2
    second = rows(db)
    assert {r.next_at - start for r in second} == {timedelta(seconds=90)}  # 30 s, then 60 s more
    assert "HTTP 503" in second[1].last_error and len(webhook.received) == 1

    smtp.start()
    webhook.status = 200
    done = worker.run_once(start + timedelta(seconds=90))
    assert (done.sent, done.failed) == (2, 0)
    assert len(smtp.messages) == 1 and len(webhook.received) == 2  # the failed 503 attempt, then the delivery
    assert webhook.received[0].headers["idempotency-key"] == webhook.received[1].headers["idempotency-key"]
    assert worker.run_once(start + timedelta(hours=1)).sent == 0
    assert all(r.status == "sent" and r.attempts == 3 for r in rows(db))


def test_a_message_undelivered_past_the_give_up_time_is_marked_failed_and_shown_on_the_case_page(
        db: Database, smtp: SmtpSink, webhook: WebhookSink, tmp_path: Path) -> None:
    from tests.webclient import add_users, client, sign_in
    from tests.webclient import settings_for as app_settings

    model, settings = model_with(smtp, webhook), settings_for(smtp, give_up_hours=1)
    number = open_case(db, model)
    worker = notifier(db, model, settings)
    start = datetime.now(UTC)
    worker.run_once(start)
    assert all(r.status == "pending" for r in rows(db))
    worker.run_once(start + timedelta(hours=1))
    assert [r.status for r in rows(db)] == ["failed", "failed"]
    assert worker.run_once(start + timedelta(hours=5)).failed == 0  # given up: never tried again

    add_users(db)
    app = client(db, app_settings(tmp_path))
    app.app.state.model = lambda: model  # type: ignore[attr-defined]
    page = sign_in(app, "super1").get(f"/cases/{number}").text
    assert 'data-notification="email"' in page and 'data-notification-status="failed"' in page
    assert "moitruong@example.vn" in page


def test_an_overdue_case_is_told_once_per_due_time(db: Database, smtp: SmtpSink, webhook: WebhookSink) -> None:
    model, settings = model_with(smtp, webhook), settings_for(smtp)
    smtp.start()
    webhook.start()
    number = open_case(db, model)
    worker = notifier(db, model, settings)
    assert worker.run_once().sent == 2  # the forwarding
    with db.session() as session:
        due = session.scalars(select(Case.due_at).where(Case.number == number)).one()
    assert due is not None
    assert worker.run_once(due - timedelta(minutes=1)).queued == 0
    late = worker.run_once(due + timedelta(minutes=1))
    assert (late.queued, late.sent) == (2, 2)
    assert "quá hạn" in smtp.messages[-1]["Subject"].lower() or "overdue" in smtp.messages[-1]["Subject"].lower()
    assert webhook.received[-1].json()["event"] == "case.overdue"
    assert worker.run_once(due + timedelta(hours=3)).queued == 0  # still overdue, already told

    with db.session() as session:  # reassigned away and back: a new due time, told again when it passes
        case = session.scalars(select(Case).where(Case.number == number)).one()
        cases.reassign(session, model, case, "urban", SUPERVISOR, "")
        cases.reassign(session, model, case, "environment", SUPERVISOR, "")
        new_due = case.due_at
    assert new_due is not None
    assert worker.run_once().sent == 2  # the forwarding to environment again (urban has no addresses)
    assert worker.run_once(new_due + timedelta(minutes=1)).queued == 2
    kinds = Counter((r.kind, r.channel) for r in rows(db))
    assert kinds == {("forwarded", "email"): 2, ("forwarded", "webhook"): 2, ("overdue", "email"): 2,
                     ("overdue", "webhook"): 2}


def test_two_workers_at_once_never_send_the_same_message(db: Database, smtp: SmtpSink, webhook: WebhookSink) -> None:
    model, settings = model_with(smtp, webhook), settings_for(smtp)
    smtp.start()
    webhook.start()
    numbers = [open_case(db, model) for _ in range(8)]
    workers = [notifier(db, model, settings, owner) for owner in ("worker-a", "worker-b")]
    ready = threading.Barrier(2)
    results: list[int] = []

    def run(worker: Notifier) -> None:
        ready.wait()
        results.append(worker.run_once().sent)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 16
    keys = Counter(r.headers["idempotency-key"] for r in webhook.received)
    assert len(keys) == 8 and set(keys.values()) == {1}
    mailed = Counter(m["X-Callcenter-Key"] for m in smtp.messages)
    assert len(mailed) == 8 and set(mailed.values()) == {1}
    assert {r.json()["case"]["number"] for r in webhook.received} == set(numbers)


def test_a_row_left_claimed_by_a_dead_worker_is_sent_by_another_after_its_lease(
        db: Database, smtp: SmtpSink, webhook: WebhookSink) -> None:
    model, settings = model_with(smtp, webhook), settings_for(smtp, lease_seconds=60)
    smtp.start()
    webhook.start()
    open_case(db, model)
    now = datetime.now(UTC)
    with db.session() as session:  # a worker claims both rows and dies before sending
        assert len(outbox.claim(session, "dead-worker", now, timedelta(seconds=60))) == 2
    other = notifier(db, model, settings, "live-worker")
    assert other.run_once(now + timedelta(seconds=30)).sent == 0  # still leased
    assert other.run_once(now + timedelta(seconds=61)).sent == 2
    assert len(smtp.messages) == len(webhook.received) == 1


class Recorded:
    """A sender that keeps what it is given (and calls ``during`` while it sends, if given)."""

    def __init__(self, worker: str, log: list[tuple[str, str]], during: Callable[[], None] = lambda: None) -> None:
        self.worker, self.log, self.during = worker, log, during

    def send(self, message: Outgoing) -> None:
        self.during()
        self.log.append((self.worker, message.key))


def addressed() -> HotlineModel:
    departments = dict(HOTLINE.departments)
    departments["environment"] = Department(name="Môi trường", email="moitruong@example.vn",
                                            webhook="https://moitruong.example.vn/hook")
    return HOTLINE.model_copy(update={"departments": departments})


def test_a_message_whose_sending_raises_fails_alone_and_the_rest_of_its_batch_goes(db: Database) -> None:
    """An unexpected exception from a sender (a webhook URL no HTTP client reads, a bug) once ended the pass: the
    row stayed claimed, untouched, and was claimed first again at each pass with the rows after it: none sent."""
    model, log = addressed(), list[tuple[str, str]]()

    class Broken:
        def send(self, message: Outgoing) -> None:
            raise ValueError("Invalid IPv6 URL")

    for _ in range(2):
        open_case(db, model)
    worker = Notifier(db, lambda: model, NotifySettings(), {"email": Recorded("w", log), "webhook": Broken()})
    done = worker.run_once()
    assert (done.sent, done.failed) == (2, 2) and len(log) == 2
    failed = [r for r in rows(db) if r.channel == "webhook"]
    assert all(r.status == "pending" and r.attempts == 1 and r.last_error == "ValueError: Invalid IPv6 URL"
               and r.lease_owner == "" for r in failed)  # retried later, like any failed delivery
    with pytest.raises(ValueError, match="not a URL an HTTP client can send to"):
        Department(name="x", webhook="http://[::1/hook")
    with pytest.raises(ValueError, match="no usable host name"):
        Department(name="x", webhook="http://a..b/x")


def test_a_batch_that_outlives_its_lease_sends_each_message_once(db: Database,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker A claims four rows and sends them one after another; its sends are slow, so by the third its claim
    on the last rows has run out and worker B takes them. A takes each row's lease anew before sending it, and
    leaves those B holds: every message is sent once."""
    model, log = addressed(), list[tuple[str, str]]()
    for _ in range(2):
        open_case(db, model)
    now, lease = datetime.now(UTC), NotifySettings(lease_seconds=60)
    elapsed = [0.0]  # A's clock since its pass began: each of its sends takes 35 s
    monkeypatch.setattr(worker_module, "time", SimpleNamespace(monotonic=lambda: elapsed[0]))
    other = Notifier(db, lambda: model, lease, {c: Recorded("b", log) for c in ("email", "webhook")}, "worker-b")

    def slow() -> None:
        elapsed[0] += 35
        if elapsed[0] == 70:  # during A's second send: B's pass, 70 s after A claimed (A's claim ran out at 60)
            other.run_once(now + timedelta(seconds=70))

    first = Notifier(db, lambda: model, lease, {c: Recorded("a", log, slow) for c in ("email", "webhook")}, "worker-a")
    first.run_once(now)
    assert len(log) == 4 and len({key for _, key in log}) == 4, log
    assert Counter(worker for worker, _ in log) == {"a": 2, "b": 2}


def test_the_retry_delay_doubles_up_to_the_maximum_and_gives_up_in_time() -> None:
    settings = NotifySettings(retry_min=30, retry_max=240, give_up_hours=2)
    queued = datetime(2026, 11, 30, 8, tzinfo=UTC)
    delays = [(retry_at(settings, n, queued, queued) - queued).total_seconds()  # type: ignore[operator]
              for n in range(1, 7)]
    assert delays == [30, 60, 120, 240, 240, 240]
    assert retry_at(settings, 3, queued, queued + timedelta(hours=2)) is None


def scraped(port: int, name: str, **labels: str) -> float | None:
    """One sample the notify process serves on its metrics port (None while it is not up yet)."""
    try:
        return value(scrape(port), name, **labels)
    except httpx.TransportError:
        return None


def test_the_notify_process_keeps_retrying_until_the_receivers_come_up(
        db: Database, db_url: str, smtp: SmtpSink, webhook: WebhookSink, tmp_path: Path) -> None:
    model_file = tmp_path / "hotline.toml"
    text = (PROJECT_ROOT / "hotline.toml").read_text()
    anchor = "[departments.environment]\n"
    model_file.write_text(text.replace(anchor, f'{anchor}email = "moitruong@example.vn"\nwebhook = "{webhook.url}"\n'))
    model = load(model_file)
    number = open_case(db, model)
    env = {**os.environ, "CALLCENTER_NOTIFY__SMTP_PORT": str(smtp.port), "CALLCENTER_NOTIFY__INTERVAL": "0.2",
           "CALLCENTER_NOTIFY__RETRY_MIN": "0.2", "CALLCENTER_NOTIFY__RETRY_MAX": "0.5",
           "CALLCENTER_METRICS__NOTIFY_PORT": str(port := free_port())}
    log = (tmp_path / "notify.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "callcenter", "--db", db_url, "--model", str(model_file),
                             "notify"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: all(r.attempts >= 2 for r in rows(db)), 30, "two failed attempts per message")
        wait_until(lambda: (scraped(port, "callcenter_notifications_total", outcome="failed") or 0) >= 4
                   and scraped(port, "callcenter_notifications_pending") == 2, 30, "the failures in the metrics")
        smtp.start()
        webhook.start()
        wait_until(lambda: all(r.status == "sent" for r in rows(db)), 30, "both messages sent")
        wait_until(lambda: scraped(port, "callcenter_notifications_pending") == 0, 30,
                   "nothing pending in the metrics")
        assert scraped(port, "callcenter_notifications_total", outcome="sent") == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
    assert proc.returncode == 0, (tmp_path / "notify.log").read_text()
    assert [number in m["Subject"] for m in smtp.messages] == [True]
    assert [json.loads(r.body)["case"]["number"] for r in webhook.received] == [number]
    assert "failed (attempt 1)" in (tmp_path / "notify.log").read_text()
