"""The telephony model's tools: ``asterisk render|reload``, ``operators ...``, and the sandbox's ``sandbox``,
``simulate`` and ``recordings`` helpers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from callcenter.model.contract import DeviceType
from callcenter.model.hotline import HotlineModel, ModelError
from callcenter.settings import Settings
from callcenter.store.models import MAX_ID


def _is_sandbox(settings: Settings) -> bool:
    return settings.pbx.config_dir.resolve() == (settings.sandbox.root / "etc/asterisk").resolve()


def _install(folder: Path, model: HotlineModel, settings: Settings, sandbox: bool) -> list[str] | None:
    """Write the configuration into ``folder``; None, with one line on stderr, when the folder cannot take it."""
    from callcenter.asterisk.install import install

    if folder.exists() and not folder.is_dir():
        print(f"cannot write the Asterisk configuration to {folder}: not a folder", file=sys.stderr)
        return None
    try:
        return install(folder, model, settings, sandbox, str(settings.model_file))
    except OSError as exc:
        print(f"cannot write the Asterisk configuration to {folder}: {exc.strerror or exc}", file=sys.stderr)
        return None


def reload_asterisk(settings: Settings, model: HotlineModel) -> int:
    """Render the model into the configured Asterisk folder and reload endpoints, queues and dialplan."""
    from callcenter.ami.client import AmiError
    from callcenter.ami.control import RELOAD_MODULES, reload_modules

    if _install(settings.pbx.config_dir, model, settings, _is_sandbox(settings)) is None:
        return 2
    try:
        reload_modules(settings, model.pbx.ami)
    except (AmiError, OSError, TimeoutError) as exc:
        print(f"configuration written to {settings.pbx.config_dir}, but Asterisk was not reloaded: {exc}\n"
              "run `callcenter asterisk reload` once Asterisk is up", file=sys.stderr)
        return 1
    print(f"Asterisk reloaded ({', '.join(RELOAD_MODULES)}) from {settings.pbx.config_dir}; calls in progress go on")
    return 0


def cmd_asterisk(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Render Asterisk's configuration from the telephony model, or render and reload it."""
    if args.action == "reload":
        return reload_asterisk(settings, model)
    if args.dir is None:
        print("asterisk render needs DIR", file=sys.stderr)
        return 2
    written = _install(args.dir, model, settings, args.sandbox)
    if written is None:
        return 2
    print(f"wrote {len(written)} files to {args.dir} ({'sandbox' if args.sandbox else 'deployment'}): "
          + ", ".join(written))
    return 0


def _list_operators(model: HotlineModel) -> int:
    print(f"{'id':<10} {'extension':<10} {'device':<10} {'queues':<20} name")
    for op in model.operators.values():
        queues = ",".join(name + ("" if op.id in queue.members else " (logs in)")
                          for name, queue in model.queues.items() if queue.admits(op.id)) or "-"
        print(f"{op.id:<10} {op.extension:<10} {op.device.value:<10} {queues:<20} {op.name}")
    return 0


def cmd_operators(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """List, add or remove operators (the model file is edited, Asterisk reloaded), or show a SIP password."""
    from callcenter.asterisk.secrets import sip_password
    from callcenter.model.edit import add_operator, remove_operator

    if args.action == "list":
        return _list_operators(model)
    if args.id is None:
        print(f"operators {args.action} needs an operator ID", file=sys.stderr)
        return 2
    if args.action == "password":
        if args.id not in model.operators:
            print(f"no operator {args.id!r}", file=sys.stderr)
            return 2
        print(sip_password(settings.pbx.sip_secret, args.id))
        return 0
    try:
        if args.action == "add":
            queues = args.queue or list(model.queues)
            model = add_operator(settings.model_file, args.id, args.name or f"Operator {args.id}",
                                 args.extension or "".join(c for c in args.id if c.isdigit()),
                                 DeviceType(args.device), queues, agent=args.agent)
        else:
            model = remove_operator(settings.model_file, args.id)
    except ModelError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"operator {args.id} {'added to' if args.action == 'add' else 'removed from'} {settings.model_file}")
    return 0 if args.no_reload else reload_asterisk(settings, model)


