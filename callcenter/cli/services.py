"""The long-running parts: ``migrate``, ``listen``, ``ivr``, ``api`` and ``run`` (all three under a supervisor)."""

from __future__ import annotations

import argparse
import asyncio
from functools import partial
from typing import Any

from sqlalchemy.engine import make_url

from callcenter.model.hotline import HotlineModel
from callcenter.settings import Settings


def cmd_migrate(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Apply database migrations."""
    from callcenter.store.migrate import upgrade

    upgrade(settings.db.url)
    print(f"database at {make_url(settings.db.url).render_as_string(hide_password=True)} is up to date")
    return 0


def cmd_listen(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Run the AMI listener (call log and recordings) until interrupted."""
    from callcenter.calls.channels import Directory
    from callcenter.listener.backfill import Backfill
    from callcenter.listener.celfile import CelFile
    from callcenter.listener.service import CallLogStore, Listener, Periodic
    from callcenter.model.watch import ModelWatch
    from callcenter.store.db import Database
    from callcenter.store.migrate import upgrade
    from recordings.retention import purge
    from recordings.worker import RecordingWorker

    upgrade(settings.db.url)
    db = Database(settings.db.url, settings.db.connect_timeout)
    node, rec = settings.ami.node, settings.recordings
    watch = ModelWatch(settings.model_file, model)
    store = CallLogStore(db, node, lambda: Directory.from_model(watch.current()))
    jobs = [Periodic("recordings", rec.scan_interval, RecordingWorker(rec, db, node).run_once),
            Periodic("retention", rec.purge_interval, partial(purge, db, rec))]
    chunks = settings.listener
    cel_file = CelFile(settings.ami.cel_file, chunks.backfill_chunk_lines, chunks.backfill_chunk_bytes)
    listener = Listener(settings.ami, model.pbx.ami, store, Backfill(cel_file, store), jobs)
    asyncio.run(listener.run())
    return 0


def cmd_ivr(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Run the FastAGI IVR server until interrupted."""
    from callcenter.model.watch import ModelWatch
    from ivr.server import serve

    serve(ModelWatch(settings.model_file, model).current)
    return 0


def cmd_api(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Run the history API (uvicorn) until interrupted."""
    import uvicorn

    from callcenter.api.app import create_app
    from callcenter.store.db import Database
    from callcenter.store.migrate import upgrade

    upgrade(settings.db.url)
    app = create_app(settings, Database(settings.db.url, settings.db.connect_timeout))
    uvicorn.run(app, host=settings.api.host, port=settings.api.port, log_level="info")
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Run listener, IVR and API together under one supervisor."""
    from callcenter.supervisor import supervise

    print(f"callcenter: API on http://{settings.api.host}:{settings.api.port}/api/calls (docs at /docs), "
          f"IVR on {model.ivr.address}, AMI {model.pbx.ami}. Place demo calls with: make demo", flush=True)
    return supervise(["listen", "ivr", "api"], settings)


def add_commands(sub: Any) -> None:
    """Register these sub-commands."""
    for name, handler in (("migrate", cmd_migrate), ("listen", cmd_listen), ("ivr", cmd_ivr), ("api", cmd_api),
                          ("run", cmd_run)):
        sub.add_parser(name, help=(handler.__doc__ or "").strip()).set_defaults(handler=handler)
