"""Speak the manifest with espeak-ng and convert to what Asterisk plays best: 8 kHz mono 16-bit WAV.

Idempotent by content, not by clock: ``<out>/.generated.json`` remembers, for each file this tool wrote, a
fingerprint of its text and voice and the hash of the WAV. A run regenerates a file only when it is missing or
when it is still the one we generated and its text changed. A file we did not write (a studio recording with the
same name) or one changed since (a hand edit) is kept, unless ``force``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

VOICES = {"vi": "vi", "en": "en"}  # espeak-ng voices: `espeak-ng --voices=vi`
SPEED = 140  # words per minute: slower than espeak's 175, clearer on a phone line
INDEX = ".generated.json"
TOOLS = ("espeak-ng", "sox")


@dataclass(frozen=True)
class Job:
    """One file to consider: ``<lang>/<name>.wav`` saying ``text``."""

    language: str
    name: str
    text: str

    @property
    def key(self) -> str:
        """The file's path below the output folder, without the extension."""
        return f"{self.language}/{self.name}"

    @property
    def fingerprint(self) -> str:
        """What the generated audio depends on."""
        return hashlib.sha256(f"{VOICES[self.language]}|{SPEED}|{self.text}".encode()).hexdigest()


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def decide(job: Job, out: Path, index: dict[str, dict[str, str]], force: bool = False) -> str:
    """``new``, ``changed`` or ``forced`` (to generate), ``current`` or ``kept`` (to leave alone)."""
    path = out / f"{job.key}.wav"
    if not path.exists():
        return "new"
    if force:
        return "forced"
    entry = index.get(job.key)
    if entry is None or entry.get("wav") != file_hash(path):
        return "kept"  # not ours (a studio recording) or edited since: never overwrite
    return "current" if entry.get("text") == job.fingerprint else "changed"


def synthesize(job: Job, path: Path) -> None:
    """espeak-ng -> sox (8 kHz, mono, 16-bit, normalised, a short pause after) -> ``path``, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw, done = Path(tmp) / "raw.wav", Path(tmp) / "done.wav"
        subprocess.run(["espeak-ng", "-v", VOICES[job.language], "-s", str(SPEED), "-w", str(raw), "--stdin"],
                       input=job.text.encode(), check=True, capture_output=True)
        subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(done),
                        "gain", "-n", "-3", "pad", "0", "0.15"], check=True, capture_output=True)
        os.replace(done, path)


def missing_tools() -> list[str]:
    """The external programs that are not installed."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def read_index(out: Path) -> dict[str, dict[str, str]]:
    """The record of generated files, empty when absent or unreadable."""
    try:
        data = json.loads((out / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _attempt(render: Callable[[Job, Path], None], job: Job, out: Path) -> str:
    try:
        render(job, out / f"{job.key}.wav")
    except (OSError, subprocess.CalledProcessError) as error:
        stderr = getattr(error, "stderr", b"") or b""
        return f"failed ({error}; {stderr.decode(errors='replace').strip()})"
    return ""


def generate(jobs: Iterable[Job], out: Path, force: bool = False,
             report: Callable[[str, str], None] = lambda key, state: None,
             render: Callable[[Job, Path], None] = synthesize) -> dict[str, int]:
    """Bring ``out`` up to date with ``jobs``; report each file's state and return how many ended in each.

    A file that fails to generate is reported ``failed`` and left out of the index; the others are still indexed.
    """
    index = read_index(out)
    plan = {job: decide(job, out, index, force) for job in jobs}
    todo = [job for job, state in plan.items() if state in ("new", "changed", "forced")]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for job, failure in zip(todo, pool.map(lambda j: _attempt(render, j, out), todo), strict=True):
            if failure:
                plan[job] = "failed"
                report(job.key, failure)
            else:
                index[job.key] = {"text": job.fingerprint, "wav": file_hash(out / f"{job.key}.wav")}
    out.mkdir(parents=True, exist_ok=True)
    (out / INDEX).write_text(json.dumps(index, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    counts: dict[str, int] = {}
    for job, state in plan.items():
        if state != "failed":
            report(job.key, state)
        counts[state] = counts.get(state, 0) + 1
    return counts
