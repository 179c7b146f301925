"""Where each benchmark leaves its headline figures, so ``python -m bench.report`` (the end of ``make bench``) can
print one table of every benchmark's latest figures, each with when, where and by what command it was measured.

One JSON file per benchmark in ``var/bench/``: ``{"bench", "command", "measured_at", "machine", "rows": [[what,
figure], ...]}``; a new run replaces the file.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

FOLDER = Path(__file__).resolve().parent.parent / "var" / "bench"


def machine() -> str:
    """The machine in a few words: cores, memory, Python."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"


def record(bench: str, rows: list[tuple[str, str]], folder: Path = FOLDER) -> Path:
    """Keep ``rows`` (what, figure) as ``bench``'s latest figures; the command is this process's."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{bench}.json"
    command = "python -m " + " ".join([f"bench.{bench}", *sys.argv[1:]])
    path.write_text(json.dumps({"bench": bench, "command": command, "measured_at": datetime.now(UTC).isoformat(
        timespec="seconds"), "machine": machine(), "rows": [list(row) for row in rows]}, ensure_ascii=False,
        indent=1) + "\n")
    return path


def latest(folder: Path = FOLDER) -> list[dict[str, object]]:
    """Every benchmark's latest figures, by name."""
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
