"""The long-running parts: ``migrate``, ``listen``, ``ivr``, ``api``, ``notify`` and ``run`` (all four under a
supervisor)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from sqlalchemy.engine import make_url

from callcenter.model.hotline import HotlineModel
from callcenter.settings import Settings

log = logging.getLogger(__name__)


def cmd_migrate(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Apply database migrations."""
    from callcenter.store.migrate import upgrade

    upgrade(settings.db.url)
    print(f"database at {make_url(settings.db.url).render_as_string(hide_password=True)} is up to date")
    return 0


def _refused(settings: Settings) -> bool:
    """Outside the sandbox, with the sandbox's development secrets: say so and refuse."""
    from callcenter.web.security import refuse_default_secrets

    reason = refuse_default_secrets(settings)
    if reason:
        print(f"callcenter: {reason}", file=sys.stderr)
    return bool(reason)


def cmd_listen(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Run the AMI listener (call log and recordings of each Asterisk node) until interrupted."""
    from concurrent.futures import ThreadPoolExecutor

    from callcenter.calls.channels import Directory
    from callcenter.listener.backfill import Backfill
    from callcenter.listener.celfile import CelFile
    from callcenter.listener.service import CallLogStore, Listener, Periodic, collect_for_throughput
    from callcenter.listener.spool import Spool, spool_path
    from callcenter.model.watch import ModelWatch
    from callcenter.ops import metrics
    from callcenter.store.db import Database
    from recordings.retention import purge
    from recordings.worker import RecordingWorker

    if _refused(settings):
        return 2
    prepare = _once(_migrate_or_defer(settings.db.url))
    db = Database(settings.db.url, settings.db.connect_timeout)
    watch = ModelWatch(settings.model_file, model)

    def directory() -> Directory:  # the model's current operators, every node alike
        return Directory.from_model(watch.current())

    options, rec = settings.listener, settings.recordings
    nodes = settings.listener_nodes(model.pbx.ami)
    # Retention is one job for the whole store (each row's WAV in its own node's spool).
    retention = Periodic("retention", rec.purge_interval, partial(purge, db, rec, spools=settings.node_spools()))
    listeners: list[Listener] = []
    spools: list[Spool] = []
    # One pool for all nodes' recordings: `workers` WAVs stored at once on this machine, whatever their node.
    pool = ThreadPoolExecutor(rec.workers, thread_name_prefix="recordings")
    metrics.serve(metrics.LISTENER, settings.metrics.host, settings.metrics.listener_port)
    try:
        for node in nodes:
            ami = settings.ami.model_copy(update={"node": node.name, "cel_file": node.cel_file,
                                                  "timezone": node.timezone or settings.ami.timezone})
            node_rec = rec.model_copy(update={"spool": node.spool})
            store = CallLogStore(db, node.name, directory)
            # start_due returns at once: the pool stores the WAVs while the next scans hand it new ones.
            jobs = [Periodic(f"recordings {node.name}", rec.scan_interval,
                             RecordingWorker(node_rec, db, node.name, pool).start_due)]
            spool = Spool(spool_path(options.spool_dir, settings.db.url, node.name), options.spool_max_bytes)
            spools.append(spool)
            cel_file = CelFile(node.cel_file, options.backfill_chunk_lines, options.backfill_chunk_bytes)
            listeners.append(Listener(ami, node.ami, store, Backfill(cel_file, store), spool, options=options,
                                      jobs=[*jobs, retention] if not listeners else jobs, prepare=prepare))
        if len(nodes) > 1:
            log.info("listen: following %d Asterisk nodes: %s", len(nodes),
                     ", ".join(f"{node.name} (AMI {node.ami})" for node in nodes))
        collect_for_throughput()
        asyncio.run(run_listeners(listeners))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # the WAVs being stored finish; queued ones wait for a restart
        for spool in spools:
            spool.close()
    return 0


async def run_listeners(listeners: Sequence[Any]) -> None:
    """Run every node's listener (each keeps its own AMI session up; none stops the others) until SIGINT or
    SIGTERM (what systemd and ``callcenter run`` stop it with): either cancels them, and each spools what it has
    read from AMI but not yet spooled before the process ends. (Python's default for SIGTERM ends the process at
    once: the events waiting in the queue were lost, and only a readable CEL file could bring them back.)"""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await asyncio.gather(*(listener.run() for listener in listeners))
    except asyncio.CancelledError:
        log.info("listen: stopped; what was read from AMI is in the spool")


def _once(work: Callable[[], None] | None) -> Callable[[], None] | None:
    """``work`` made safe to call from every node's delivery: it runs until it succeeds once, one at a time."""
    if work is None:
        return None
    lock = threading.Lock()
    done = False

    def run() -> None:
        nonlocal done
        with lock:
            if not done:
                work()
                done = True

    return run


def _migrate_or_defer(url: str) -> Callable[[], None] | None:
    """Migrate now; if the database cannot be reached, say so and return the migration for the listener to run
    before it stores anything: it starts anyway, reading AMI into its spool, because Asterisk does not wait."""
    from sqlalchemy.exc import OperationalError

    from callcenter.store.migrate import upgrade

    try:
        upgrade(url)
    except OperationalError as exc:
        log.error("listen: the database is unreachable (%s); CEL events are spooled until it is back", exc.orig)
        return partial(upgrade, url)
    return None


def cmd_ivr(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Run the FastAGI IVR server until interrupted."""
    from callcenter.model.watch import ModelWatch
    from ivr.cases import StoredCases
    from ivr.server import serve

    serve(ModelWatch(settings.model_file, model).current,
          cases=StoredCases(settings.db.url, settings.api.default_timezone),
          metrics=(settings.metrics.host, settings.metrics.ivr_port))
    return 0


def cmd_api(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Run the web app and the API (uvicorn) until interrupted."""
    import uvicorn

    from callcenter.api.app import create_app
    from callcenter.cli.users import ensure_first_admin
    from callcenter.model.watch import ModelWatch
    from callcenter.store.db import Database
    from callcenter.store.migrate import upgrade

    if _refused(settings):
        return 2
    upgrade(settings.db.url)
    db = Database(settings.db.url, settings.db.connect_timeout)
    welcome = ensure_first_admin(db)
    if welcome:
        print(f"callcenter: {welcome}", flush=True)
    app = create_app(settings, db, ModelWatch(settings.model_file, model).current)
    uvicorn.run(app, host=settings.api.host, port=settings.api.port, log_level="info", server_header=False)
    return 0


def cmd_notify(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Tell departments of forwarded and overdue cases (e-mail, webhook) from the outbox, retrying until
    delivered."""
    from callcenter.model.watch import ModelWatch
    from callcenter.notify.senders import SmtpSender, WebhookSender
    from callcenter.notify.worker import Notifier
    from callcenter.ops import metrics
    from callcenter.store.db import Database
    from callcenter.store.migrate import upgrade

    if _refused(settings):
        return 2
    upgrade(settings.db.url)
    webhook = WebhookSender(settings.notify)
    notifier = Notifier(Database(settings.db.url, settings.db.connect_timeout),
                        ModelWatch(settings.model_file, model).current, settings.notify,
                        {"email": SmtpSender(settings.notify, settings.api.default_timezone), "webhook": webhook})
    try:
        if args.once:
            done = notifier.run_once()
            print(f"queued {done.queued} overdue, sent {done.sent}, failed {done.failed} (retried later)")
            return 0
        metrics.serve(metrics.NOTIFY, settings.metrics.host, settings.metrics.notify_port)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        notifier.run(stop)
    finally:
        webhook.close()
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Run listener, IVR, API and the notifications worker together under one supervisor."""
    from callcenter.supervisor import supervise

    if _refused(settings):
        return 2
    print(f"callcenter: web app on http://{settings.api.host}:{settings.api.port}/ (API docs at /docs), "
          f"IVR on {model.ivr.address}, AMI {model.pbx.ami}. Place demo calls with: make demo", flush=True)
    return supervise(["listen", "ivr", "api", "notify"], settings)


def add_commands(sub: Any) -> None:
    """Register these sub-commands."""
    for name, handler in (("migrate", cmd_migrate), ("listen", cmd_listen), ("ivr", cmd_ivr), ("api", cmd_api),
                          ("run", cmd_run)):
        sub.add_parser(name, help=(handler.__doc__ or "").strip()).set_defaults(handler=handler)
    notify = sub.add_parser("notify", help=(cmd_notify.__doc__ or "").strip(),
                            description=(cmd_notify.__doc__ or "").strip() + " Settings: CALLCENTER_NOTIFY__*; "
                            "addresses: the model's [departments.*] email and webhook.")
    notify.add_argument("--once", action="store_true", help="one pass (queue overdue, send what is due), then exit")
    notify.set_defaults(handler=cmd_notify)
