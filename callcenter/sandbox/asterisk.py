"""Build, configure, start and stop the sandbox Asterisk (root needed: mmdebstrap and chroot)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

from callcenter.asterisk.install import install
from callcenter.model.hotline import HotlineModel
from callcenter.sandbox import port_in_use, webnet
from callcenter.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

PROMPTS = PROJECT_ROOT / "ivr/prompts"
PROMPT_LANGUAGES = ("vi", "en")
PACKAGES = "asterisk,asterisk-modules,asterisk-core-sounds-en-wav,asterisk-moh-opsound-wav,baresip-core"
STAMP = ".callcenter-packages"  # which package list the root was built with; another list rebuilds it
# Folders Asterisk writes to that must exist before it starts (cel_custom does not create its folder). The root's
# var/run is a link to /run, absolute: written through from outside the chroot it would reach the host's /run.
RUNTIME_DIRS = ("var/log/asterisk/cel-custom", "var/spool/asterisk/monitor", "run/asterisk", "tmp")


class SandboxError(RuntimeError):
    """The sandbox could not be built or started; the message says what to do."""


def provision(root: Path, suite: str = "sid") -> None:
    """Build the root folder once with mmdebstrap; reuse it when Asterisk is already inside."""
    stamp = root / STAMP
    if stamp.exists() and stamp.read_text() == PACKAGES:
        return
    if root.exists():
        stop(root)
        shutil.rmtree(root)
    if shutil.which("mmdebstrap") is None:
        raise SandboxError("mmdebstrap is missing: run `make setup` (apt-get install mmdebstrap)")
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    log.info("building the Asterisk sandbox in %s (about 20 s)", root)
    # Check-Valid-Until: the archive's sid Release file is past its date.
    cmd = ["mmdebstrap", "--variant=minbase", "--aptopt=Acquire::Check-Valid-Until \"false\"",
           f"--include={PACKAGES}", suite, str(partial)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    (partial / STAMP).write_text(PACKAGES)
    partial.rename(root)


# What a node root does not share with the root it is made from: everything its Asterisk writes.
NODE_OWN = ("var/log/asterisk", "var/spool/asterisk", "run/asterisk", "var/lib/asterisk/astdb.sqlite3",
            "etc/asterisk")


def provision_node(root: Path, node_root: Path) -> None:
    """Another sandbox root for a second Asterisk node (multi-node tests): hard links to ``root``'s installed
    packages (no second download, little space), and its own configuration, logs, spool, astdb and runtime
    folders, so the two never write to one file. Reused while ``root``'s package list is unchanged."""
    stamp = root / STAMP
    if not stamp.exists():
        raise SandboxError(f"{root} is not provisioned: run `make asterisk` first")
    if (node_root / STAMP).exists() and (node_root / STAMP).read_text() == stamp.read_text():
        return
    if node_root.exists():
        stop(node_root)
        shutil.rmtree(node_root)
    partial = node_root.with_name(node_root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for entry in sorted(root.iterdir()):
        if entry.name not in ("tmp", STAMP):
            subprocess.run(["cp", "-al", str(entry), str(partial / entry.name)], check=True)
    for own in NODE_OWN:
        target = partial / own
        if not target.resolve().is_relative_to(partial.resolve()):  # through an absolute link: not ours
            raise SandboxError(f"{target} leads out of {partial}")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    for folder in (*RUNTIME_DIRS, "etc/asterisk"):
        (partial / folder).mkdir(parents=True, exist_ok=True)
    (partial / STAMP).write_text(stamp.read_text())
    partial.rename(node_root)


def install_config(root: Path, model: HotlineModel, settings: Settings) -> None:
    """Replace the root's /etc/asterisk with asterisk-conf/ plus what the model renders (test citizens too)."""
    etc = root / "etc/asterisk"
    shutil.rmtree(etc, ignore_errors=True)
    install(etc, model, settings, sandbox=True, source=str(settings.model_file))
    for folder in RUNTIME_DIRS:
        (root / folder).mkdir(parents=True, exist_ok=True)
    install_certificate(root, model)
    install_prompts(root)


def install_certificate(root: Path, model: HotlineModel) -> None:
    """Put a self-signed certificate for the WebRTC address where http.conf expects it (the model's tls_cert and
    tls_key, inside the root). Made once per address with openssl and kept outside /etc/asterisk, which every
    start replaces. Browsers in tests accept it by ignoring certificate errors; a deployment brings a real one."""
    host = model.pbx.webrtc.host
    keep = root / "var/lib/asterisk/keys" / f"webrtc-{host}"
    cert, key = keep.with_suffix(".crt"), keep.with_suffix(".key")
    if not (cert.exists() and key.exists()):
        keep.parent.mkdir(parents=True, exist_ok=True)
        san = f"IP:{host}" if host.replace(".", "").isdigit() or ":" in host else f"DNS:{host}"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                        "-subj", f"/CN={host}", "-addext", f"subjectAltName={san}",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    for source, target in ((cert, model.pbx.tls_cert), (key, model.pbx.tls_key)):
        inside = root / target.lstrip("/")
        inside.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, inside)
        inside.chmod(0o600 if source is key else 0o644)


