"""A listener run as ``callcenter listen`` runs it (:func:`callcenter.cli.services.run_listeners`), over the fake
AMI server, with its spool's appends slow (a busy disk): it takes one event, then 50 more wait in its queue; it
says READY and waits for the parent (test_listener_stop) to stop it with a signal.

    python -m tests.unit.listener_stopped FOLDER
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from callcenter.ami.events import CelEvent
from callcenter.cli.services import run_listeners
from callcenter.listener.spool import Spool
from callcenter.store.db import Database
from callcenter.store.migrate import upgrade
from tests.factories import cel
from tests.unit.fake_ami import FakeAmi
from tests.unit.listening import SECRET, ami_stream, make_listener, until

SLOW_DISK = 1.0  # seconds an append in the consumer's thread takes
appending = threading.Event()
original = Spool.append


def slow_append(self: Spool, events: Sequence[CelEvent]) -> int:
    if threading.current_thread() is not threading.main_thread():  # the consumer's (the shutdown's is not slow)
        appending.set()
        time.sleep(SLOW_DISK)
    return original(self, events)


async def main(folder: Path) -> Spool:
    url = f"sqlite:///{folder / 'db.sqlite'}"
    upgrade(url)
    Spool.append = slow_append  # type: ignore[method-assign]
    async with FakeAmi(secret=SECRET) as server:
        listener = make_listener(server, folder, Database(url))

        async def feed() -> None:
            await until(lambda: listener.sessions == 1, timeout=10, what="login")
            await server.push(ami_stream([cel("CHAN_START", 0, uniqueid="1.1", linkedid="1.1")]))
            await until(appending.is_set, timeout=10, what="the first append")
            await server.push(ami_stream([cel("CHAN_START", n, uniqueid=f"{n}.1", linkedid=f"{n}.1")
                                          for n in range(2, 52)]))
            await until(lambda: listener.queue.qsize() == 50, timeout=10, what="50 events queued")
            print("READY", flush=True)

        feeding = asyncio.create_task(feed())
        await run_listeners([listener])
        feeding.cancel()
    return listener.spool


if __name__ == "__main__":
    # As cmd_listen: the spool is closed once asyncio.run has waited for the appends still running in threads.
    asyncio.run(main(Path(sys.argv[1]))).close()
