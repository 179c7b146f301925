"""Recordings benchmark: transcode speed (multiples of real time, per core) and stored bytes per hour of speech.

    python -m bench.recordings [--minutes 25] [--formats opus,mp3] [--bitrate-opus 24k] [--bitrate-mp3 32k]

A speech-like WAV (tone + pink noise, 8 kHz mono 16-bit, as MixMonitor writes) goes through the worker's own
transcode + verify steps; CPU time counts this process and its ffmpeg children, so the figure is per core.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from bench.results import record
from recordings.transcode import extension, transcode, verify
from tests.factories import speech_like_wav


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=25.0, help="length of the test call (default 25)")
    parser.add_argument("--formats", default="opus,mp3")
    parser.add_argument("--bitrate-opus", default="24k")
    parser.add_argument("--bitrate-mp3", default="32k")
    args = parser.parse_args()
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory() as folder:
        wav = speech_like_wav(Path(folder) / "call.wav", seconds)
        wav_per_hour = wav.stat().st_size * 3600 / seconds
        print(f"{args.minutes:.0f}-minute call; WAV keeps {wav_per_hour / 1e6:.1f} MB per hour")
        print(f"{'format':<14}{'x real time (wall)':>20}{'x real time per core':>22}{'MB per hour':>13}{'vs WAV':>9}")
        rows = []
        for fmt in args.formats.split(","):
            bitrate = getattr(args, f"bitrate_{fmt}")
            out = Path(folder) / f"call{extension(fmt)}"
            cpu, wall = cpu_seconds(), time.perf_counter()
            stored = verify(out, transcode(wav, out, fmt, bitrate))
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            per_hour = stored.size_bytes * 3600 / seconds
            print(f"{fmt + ' ' + bitrate:<14}{seconds / wall:>20.0f}{seconds / cpu:>22.0f}"
                  f"{per_hour / 1e6:>13.1f}{wav_per_hour / per_hour:>8.0f}x")
            rows.append((f"transcode + verify, {args.minutes:.0f}-minute call, {fmt} {bitrate}",
                         f"{seconds / cpu:.0f}x real time per core, {per_hour / 1e6:.1f} MB per hour of speech "
                         f"({wav_per_hour / per_hour:.0f}x smaller than WAV)"))
    record("recordings", rows)


if __name__ == "__main__":
    main()
