"""A TCP stand-in between the listener and Asterisk's AMI that can go silent: it stops forwarding in both
directions without closing anything (no FIN, no RST), like a dead NAT entry or a cable pulled mid-session."""

from __future__ import annotations

import selectors
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class _Pair:
    client: socket.socket
    upstream: socket.socket
    silent: bool = False


@dataclass
class SilentProxy:
    """Forwards 127.0.0.1:<port> to ``target``; :meth:`go_silent` freezes every connection open so far."""

    target: tuple[str, int]
    port: int = 0
    pairs: list[_Pair] = field(default_factory=list)

    def start(self) -> SilentProxy:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def go_silent(self) -> None:
        """Stop forwarding on every open connection, and keep the sockets open; new connections still work."""
        for pair in self.pairs:
            pair.silent = True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for pair in self.pairs:
            pair.client.close()
            pair.upstream.close()
        self._listener.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.1):
                if key.fileobj is self._listener:
                    self._accept()
                else:
                    self._forward(key.data, key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> None:
        client, _ = self._listener.accept()
        pair = _Pair(client, socket.create_connection(self.target))
        self.pairs.append(pair)
        self._selector.register(pair.client, selectors.EVENT_READ, pair)
        self._selector.register(pair.upstream, selectors.EVENT_READ, pair)

    def _forward(self, pair: _Pair, source: socket.socket) -> None:
        if pair.silent:
            self._selector.unregister(pair.client)
            self._selector.unregister(pair.upstream)  # data piles up unread: the peers see nothing at all
            return
        data = source.recv(65536)
        other = pair.upstream if source is pair.client else pair.client
        if data:
            other.sendall(data)
            return
        self._selector.unregister(pair.client)
        self._selector.unregister(pair.upstream)
        other.shutdown(socket.SHUT_WR)
