"""``callcenter notify``: every few seconds, queue "overdue" messages for cases past their target, then deliver
what the outbox holds that is due; a failed delivery is retried after 1, 2, 4, ... × ``retry_min`` (at most
``retry_max``) until ``give_up_hours`` after it was queued. The schedule lives in the rows (``next_at``), so it
survives restarts, and several workers may run at once (rows are claimed, see :mod:`callcenter.store.outbox`)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from callcenter.model.hotline import HotlineModel
from callcenter.notify.messages import Outgoing
from callcenter.notify.senders import DeliveryError, Sender
from callcenter.ops.metrics import NOTIFICATIONS, NOTIFICATIONS_PENDING
from callcenter.settings import NotifySettings
from callcenter.store import outbox
from callcenter.store.db import Database

log = logging.getLogger(__name__)


def retry_at(settings: NotifySettings, attempts: int, queued: datetime, now: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed attempts, or None to give up."""
    if now - queued >= timedelta(hours=settings.give_up_hours):
        return None
    delay = min(settings.retry_max, settings.retry_min * 2 ** min(attempts - 1, 30))
    return now + timedelta(seconds=delay)


@dataclass
class Round:
    """What one pass did."""

    queued: int = 0
    sent: int = 0
    failed: int = 0


class Notifier:
    """Delivers the outbox with one sender per channel."""

    def __init__(self, db: Database, model: Callable[[], HotlineModel], settings: NotifySettings,
                 senders: Mapping[str, Sender], owner: str = "") -> None:
        self.db, self.model, self.settings, self.senders = db, model, settings, senders
        self.owner = owner or f"notify-{uuid.uuid4().hex[:12]}"

    def run_once(self, now: datetime | None = None) -> Round:
        """Queue overdue messages, then send every due row once."""
        now = now or datetime.now(UTC)
        done = Round()
        with self.db.session() as session:
            done.queued = outbox.announce_overdue(session, self.model(), now)
        with self.db.session() as session:
            rows = outbox.claim(session, self.owner, now, timedelta(seconds=self.settings.lease_seconds))
        started = time.monotonic()
        for row in rows:
            # A batch sent one message after another may outlive its lease: take this row's lease anew first, or
            # leave it if another worker took it meanwhile (it sends it; two workers never send the same row).
            moment = now + timedelta(seconds=time.monotonic() - started)
            with self.db.session() as session:
                if not outbox.renew(session, row, self.owner, moment, timedelta(seconds=self.settings.lease_seconds)):
                    log.warning("notify: %s was taken by another worker once this one's lease ran out", row.key)
                    continue
            error = self._deliver(row)
            with self.db.session() as session:
                if error is None:
                    outbox.sent(session, row, self.owner, datetime.now(UTC))
                    done.sent += 1
                    NOTIFICATIONS.labels("sent").inc()
                else:
                    later = retry_at(self.settings, row.attempts + 1, row.created_at, now)
                    outbox.failed(session, row, self.owner, now, error, later)
                    done.failed += 1
                    NOTIFICATIONS.labels("failed" if later else "given_up").inc()
                    log.warning("notify: %s to %s failed (attempt %d): %s; %s", row.key, row.target,
                                row.attempts + 1, error, f"next at {later:%H:%M:%S}" if later else "giving up")
        with self.db.session() as session:
            NOTIFICATIONS_PENDING.set(outbox.pending(session))
        return done

    def _deliver(self, row: outbox.Claimed) -> str | None:
        sender = self.senders.get(row.channel)
        if sender is None:
            return f"no sender for channel {row.channel!r}"
        try:
            sender.send(Outgoing(row.key, row.kind, row.channel, row.target, row.payload))
        except DeliveryError as exc:
            return str(exc)
        except Exception as exc:  # anything else (a URL the client cannot read, a bug) fails this row alone: an
            # exception out of the pass left it and the rest of its batch unsent and claimed first again, forever
            log.exception("notify: sending %s to %s failed unexpectedly", row.key, row.target)
            return f"{type(exc).__name__}: {exc}"
        log.info("notify: sent %s to %s", row.key, row.target)
        return None

    def run(self, stop: threading.Event) -> None:
        """Pass after pass until ``stop`` is set; a pass that fails (the database is down) is logged and the next
        one tries again."""
        log.info("notify: delivering the outbox every %.0f s as %s", self.settings.interval, self.owner)
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("notify: a pass failed; trying again in %.0f s", self.settings.interval)
            stop.wait(self.settings.interval)
