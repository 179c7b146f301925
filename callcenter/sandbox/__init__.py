"""The development Asterisk sandbox: an mmdebstrap root with Asterisk 22 and baresip (see DESIGN.md)."""

import socket


def port_in_use(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