def install_prompts(root: Path) -> None:
    """Copy the generated IVR prompts (``make prompts``) where Asterisk's Playback finds them (a chroot cannot
    follow links out of the root). A deployment installs them to /usr/share/asterisk/sounds/callcenter/."""
    for language in PROMPT_LANGUAGES:
        source = PROMPTS / language
        if source.is_dir():
            shutil.copytree(source, root / "usr/share/asterisk/sounds/callcenter" / language, dirs_exist_ok=True)
        else:
            log.warning("no %s prompts in %s: run `make prompts` (the IVR falls through to the queue)", language,
                        source)


def cli(root: Path, command: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    """Run one Asterisk CLI command against the sandbox (asterisk -rx)."""
    return subprocess.run(["chroot", str(root), "asterisk", "-rx", command],
                          capture_output=True, text=True, timeout=timeout)


def is_running(root: Path) -> bool:
    """True when the sandbox Asterisk answers on its control socket."""
    try:
        return cli(root, "core show version", timeout=5).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def start(root: Path, model: HotlineModel, settings: Settings, boot_timeout: float = 60) -> None:
    """Start Asterisk in the root (or reload it when it already runs) and wait until fully booted."""
    install_config(root, model, settings)
    if webnet.needs_network(model.pbx.webrtc):  # Asterisk binds the WebRTC address at start: it must exist
        webnet.ensure(model.pbx.webrtc)
    if is_running(root):
        cli(root, "core reload")
        log.info("sandbox Asterisk already running: configuration reloaded")
        return
    if port_in_use(model.pbx.ami.port):
        raise SandboxError(f"port {model.pbx.ami.port} is taken by another process (another checkout's sandbox? "
                           "stop it with its `make asterisk-stop`)")
    logfile = (root / "var/log/asterisk/console.log").open("ab")
    subprocess.Popen(["chroot", str(root), "asterisk", "-f", "-n"], stdin=subprocess.DEVNULL,
                     stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
    wait_booted(root, boot_timeout)


def wait_booted(root: Path, timeout: float) -> None:
    """Block until Asterisk reports fully booted, or raise with where to look."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_running(root) and cli(root, "core waitfullybooted", timeout=timeout).returncode == 0:
            log.info("sandbox Asterisk is fully booted")
            return
        time.sleep(0.3)
    raise SandboxError(f"Asterisk did not boot in {timeout:.0f} s; see {root}/var/log/asterisk/console.log")


def pid(root: Path) -> int | None:
    """The PID of the Asterisk running in this root (found by its root folder: never another checkout's), or None.

    Asterisk in the foreground (``-f``) writes no PID file."""
    wanted = str(root.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "asterisk" and os.readlink(entry / "root") == wanted:
                return int(entry.name)
        except OSError:
            continue
    return None


def stop(root: Path, timeout: float = 20) -> None:
    """Stop the sandbox Asterisk if it runs."""
    if not is_running(root):
        return
    cli(root, "core stop now")
    deadline = time.monotonic() + timeout
    while is_running(root) and time.monotonic() < deadline:
        time.sleep(0.2)


def restart_clean(root: Path, model: HotlineModel, settings: Settings) -> None:
    """Restart with an empty astdb: no phone registrations or queue state left from earlier runs."""
    stop(root)
    (root / "var/lib/asterisk/astdb.sqlite3").unlink(missing_ok=True)
    start(root, model, settings)
