"""Shared hypothesis settings for the fuzz tests: few examples, a deadline, and the same examples on every run.

``derandomize`` draws examples from a seed fixed by the test itself and ``database=None`` keeps no state
between runs, so CI and every developer see the same examples; raise ``max_examples`` locally to hunt wider.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def fuzz(max_examples: int, deadline: float = 1.0) -> settings:
    """Settings for one fuzz test: ``max_examples`` examples, each within ``deadline`` seconds."""
    return settings(max_examples=max_examples, deadline=timedelta(seconds=deadline), derandomize=True,
                    database=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])


# Text a header value may hold: any character but line ends (and lone surrogates, which no UTF-8 stream holds).
LINE_TEXT = st.characters(exclude_categories=["Cs"], exclude_characters="\r\n")
VIETNAMESE = st.sampled_from(["Nguyễn Thị Quỳnh Mai", "Trần Văn Đức", "Lê Hoàng Yến", "Phạm Ngọc Ánh", "Đặng Thu Hà"])
NAMES = VIETNAMESE | st.text(LINE_TEXT, max_size=30).map(str.strip)


def cuts(length: int) -> st.SearchStrategy[list[int]]:
    """Where to cut a stream of ``length`` bytes into reads: anywhere, inside characters too."""
    return st.lists(st.integers(0, length), max_size=40)
