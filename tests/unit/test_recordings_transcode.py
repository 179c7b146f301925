"""The pure parts of storing a recording: the length ffmpeg says it decoded, and how many WAVs are stored at once."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from callcenter.settings import RecordingsSettings, Settings
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


def test_workers_default_to_the_cores_up_to_two() -> None:
    assert RecordingsSettings().workers == min(2, os.cpu_count() or 1)


def test_workers_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_RECORDINGS__WORKERS", "3")
    assert Settings().recordings.workers == 3


@pytest.mark.parametrize("workers", [0, -1, 17])
def test_workers_out_of_range_are_refused(workers: int) -> None:
    with pytest.raises(ValidationError, match="workers"):
        RecordingsSettings(workers=workers)
