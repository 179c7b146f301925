"""A listener run as ``callcenter listen`` runs it (:func:`callcenter.cli.services.run_listeners`), over the fake
AMI server, with its consumer's spool append held (a busy disk) until the shutdown spools: it takes one event,
then 50 more wait in its queue; it says READY and waits for the parent (test_listener_stop) to stop it with a
signal. (The append was once slowed by a fixed second: on a loaded machine the 50 arrived after it and never
queued up together.)

    python -m tests.unit.listener_stopped FOLDER
"""

from __future__ import annotations

import asyncio
import sys
import threading
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

HELD_AT_MOST = 60.0  # seconds the consumer's append waits for the shutdown's (a test stuck ends, failing)
appending = threading.Event()
shutdown_appended = threading.Event()
original = Spool.append


def held_append(self: Spool, events: Sequence[CelEvent]) -> int:
    if threading.current_thread() is threading.main_thread():  # the shutdown's: it spools the queue, then frees
        try:  # the consumer's append
            return original(self, events)
        finally:
            shutdown_appended.set()
    appending.set()
    shutdown_appended.wait(HELD_AT_MOST)
    return original(self, events)


async def main(folder: Path) -> Spool:
    url = f"sqlite:///{folder / 'db.sqlite'}"
    upgrade(url)
    Spool.append = held_append  # type: ignore[method-assign]
    async with FakeAmi(secret=SECRET) as server:
        listener = make_listener(server, folder, Database(url))
        queued: list[CelEvent] = []  # the CEL events queued (the queue also takes the session's markers)
        enqueue = listener._enqueue

        def counted(item: object) -> None:
            if isinstance(item, CelEvent):
                queued.append(item)
            enqueue(item)

        listener._enqueue = counted  # type: ignore[method-assign]

        async def feed() -> None:
            try:
                await until(lambda: listener.sessions == 1, timeout=10, what="login")
                await server.push(ami_stream([cel("CHAN_START", 0, uniqueid="1.1", linkedid="1.1")]))
                await until(appending.is_set, timeout=10, what="the first append")
                await server.push(ami_stream([cel("CHAN_START", n, uniqueid=f"{n}.1", linkedid=f"{n}.1")
                                              for n in range(2, 52)]))
                await until(lambda: len(queued) == 51, timeout=10, what="50 more events queued")
            except Exception as exc:  # the parent waits for a line: it gets this one, not a hang
                print(f"FAILED {exc!r}", flush=True)
                raise
            print("READY", flush=True)

        feeding = asyncio.create_task(feed())
        await run_listeners([listener])
        feeding.cancel()
    return listener.spool


if __name__ == "__main__":
    # As cmd_listen: the spool is closed once asyncio.run has waited for the appends still running in threads.
    asyncio.run(main(Path(sys.argv[1]))).close()
