"""The pure parts of storing a recording: the length ffmpeg says it decoded."""

from __future__ import annotations

import pytest

from recordings.transcode import decoded_seconds

# What ``ffmpeg -progress pipe:1`` printed for a 60-s Opus copy (ffmpeg 5.1): a block every half second, the last
# one ending ``progress=end``.
PROGRESS = """bitrate=N/A
total_size=N/A
out_time_us=5875
out_time_ms=5875
out_time=00:00:00.005875
progress=continue
bitrate=N/A
total_size=N/A
out_time_us=60000500
out_time_ms=60000500
out_time=00:01:00.000500
speed=1.33e+03x
progress=end
"""


def test_the_decoded_length_is_the_last_report() -> None:
    assert decoded_seconds(PROGRESS) == 60.0005


@pytest.mark.parametrize("report", ["", "progress=end\n", "out_time_us=N/A\nprogress=end\n"])
def test_no_decoded_length_is_none(report: str) -> None:
    assert decoded_seconds(report) is None

