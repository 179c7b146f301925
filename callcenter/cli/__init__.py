"""The ``callcenter`` command: one sub-command per process, plus the telephony model's and the sandbox's tools.

Each sub-command is a composition root: it builds the settings, loads the telephony model (a bad model stops
every command with the list of problems), and builds the parts it runs. Nothing else constructs them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from callcenter.cli import backup, pbx, services, stats, users
from callcenter.model.hotline import HotlineModel, ModelError, load
from callcenter.settings import Settings

log = logging.getLogger("callcenter")


def settings_for(args: argparse.Namespace) -> Settings:
    """The settings, with ``--db`` and ``--model`` from the command line over the environment."""
    settings = Settings()
    if getattr(args, "db", None):
        settings.db.url = args.db
    if getattr(args, "model", None):
        settings.model_file = args.model
    return settings


def _database_url(text: str) -> str:
    """``--db`` as typed, refused at once (exit 2, one line) unless it is a URL of a database the store runs on."""
    try:
        backend = make_url(text).get_backend_name()
    except ArgumentError:
        backend = ""
    if backend not in ("sqlite", "postgresql"):
        raise argparse.ArgumentTypeError("not a database URL such as sqlite:///callcenter.db or "
                                         "postgresql+psycopg://user:password@host/callcenter")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="callcenter", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Settings come from CALLCENTER_* environment variables (see README); "
                                            "the telephony model from hotline.toml (CALLCENTER_MODEL_FILE).")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="DEBUG, INFO, WARNING, ERROR (default INFO)")
    parser.add_argument("--db", type=_database_url, help="database URL (overrides CALLCENTER_DB__URL)")
    parser.add_argument("--model", type=Path, help="telephony model file (overrides CALLCENTER_MODEL_FILE)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    services.add_commands(sub)
    pbx.add_commands(sub)
    users.add_commands(sub)
    backup.add_commands(sub)
    stats.add_commands(sub)
    return parser


def _model(settings: Settings) -> HotlineModel | None:
    try:
        return load(settings.model_file)
    except ModelError as error:
        print(f"callcenter: {error}", file=sys.stderr)
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``callcenter`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin at every start otherwise
    settings = settings_for(args)
    model = _model(settings)
    if model is None:
        return 2
    try:
        return int(args.handler(args, settings, model))
    except KeyboardInterrupt:
        return 130
