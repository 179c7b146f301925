"""The sandbox's WebRTC test network: a network namespace for the browser, joined to this one by a veth pair.

Why: ICE lists no loopback candidates, so a browser softphone and Asterisk need a real interface between them; the
machine's own address must not be used (and its traffic must not leave the machine). So Asterisk keeps running in
this namespace on loopback (SIP, AMI) and also gets the model's ``pbx.webrtc`` address (TLS WebSocket and the
browser endpoints' RTP) on one end of a veth pair; the other end, the next address in the same /24, is the only
non-loopback interface of the namespace ``callcenter-webrtc``, where Chromium runs (``chromium_wrapper``). The
browser reaches the app's pages on its own loopback through :class:`LoopbackBridge`, so the page is a secure
context (``getUserMedia``) and may open ``wss://`` to the less private veth address (Chromium's local network access
checks block only the other way). Playwright drives Chromium over a pipe, so the namespace does not matter for
control. Everything here needs root.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import selectors
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from callcenter.model.addresses import Address

NETNS = "callcenter-webrtc"
HOST_LINK = "ccwebrtc0"  # the veth end in this namespace, carrying pbx.webrtc's address
NS_LINK = "ccwebrtc1"  # the end inside NETNS, carrying the next address: the browser's
CLONE_NEWNET = 0x40000000


class WebnetError(RuntimeError):
    """The test network could not be set up; the message says why."""


@dataclass(frozen=True)
class TestNetwork:
    """The namespace, the address Asterisk's WebRTC side has here and the browser's address inside."""

    netns: str
    host: str
    browser: str


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def needs_network(address: Address) -> bool:
    """Whether ``pbx.webrtc`` is an IP address of the sandbox's own test network (not loopback, not everywhere)."""
    try:
        ip = ipaddress.ip_address(address.host)
    except ValueError:
        return False
    return ip.version == 4 and not ip.is_loopback and not ip.is_unspecified


def ensure(address: Address) -> TestNetwork:
    """Create (or keep) the namespace and the veth pair for ``address``; idempotent. Refuses an address that some
    other interface of this machine already has (e.g. the machine's own network)."""
    host = ipaddress.ip_interface(f"{address.host}/24")
    browser = str(host.ip + 1)
    holders = _ip("-o", "-4", "addr", "show", "to", f"{host.ip}/32").stdout.split()
    if holders and holders[1] != HOST_LINK:
        raise WebnetError(f"{host.ip} is already on interface {holders[1]}: pick another pbx.webrtc address")
    if NETNS not in _ip("netns", "list").stdout.split():
        _ip("netns", "add", NETNS)
    if _ip("link", "show", HOST_LINK, check=False).returncode != 0:
        _ip("link", "add", HOST_LINK, "type", "veth", "peer", "name", NS_LINK, "netns", NETNS)
    _ip("addr", "replace", str(host), "dev", HOST_LINK)
    _ip("link", "set", HOST_LINK, "up")
    _ip("-n", NETNS, "addr", "replace", f"{browser}/24", "dev", NS_LINK)
    _ip("-n", NETNS, "link", "set", NS_LINK, "up")
    _ip("-n", NETNS, "link", "set", "lo", "up")
    return TestNetwork(NETNS, str(host.ip), browser)


def remove() -> None:
    """Delete the namespace (its veth end goes with it, and so does ours)."""
    _ip("netns", "del", NETNS, check=False)
    _ip("link", "del", HOST_LINK, check=False)


def chromium_wrapper(folder: Path, chromium: str, netns: str = NETNS) -> Path:
    """A script that runs ``chromium`` inside the namespace (Playwright's ``executable_path``)."""
    script = folder / "chromium-in-netns"
    script.write_text(f'#!/bin/sh\nexec ip netns exec {netns} {chromium} "$@"\n')
    script.chmod(0o755)
    return script


def listen_in(netns: str, port: int = 0) -> socket.socket:
    """A TCP listening socket on 127.0.0.1 inside ``netns`` (a socket stays in the namespace it was made in, so a
    short-lived thread enters the namespace, makes it and exits; the rest of the process never moves)."""
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def enter_and_listen() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/run/netns/{netns}") as handle:
                if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {netns}")
            made.append(socket.create_server(("127.0.0.1", port)))
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=enter_and_listen)
    thread.start()
    thread.join()
    if failed:
        raise WebnetError(f"cannot listen in {netns}: {failed[0]}")
    return made[0]


@dataclass
class LoopbackBridge:
    """Forwards ``127.0.0.1:port`` inside the namespace to ``127.0.0.1:port`` here (the app's pages), so the
    browser opens them at the same loopback URL the tests use."""

    port: int
    netns: str = NETNS
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> LoopbackBridge:
        self._listener = listen_in(self.netns, self.port)
        self._stop = threading.Event()
        self._threads.append(threading.Thread(target=self._accept, daemon=True))
        self._threads[0].start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        self._threads[0].join(5)

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        client.settimeout(None)
        with client, contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)) as upstream:
            selector = selectors.DefaultSelector()
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.5):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
