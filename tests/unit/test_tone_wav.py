"""The baresip agents' microphone: a tone of the length asked, continuous across the seconds it is built from."""

from __future__ import annotations

import math
import wave
from array import array
from pathlib import Path

from callcenter.sandbox.baresip import write_tone_wav


def test_the_tone_lasts_as_asked_and_runs_on_smoothly_from_one_second_to_the_next(tmp_path: Path) -> None:
    with wave.open(str(write_tone_wav(tmp_path / "mic.wav", 2.5)), "rb") as tone:
        assert (tone.getnchannels(), tone.getsampwidth(), tone.getframerate(), tone.getnframes()) == (1, 2, 8000,
                                                                                                     20000)
        samples = array("h", tone.readframes(tone.getnframes()))
    assert len(samples) == 20000  # the header's count is the data's
    expected = [int(8000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(len(samples))]
    assert samples.tolist() == expected
