"""The ``callcenter`` command: one sub-command per process, plus set-up and demo helpers.

Each sub-command is a composition root: it builds the settings, the database and the parts it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence

from callcenter.settings import Settings

log = logging.getLogger("callcenter")


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if getattr(args, "db", None):
        settings.db.url = args.db
    return settings


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply database migrations."""
    from callcenter.store.migrate import upgrade

    settings = _settings(args)
    upgrade(settings.db.url)
    print(f"database at {settings.db.url} is up to date")
    return 0


def cmd_listen(args: argparse.Namespace) -> int:
    """Run the AMI listener until interrupted."""
    from callcenter.listener.service import Listener
    from callcenter.store.db import Database
    from callcenter.store.migrate import upgrade

    settings = _settings(args)
    upgrade(settings.db.url)

    async def main() -> None:
        await Listener(settings, Database(settings.db.url)).run()

    asyncio.run(main())
    return 0


def cmd_ivr(args: argparse.Namespace) -> int:
    """Run the FastAGI IVR server until interrupted."""
    from ivr.config import ConfigError
    from ivr.server import serve

    settings = _settings(args)
    try:
        serve(settings.ivr.host, settings.ivr.port, settings.ivr.config)
    except ConfigError as exc:
        print(f"callcenter ivr: {settings.ivr.config}: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    """Run the history API (uvicorn) until interrupted."""
    import uvicorn

    from callcenter.api.app import create_app
    from callcenter.store.db import Database
    from callcenter.store.migrate import upgrade

    settings = _settings(args)
    upgrade(settings.db.url)
    app = create_app(settings, Database(settings.db.url))
    uvicorn.run(app, host=settings.api.host, port=settings.api.port, log_level="info")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run listener, IVR and API together under one supervisor."""
    from callcenter.supervisor import supervise

    settings = _settings(args)
    print(f"callcenter: API on http://{settings.api.host}:{settings.api.port}/api/calls "
          f"(docs at /docs), IVR on {settings.ivr.host}:{settings.ivr.port}, AMI {settings.ami.host}:"
          f"{settings.ami.port}. Place demo calls with: make demo", flush=True)
    return supervise(["listen", "ivr", "api"], db=args.db)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Place real SIP calls into the sandbox hotline."""
    from callcenter.sandbox.simulate import simulate

    return simulate(_settings(args), calls=args.calls, talk_seconds=args.talk, line=args.line,
                    concurrency=args.concurrency)


def cmd_recordings(args: argparse.Namespace) -> int:
    """Process the spool now, purge by retention, sweep for inconsistencies, or set a legal hold."""
    from callcenter.store.db import Database
    from callcenter.store.migrate import upgrade
    from recordings.cli import run

    settings = _settings(args)
    upgrade(settings.db.url)
    return run(args, settings, Database(settings.db.url))


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Build/start or stop the development Asterisk sandbox."""
    from callcenter.sandbox import asterisk

    settings = _settings(args)
    root = settings.sandbox.root
    if args.action == "start":
        asterisk.provision(root, settings.sandbox.suite)
        asterisk.start(root, settings)
        print(f"sandbox Asterisk running: SIP udp/tcp 127.0.0.1:{settings.sandbox.sip_port}, AMI "
              f"{settings.ami.host}:{settings.ami.port}; CLI: chroot {root} asterisk -r")
    elif args.action == "stop":
        asterisk.stop(root)
        print("sandbox Asterisk stopped")
    else:
        running = asterisk.is_running(root)
        print("running" if running else "stopped")
        return 0 if running else 3
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="callcenter", description=__doc__,
                                     epilog="Settings come from CALLCENTER_* environment variables; see README.")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR (default INFO)")
    parser.add_argument("--db", help="database URL (overrides CALLCENTER_DB__URL)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: Sequence[tuple[str, Callable[[argparse.Namespace], int]]] = (
        ("migrate", cmd_migrate), ("listen", cmd_listen), ("ivr", cmd_ivr), ("api", cmd_api), ("run", cmd_run))
    for name, handler in commands:
        sub.add_parser(name, help=(handler.__doc__ or "").strip()).set_defaults(handler=handler)
    simulate = sub.add_parser("simulate", help=cmd_simulate.__doc__)
    simulate.add_argument("--calls", type=int, default=5, help="how many calls to place (default 5)")
    simulate.add_argument("--talk", type=float, default=8.0, help="seconds each caller talks (default 8)")
    simulate.add_argument("--line", default="02621022", help="hotline number to dial (default 02621022)")
    simulate.add_argument("--concurrency", type=int, default=3, help="calls at the same time (default 3, max 5)")
    simulate.set_defaults(handler=cmd_simulate)
    recordings = sub.add_parser("recordings", help=cmd_recordings.__doc__)
    recordings.add_argument("action", choices=("process", "purge", "sweep", "hold", "release"),
                            help="process: store closed WAVs now; purge: apply retention; sweep: report files "
                                 "without rows and rows without files; hold/release CALL_ID: legal hold")
    recordings.add_argument("call_id", nargs="?", type=int, help="the call, for hold/release")
    recordings.set_defaults(handler=cmd_recordings)
    sandbox = sub.add_parser("sandbox", help=cmd_sandbox.__doc__)
    sandbox.add_argument("action", choices=("start", "stop", "status"))
    sandbox.set_defaults(handler=cmd_sandbox)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``callcenter`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level.upper() != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin at every start otherwise
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
