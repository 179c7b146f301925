"""deploy/: the systemd units pass ``systemd-analyze verify`` with no warning, say what the production guide says
(restarts, the environment file, the callcenter user, the hardening), and the hardening does not break the
processes: ``MemoryDenyWriteExecute`` is tried for real with the kernel's same rule (PR_SET_MDWE)."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from callcenter.settings import PROJECT_ROOT
from recordings.transcode import extension, transcode
from tests.factories import free_port, speech_like_wav

DEPLOY = PROJECT_ROOT / "deploy"
UNITS = sorted(DEPLOY.glob("callcenter-*.service"))
INSTALLED = "/opt/callcenter/.venv/bin/callcenter"  # where the units expect the venv's entry point
CALLCENTER = Path(sys.executable).parent / "callcenter"
HARDENING = ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
             "PrivateDevices=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes",
             "ProtectControlGroups=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "RestrictNamespaces=yes",
             "LockPersonality=yes", "MemoryDenyWriteExecute=yes", "SystemCallFilter=@system-service",
             "CapabilityBoundingSet=")
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    """The units with ExecStart pointing at this venv's ``callcenter`` (verify wants a real executable)."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: scripts/system-deps.sh installs the systemd package")
    for unit in [*UNITS, DEPLOY / "callcenter.target"]:
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED, str(CALLCENTER)))
    return tmp_path


def test_there_is_a_unit_per_process() -> None:
    assert [unit.name for unit in UNITS] == ["callcenter-api.service", "callcenter-ivr.service",
                                             "callcenter-listen.service", "callcenter-notify.service"]


def test_the_units_verify_without_a_warning(rendered: Path) -> None:
    names = [str(path) for path in sorted(rendered.iterdir())]
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("unit", UNITS, ids=lambda path: path.stem)
def test_each_unit_restarts_runs_as_callcenter_and_is_hardened(unit: Path, rendered: Path) -> None:
    lines = set(unit.read_text().splitlines())
    command = unit.stem.removeprefix("callcenter-")
    assert {f"ExecStart={INSTALLED} {command}", "Restart=always", "RestartSec=2", "User=callcenter",
            "EnvironmentFile=/etc/callcenter/env", "StateDirectory=callcenter", *HARDENING} <= lines
    assert any(line.startswith("ReadWritePaths=") for line in lines)
    score = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(rendered / unit.name)],
                           capture_output=True, text=True, timeout=60)
    print(unit.name, [line for line in score.stdout.splitlines() if "Overall exposure" in line])  # not asserted


def _refuse_exec_gain() -> None:
    """In the child before exec: no memory may become writable and executable (inherited across exec), as
    systemd's MemoryDenyWriteExecute does with a seccomp filter."""
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        os._exit(99)


@pytest.fixture
def api_under_mdwe(tmp_path: Path) -> Iterator[int]:
    """``callcenter api`` over a new SQLite database, under the MDWE rule; its port."""
    port = free_port()
    env = {**os.environ, "CALLCENTER_DB__URL": f"sqlite:///{tmp_path / 'callcenter.db'}",
           "CALLCENTER_API__PORT": str(port), "CALLCENTER_API__LIVE_BOARD": "false",
           "CALLCENTER_API__READY_NEEDS_AMI": "false", "CALLCENTER_CASES__ATTACHMENTS": str(tmp_path / "files")}
    with (tmp_path / "api.log").open("wb") as log:
        proc = subprocess.Popen([str(CALLCENTER), "api"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=_refuse_exec_gain, cwd=tmp_path)
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        assert proc.returncode != 99, "the kernel has no PR_SET_MDWE"


def test_the_api_runs_with_memory_deny_write_execute(api_under_mdwe: int, tmp_path: Path) -> None:
    """Start-up migrates and hashes the first admin's password (argon2-cffi), then serves (uvicorn, psycopg's and
    SQLAlchemy's compiled parts loaded)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            response = httpx.get(f"http://127.0.0.1:{api_under_mdwe}/readyz", timeout=5)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, (tmp_path / "api.log").read_text()
            time.sleep(0.2)
    assert response.status_code == 200, response.text
    assert "first administrator" in (tmp_path / "api.log").read_text()
    assert httpx.get(f"http://127.0.0.1:{api_under_mdwe}/metrics", timeout=5).status_code == 200


@pytest.mark.parametrize("codec", ["libopus", "libmp3lame"])
def test_ffmpeg_transcodes_with_memory_deny_write_execute(codec: str, tmp_path: Path) -> None:
    """The recordings worker's ffmpeg runs under the listener's rule too (children inherit it)."""
    out = tmp_path / ("out.ogg" if codec == "libopus" else "out.mp3")
    result = subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
                             "-ar", "48000", "-c:a", codec, "-b:a", "24k", str(out)], capture_output=True, text=True,
                            preexec_fn=_refuse_exec_gain, timeout=60)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 1000


@pytest.mark.parametrize("fmt", ["opus", "mp3"])
def test_the_verify_decodes_in_process_with_memory_deny_write_execute(fmt: str, tmp_path: Path) -> None:
    """The verify loads PyAV's own FFmpeg into the listener's process: it must run under the listener's rule."""
    copy = tmp_path / f"copy{extension(fmt)}"
    seconds = transcode(speech_like_wav(tmp_path / "call.wav", 2.0), copy, fmt, "32k")
    script = ("import sys; from pathlib import Path; from recordings.verify import verify; "
              "print(verify(Path(sys.argv[1]), float(sys.argv[2])).duration_seconds)")
    result = subprocess.run([sys.executable, "-c", script, str(copy), str(seconds)], capture_output=True, text=True,
                            preexec_fn=_refuse_exec_gain, cwd=PROJECT_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2.0"
