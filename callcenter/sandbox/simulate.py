"""``callcenter simulate`` (``make demo``): real SIP calls that show the product working end to end.

Operators register; citizens with Vietnamese names call a line that is open now, wait for the voice menu, key a
topic, talk to an operator and hang up; one more citizen, calling while every operator is busy, gives up in the
queue. Afterwards the demo prints the call log rows it produced (topics, operators, recordings) and where to look.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from callcenter.asterisk.secrets import sip_password
from callcenter.model.contract import QUEUE_APP, IvrEvent
from callcenter.model.hotline import HotlineModel, Line
from callcenter.sandbox import port_in_use
from callcenter.sandbox.asterisk import is_running
from callcenter.sandbox.baresip import AgentError, SipAgent
from callcenter.sandbox.celwatch import CelWatch, CelWatchTimeout
from callcenter.sandbox.demo_report import report
from callcenter.settings import Settings

GIVE_UP_AFTER = 5.0  # seconds the impatient caller waits in the queue
DEMO_CALLERS = (
    ("Nguyễn Thị Quỳnh Mai", "0912345678"), ("Trần Văn Đức", "0987654321"), ("Lê Hoàng Yến", "0903111222"),
    ("Phạm Minh Tuấn", "0934555666"), ("Võ Thị Thu Hằng", "0977888999"), ("Đặng Quốc Bảo", "0868123456"),
    ("Bùi Thanh Hương", "0356789012"), ("Huỳnh Ngọc Ánh", "0708246810"), ("Đỗ Gia Khánh", "0822468024"),
)


class Demo:
    """One demo run: its settings, model, line, CEL watch and the numbers it called from."""

    def __init__(self, settings: Settings, model: HotlineModel, line: Line) -> None:
        self.settings, self.model, self.line = settings, model, line
        self.root = settings.sandbox.root
        self.watch = CelWatch(settings.ami.cel_file)
        self.numbers: list[str] = []
        self.left = threading.Event()  # the impatient caller has given up: the first callers may finish

    def agent(self, user: str, **options: object) -> SipAgent:
        """A started baresip agent for a sandbox account."""
        password = sip_password(self.settings.pbx.sip_secret, user)
        return SipAgent(self.root, user, password, asterisk=str(self.model.pbx.sip), **options).start()  # type: ignore[arg-type]

    def new_number(self) -> str:
        """A caller number for one demo call (remembered, to find its call log afterwards)."""
        number = "09" + "".join(random.choice("0123456789") for _ in range(8))
        self.numbers.append(number)
        return number

    def call(self, citizen: str, number: str, topic_digit: str, talk: float,
             busy: threading.Event | None = None, hold_on: threading.Event | None = None) -> str:
        """One citizen: dial, key a topic at the menu, talk ``talk`` seconds (and on, until ``hold_on`` is set).
        With ``busy``: key the topic only once every operator is busy, wait a little in the queue, give up."""
        name = random.choice(DEMO_CALLERS)[0]
        agent = self.agent(citizen, wav_seconds=600, display_name=name, caller_number=number)
        try:
            agent.dial(self.line.number)
            self.watch.wait(number, IvrEvent.MENU.event_name, timeout=60)
            if busy is not None and not busy.wait(120):
                return f"{name} <{number}>: the operators never got busy; hung up in the menu"
            agent.send_digit(topic_digit)
            if busy is not None:
                self.watch.wait(number, "STREAM_BEGIN", app=QUEUE_APP, timeout=60)  # hold music: waiting
                time.sleep(GIVE_UP_AFTER)
                return f"{name} <{number}>: keyed {topic_digit}, gave up after {GIVE_UP_AFTER:.0f} s in the queue"
            self.watch.wait(number, "BRIDGE_ENTER", timeout=150)
            answered = time.monotonic()
            time.sleep(talk)
            if hold_on is not None:
                hold_on.wait(120)  # keep the operator busy until the impatient caller has given up
            return (f"{name} <{number}>: keyed {topic_digit}, talked {time.monotonic() - answered:.0f} s "
                    "with an operator")
        except (AgentError, CelWatchTimeout) as exc:
            return f"{name} <{number}>: {exc}"
        finally:
            if busy is not None:
                self.left.set()
            agent.hangup_quietly()
            agent.stop()


def open_line(model: HotlineModel, wanted: str | None) -> tuple[Line | None, str]:
    """The line to call: ``wanted`` if it is open now, else the first open one; or None and why not."""
    now = datetime.now(UTC)
    if wanted:
        line = model.lines.get(wanted)
        if line is None:
            return None, f"unknown line {wanted}; the model has {', '.join(model.lines)}"
        if not line.is_open(now):
            return None, (f"line {wanted} is closed now: callers hear the working hours and may leave a voice "
                          "message or ask for a callback. Run the demo on an open line (omit --line).")
        return line, ""
    line = next((line for line in model.lines.values() if line.is_open(now)), None)
    return line, "" if line else "no line is open now: every caller would get the after-hours menu"


def _preflight(settings: Settings, model: HotlineModel) -> str:
    if not is_running(settings.sandbox.root):
        return "the sandbox Asterisk is not running: start everything with `make run` (or `make asterisk`)"
    if not port_in_use(model.ivr.address.port):
        return "the IVR is not running (no topic menu): start `make run` in another terminal first"
    return ""


def simulate(settings: Settings, model: HotlineModel, calls: int, talk_seconds: float, line: str | None) -> int:
    """Run the demo; 0 when every call went as planned, 1 when one did not, 2 when it could not start."""
    problem = _preflight(settings, model)
    chosen, why = open_line(model, line)
    if problem or chosen is None:
        print(problem or why)
        return 2
    demo = Demo(settings, model, chosen)
    queue = model.queues[chosen.queue]
    width = max(1, min(calls, len(queue.members), model.sandbox.citizens - 1))
    operators = [demo.agent(op, wav_seconds=3600, register=True) for op in queue.members[:width]]
    print(f"line {chosen.number} ({chosen.name}); {width} operator(s) registered: "
          f"{', '.join(op.user for op in operators)}", flush=True)
    topics = model.line_topics(chosen)
    try:
        outcomes = _run_calls(demo, width, calls, talk_seconds, [t.digit for t in topics])
    finally:
        for op in operators:
            op.stop()
    return report(settings, demo.numbers, outcomes)


def _run_calls(demo: Demo, width: int, calls: int, talk: float, digits: list[str]) -> list[str]:
    """The first ``width`` callers reach the operators; meanwhile one more caller, keying a topic once all of
    them are busy, gives up in the queue; the remaining callers follow as operators come free."""
    citizens = demo.model.sandbox.citizen_ids
    busy = threading.Event()
    started = time.monotonic()
    first = [demo.new_number() for _ in range(min(width, calls))]
    outcomes = []
    with ThreadPoolExecutor(max_workers=width + 2) as pool:
        jobs = [pool.submit(demo.call, citizens[n], number, digits[n % len(digits)], talk, None, demo.left)
                for n, number in enumerate(first)]
        jobs.append(pool.submit(demo.call, citizens[width], demo.new_number(), digits[0], talk, busy))
        pool.submit(_when_all_talking, demo, first, busy)
        jobs += [pool.submit(demo.call, citizens[n % width], demo.new_number(), digits[n % len(digits)], talk)
                 for n in range(width, calls)]
        for done, job in enumerate(jobs, 1):
            outcomes.append(job.result())
            print(f"[{done}/{len(jobs)}] {outcomes[-1]} ({time.monotonic() - started:.0f} s)", flush=True)
    return outcomes


def _when_all_talking(demo: Demo, numbers: list[str], busy: threading.Event) -> None:
    """Set ``busy`` once every one of ``numbers`` is bridged with an operator."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if all(demo.watch.events(number, "BRIDGE_ENTER") for number in numbers):
            busy.set()
            return
        time.sleep(0.3)
