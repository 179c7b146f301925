"""``callcenter stats rebuild``: recompute the statistics summary from the call log (after rows were changed
behind the writer's back, e.g. a hand-made restore of the calls table alone)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from callcenter.model.hotline import HotlineModel
from callcenter.settings import Settings
from callcenter.store import summary
from callcenter.store.db import Database
from callcenter.store.migrate import upgrade


def cmd_stats(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Recompute the statistics summary from the calls, in one transaction (statistics pages keep answering from
    the old summary until it commits)."""
    upgrade(settings.db.url)
    db, started = Database(settings.db.url), time.perf_counter()

    def progress(step: str) -> None:
        print(f"  {step}: done, {time.perf_counter() - started:.1f} s", flush=True)

    try:
        with db.session() as session:
            rows = summary.rebuild(session, progress)
    finally:
        db.dispose()
    print(f"statistics summary rebuilt: {rows:,} rows in {time.perf_counter() - started:.1f} s")
    return 0


def add_commands(sub: Any) -> None:
    """Register the stats sub-command."""
    parser = sub.add_parser("stats", help=cmd_stats.__doc__, description=__doc__)
    parser.add_argument("action", choices=("rebuild",))
    parser.set_defaults(handler=cmd_stats)
