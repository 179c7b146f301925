"""Write a complete Asterisk configuration folder: the hand-written files of ``asterisk-conf/`` plus the files
rendered from the model. Secret-bearing files are created with mode 0600 from the start (no window in which
another local user could read them) and every file is replaced atomically, so a reload never reads half a file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from callcenter.asterisk.render import render
from callcenter.model.hotline import HotlineModel
from callcenter.settings import PROJECT_ROOT, Settings

SOURCE = PROJECT_ROOT / "asterisk-conf"
SANDBOX_SOURCE = SOURCE / "sandbox"  # the sandbox's own dialplan (a plain PBX context for tests)


def write_file(path: Path, text: str, mode: int) -> None:
    """Create ``path`` with ``text`` and ``mode`` atomically (temporary file in the same folder, then rename)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def hand_written(sandbox: bool) -> dict[str, Path]:
    """The hand-written files to install, by name (the sandbox's own files only in the sandbox)."""
    files = {path.name: path for path in sorted(SOURCE.glob("*.conf"))}
    if sandbox:
        files.update({path.name: path for path in sorted(SANDBOX_SOURCE.glob("*.conf"))})
    return files


def with_systemname(text: str, systemname: str) -> str:
    """asterisk.conf with ``systemname`` set in its [options] (call ids then start with ``<systemname>-``)."""
    head, found, rest = text.partition("[options]\n")
    if not found:
        raise ValueError("asterisk.conf has no [options] section for the systemname")
    return f"{head}{found}systemname = {systemname}            ; this node's name, the prefix of its call ids\n{rest}"


def install(target: Path, model: HotlineModel, settings: Settings, sandbox: bool,
            source: str = "hotline.toml") -> list[str]:
    """Write the whole configuration into ``target`` (created if missing); return the file names written.

    Files that were generated before but are no longer produced stay untouched (a deployment may keep its own
    files in the same folder)."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, path in hand_written(sandbox).items():
        text = path.read_text(encoding="utf-8")
        if name == "asterisk.conf" and settings.pbx.systemname:
            text = with_systemname(text, settings.pbx.systemname)
        write_file(target / name, text, 0o644)
        written.append(name)
    for name, rendered in render(model, settings, sandbox, source).items():
        write_file(target / name, rendered.text, 0o600 if rendered.secret else 0o644)
        written.append(name)
    return written