def cmd_sandbox(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Build/start or stop the development Asterisk sandbox."""
    from callcenter.sandbox import asterisk

    root = settings.sandbox.root
    if args.action == "start":
        asterisk.provision(root, settings.sandbox.suite)
        asterisk.start(root, model, settings)
        print(f"sandbox Asterisk running: SIP udp/tcp {model.pbx.sip}, AMI {model.pbx.ami}; "
              f"CLI: chroot {root} asterisk -r")
    elif args.action == "stop":
        asterisk.stop(root)
        print("sandbox Asterisk stopped")
    else:
        running = asterisk.is_running(root)
        print("running" if running else "stopped")
        return 0 if running else 3
    return 0


def cmd_simulate(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Place real SIP calls into the sandbox hotline: topics keyed, operators answering, one caller giving up."""
    from callcenter.sandbox.simulate import simulate

    return simulate(settings, model, calls=args.calls, talk_seconds=args.talk, line=args.line)


def cmd_recordings(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Process the spool now, purge by retention, sweep for inconsistencies, or set a legal hold."""
    from callcenter.store.db import Database
    from callcenter.store.migrate import upgrade
    from recordings.cli import run

    upgrade(settings.db.url)
    return run(args, settings, Database(settings.db.url))


def _call_id(text: str) -> int:
    """A call id as typed (refused at once, exit 2, beyond what the database holds)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_ID:
        raise argparse.ArgumentTypeError(f"a call id from 1 to {MAX_ID}")
    return value


def _add_asterisk(sub: Any) -> None:
    parser = sub.add_parser("asterisk", help=cmd_asterisk.__doc__)
    parser.add_argument("action", choices=("render", "reload"),
                        help="render DIR: write a complete configuration for a deployment; reload: write it into "
                             "CALLCENTER_PBX__CONFIG_DIR and reload endpoints, queues and dialplan through AMI")
    parser.add_argument("dir", nargs="?", type=Path, help="target folder, for render")
    parser.add_argument("--sandbox", action="store_true", help="include the sandbox's test citizens and AMI user")
    parser.set_defaults(handler=cmd_asterisk)


def _add_operators(sub: Any) -> None:
    parser = sub.add_parser("operators", help=cmd_operators.__doc__)
    parser.add_argument("action", choices=("list", "add", "remove", "password"))
    parser.add_argument("id", nargs="?", help="the operator's SIP user name, e.g. op104")
    parser.add_argument("--name", help="display name (default: Operator ID)")
    parser.add_argument("--extension", help="short number colleagues dial, e.g. 104 (add: required)")
    parser.add_argument("--device", default="ip_phone", choices=[d.value for d in DeviceType if d.value != "unknown"])
    parser.add_argument("--queue", action="append", help="queue to join (repeatable; default: every queue)")
    parser.add_argument("--agent", action="store_true",
                        help="logs in and out at the operator desk (default: always in the queue)")
    parser.add_argument("--no-reload", action="store_true", help="edit the model only; reload Asterisk later")
    parser.set_defaults(handler=cmd_operators)


def add_commands(sub: Any) -> None:
    """Register these sub-commands."""
    _add_asterisk(sub)
    _add_operators(sub)
    sandbox = sub.add_parser("sandbox", help=cmd_sandbox.__doc__)
    sandbox.add_argument("action", choices=("start", "stop", "status"))
    sandbox.set_defaults(handler=cmd_sandbox)
    simulate = sub.add_parser("simulate", help=cmd_simulate.__doc__)
    simulate.add_argument("--calls", type=int, default=4, help="answered calls to place (default 4)")
    simulate.add_argument("--talk", type=float, default=15.0, help="seconds each caller talks (default 15)")
    simulate.add_argument("--line", help="hotline number to dial (default: the first line open now)")
    simulate.set_defaults(handler=cmd_simulate)
    recordings = sub.add_parser("recordings", help=cmd_recordings.__doc__)
    recordings.add_argument("action", choices=("process", "purge", "sweep", "hold", "release"),
                            help="process: store closed WAVs now; purge: apply retention; sweep: report files "
                                 "without rows, rows without files, recordings no call log claims and spool files "
                                 "off the naming contract; hold/release CALL_ID: legal hold")
    recordings.add_argument("call_id", nargs="?", type=_call_id, help="the call, for hold/release")
    recordings.set_defaults(handler=cmd_recordings)
