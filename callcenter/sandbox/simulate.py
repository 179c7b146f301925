"""``callcenter simulate``: real SIP calls from test citizens into the sandbox hotline, answered by operators."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from callcenter.sandbox.accounts import CITIZENS, HOTLINES, OPERATORS
from callcenter.sandbox.asterisk import is_running
from callcenter.sandbox.baresip import AgentError, SipAgent
from callcenter.settings import Settings

DEMO_CALLERS = (
    ("Nguyễn Thị Quỳnh Mai", "0912345678"), ("Trần Văn Đức", "0987654321"), ("Lê Hoàng Yến", "0903111222"),
    ("Phạm Minh Tuấn", "0934555666"), ("Võ Thị Thu Hằng", "0977888999"), ("Đặng Quốc Bảo", "0868123456"),
    ("Bùi Thanh Hương", "0356789012"), ("Huỳnh Ngọc Ánh", "0708246810"), ("Đỗ Gia Khánh", "0822468024"),
)


def place_call(root: Path, password: str, citizen: str, line: str, talk_seconds: float) -> str:
    """One call from a citizen agent; returns a one-line outcome. The WAV's length fixes when it hangs up."""
    name, number = random.choice(DEMO_CALLERS)
    agent = SipAgent(root, citizen, password, wav_seconds=talk_seconds, display_name=name, caller_number=number)
    try:
        agent.start()
        agent.dial(line)
        agent.wait_event("CALL_ESTABLISHED", 15)
        agent.wait_event("CALL_CLOSED", talk_seconds + 130)
        return f"{name} <{number}> -> {line}: done"
    except AgentError as exc:
        return f"{name} <{number}> -> {line}: {exc}"
    finally:
        agent.stop()


def simulate(settings: Settings, calls: int, talk_seconds: float, line: str, concurrency: int) -> int:
    """Register operators, place ``calls`` calls ``concurrency`` at a time, print progress as they end."""
    root = settings.sandbox.root
    if line not in HOTLINES:
        print(f"unknown hotline {line}; use one of {', '.join(HOTLINES)}")
        return 2
    if not is_running(root):
        print("the sandbox Asterisk is not running: start it with `make asterisk`")
        return 2
    width = max(1, min(concurrency, len(OPERATORS), len(CITIZENS)))
    password = settings.sandbox.sip_password
    operators = [SipAgent(root, op, password, wav_seconds=3600, register=True).start() for op in OPERATORS[:width]]
    print(f"{width} operator(s) registered: {', '.join(op.user for op in operators)}", flush=True)
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=width) as pool:
            jobs = [pool.submit(place_call, root, password, CITIZENS[n % width], line, talk_seconds)
                    for n in range(calls)]
            for done, job in enumerate(jobs, 1):
                print(f"[{done}/{calls}] {job.result()} ({time.monotonic() - started:.0f} s)", flush=True)
    finally:
        for op in operators:
            op.stop()
    print(f"{calls} call(s) placed. The listener logs each within seconds of its end: "
          f"curl http://{settings.api.host}:{settings.api.port}/api/calls")
    return 0
