"""Drive baresip SIP user agents inside the sandbox root: test citizens that call, operators that answer.

One baresip process per SIP account, each with its own config folder inside the root, controlled over ctrl_tcp
(netstring-framed JSON). Facts this relies on are in DESIGN.md ("Facts about driving baresip in tests").
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callcenter.sandbox import port_in_use

CONFIG = """sip_listen 127.0.0.1:{sip_port}
sip_transports udp,tcp
audio_player aubridge,null1
audio_alert aubridge,null1
audio_source aufile,{wav}
audio_srate 8000
audio_channels 1
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module aubridge.so
module account.so
module menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{ctrl_port}
"""
# baresip opens SIP over TLS on sip_port+1, so agents take ports four apart and ctrl_tcp sits at +2.
_ports = itertools.count(0)
PORT_BASE = 16000
TONE_RATE = 8000  # samples a second of a test microphone (G.711's rate)


class AgentError(RuntimeError):
    """A baresip agent did not start or did not answer a command."""


def write_tone_wav(path: Path, seconds: float, freq: int = 440) -> Path:
    """Write an 8 kHz mono 16-bit WAV of a tone (a test microphone whose length fixes when the caller leaves).

    A whole number of hertz makes one second a whole number of periods, so that second is computed once and
    repeated (the same samples as computing each one): an operator's hour-long microphone takes 0.03 s to write
    instead of 17, and a test starts a dozen agents."""
    import math
    import struct

    second = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * n / TONE_RATE)))
                      for n in range(TONE_RATE))
    whole, rest = divmod(int(TONE_RATE * seconds), TONE_RATE)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(TONE_RATE)
        out.setnframes(whole * TONE_RATE + rest)  # the header is right from the start: never patched
        for _ in range(whole):
            out.writeframesraw(second)
        out.writeframesraw(second[:2 * rest])
    return path


def _netstring(payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    return str(len(body)).encode() + b":" + body + b","


def _next_ports() -> tuple[int, int]:
    while True:
        sip = PORT_BASE + 4 * (next(_ports) % 2000)
        if not any(port_in_use(port) for port in (sip, sip + 1, sip + 2)):
            return sip, sip + 2


@dataclass
class SipAgent:
    """One baresip process registered (operators) or dialing (citizens) against the sandbox Asterisk."""

    root: Path
    user: str
    password: str
    wav_seconds: float = 30.0
    display_name: str | None = None
    caller_number: str | None = None
    register: bool = False
    auto_answer: bool = True
    asterisk: str = "127.0.0.1:5060"
    transport: str = "udp"  # "udp" or "tcp": how the agent talks SIP to Asterisk
    events: list[dict[str, Any]] = field(default_factory=list)
    _proc: subprocess.Popen[bytes] | None = None
    _sock: socket.socket | None = None
    _buf: bytes = b""

    @property
    def folder(self) -> Path:
        """The agent's config folder inside the root."""
        return self.root / "tmp/ua" / f"{self.user}-{self.sip_port}"

    def account_line(self) -> str:
        """The accounts file line: display name, optional caller number, auth and answer mode."""
        name = f'"{self.display_name}" ' if self.display_name else ""
        user = self.caller_number or self.user
        params = [f"auth_user={self.user}", f"auth_pass={self.password}",
                  f"answermode={'auto' if self.auto_answer else 'manual'}",
                  f"regint={600 if self.register else 0}", "ptime=20", "audio_codecs=PCMU,PCMA"]
        # A caller's number travels in From; Asterisk still identifies the endpoint by auth_user.
        return f"{name}<sip:{user}@{self.asterisk};transport={self.transport}>;{';'.join(params)}"

    def start(self, timeout: float = 10) -> SipAgent:
        """Write the config, start baresip, connect to its control port (and wait for registration)."""
        self.sip_port, self.ctrl_port = _next_ports()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, mode=0o700)
        wav = write_tone_wav(self.folder / "mic.wav", self.wav_seconds)
        inside = "/" + str(self.folder.relative_to(self.root))
        (self.folder / "config").write_text(CONFIG.format(sip_port=self.sip_port, ctrl_port=self.ctrl_port,
                                                          wav=f"{inside}/{wav.name}"))
        # The accounts file holds the SIP password: readable by its owner only, from the moment it exists.
        fd = os.open(self.folder / "accounts", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as accounts:
            accounts.write(self.account_line() + "\n")
        log = (self.folder / "baresip.log").open("wb")
        self._proc = subprocess.Popen(["chroot", str(self.root), "baresip", "-f", inside], stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._connect(timeout)
        if self.register:
            self.wait_registered(timeout)
        return self

    def wait_registered(self, timeout: float) -> None:
        """Poll ``reginfo`` until the account is registered (the REGISTER_OK event may predate our connection)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "OK" in str(self.command("reginfo").get("data", "")):
                return
            time.sleep(0.1)
        raise AgentError(f"baresip {self.user} did not register; see {self.folder}/baresip.log")

    def _connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                return
            except OSError:
                if self._proc is not None and self._proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise AgentError(f"baresip {self.user} did not start; see {self.folder}/baresip.log")

    def _read_message(self, timeout: float) -> dict[str, Any] | None:
        assert self._sock is not None
        deadline = time.monotonic() + timeout
        while True:
            head, sep, rest = self._buf.partition(b":")
            if sep and len(rest) > int(head or 0):
                size = int(head)
                self._buf = rest[size + 1:]
                return dict(json.loads(rest[:size]))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise AgentError(f"baresip {self.user} closed its control connection")
            self._buf += chunk

    def command(self, name: str, params: str = "", timeout: float = 5) -> dict[str, Any]:
        """Send one ctrl_tcp command and return its response (events read meanwhile are kept)."""
        assert self._sock is not None
        self._sock.sendall(_netstring({"command": name, "params": params, "token": name}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._read_message(deadline - time.monotonic())
            if message is None:
                break
            if message.get("response"):
                return message
            self.events.append(message)
        raise AgentError(f"baresip {self.user}: no response to {name}")

    def wait_event(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        """Wait for an event of this type (e.g. CALL_ESTABLISHED, CALL_CLOSED, REGISTER_OK)."""
        for seen in self.events:
            if seen.get("type") == kind:
                self.events.remove(seen)
                return seen
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._read_message(deadline - time.monotonic())
            if message is None:
                break
            if message.get("type") == kind:
                return message
            if not message.get("response"):
                self.events.append(message)
        raise AgentError(f"baresip {self.user}: no {kind} within {timeout} s")

    def dial(self, number: str) -> None:
        """Call a number at the sandbox Asterisk."""
        self.command("dial", f"sip:{number}@{self.asterisk};transport={self.transport}")

    def send_digit(self, digit: str) -> None:
        """Send one DTMF digit (RFC 4733)."""
        self.command("sndcode", digit)

    def hangup(self) -> None:
        """Hang up the current call."""
        self.command("hangup")

    def hangup_quietly(self) -> None:
        """Hang up if a call is up; an agent that already quit or has no call is fine."""
        if self._sock is None:
            return
        with contextlib.suppress(AgentError, OSError):
            self.command("hangup")

    def stop(self) -> None:
        """Quit baresip and remove its folder."""
        if self._sock is not None:
            try:
                if self.register:
                    self.command("uadelall")  # un-REGISTER, so the queue stops seeing this phone at once
                    time.sleep(0.3)
                self._sock.sendall(_netstring({"command": "quit", "token": "quit"}))
            except (OSError, AgentError):
                pass
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
