"""The listener process's garbage-collection policy: fewer, cheaper scans, but reference cycles still go. Run in
a child process, so this test process keeps Python's own collector settings."""

from __future__ import annotations

import json
import subprocess
import sys

from callcenter.settings import PROJECT_ROOT

CHILD = """
import gc, json, weakref
from callcenter.listener.service import collect_for_throughput

before = gc.get_threshold()
collect_for_throughput()

class Node:
    pass

gone = []
def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a  # only the cycle collector can free these
    weakref.finalize(a, gone.append, "freed")

cycle()
kept = [[] for _ in range(30_000)]  # containers kept alive: their count alone triggers a young collection
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count(),
                  "gone": gone}))
"""


def test_the_policy_freezes_start_up_objects_scans_less_often_and_still_frees_cycles() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    found = json.loads(out)
    assert found["before"][0] < 10_000 and found["after"] == [10_000, 10, 10]
    assert found["frozen"] > 1_000  # modules and the like: out of every later scan
    assert found["gone"] == ["freed"]  # a cycle made after the freeze is still collected, by allocations alone
