"""Recordings benchmark: what storing a recording costs, step by step, and how many a second the worker stores.

    python -m bench.recordings [--minutes 25] [--formats opus,mp3] [--bitrate-opus 24k] [--bitrate-mp3 32k]
                               [--runs 7] [--files 20]

1. One long call (``--minutes``) through the worker's own transcode + verify, per format: multiples of real time
   per core (CPU of this process and its ffmpeg children) and stored bytes per hour.
2. One 60-s call (the load test's conversations), ``--runs`` times: CPU of the encode and of the verify (the full
   decode in this process that also gives the length, and the sha256), medians. Short calls are the worst case:
   each file pays the encode's ffmpeg process start (about 50 ms of CPU) whatever its length.
3. The worker itself: ``--files`` closed 60-s WAVs in a spool, a fresh SQLite database, stored by one worker thread
   and then by the default number (``min(2, cores)``): recordings a second (wall clock) and CPU per recording.

The test audio is a tone with pink noise, 8 kHz mono 16-bit as MixMonitor writes it, which never pauses; when
espeak-ng is installed (the IVR prompts' voice), stored bytes per hour are also given for a Vietnamese voice.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.results import record
from callcenter.settings import RecordingsSettings
from callcenter.store.db import Database
from callcenter.store.migrate import upgrade
from recordings.transcode import extension, transcode
from recordings.verify import verify
from recordings.worker import RecordingWorker
from tests.factories import speech_like_wav

CALL_SECONDS = 60.0  # the load test's conversations
SPEECH = ("Xin chào, đây là đường dây nóng của thành phố. Tôi muốn phản ánh về tình trạng rác thải trên đường Nguyễn "
          "Trãi, đã ba ngày chưa có ai thu gom. Cảm ơn anh, chúng tôi sẽ chuyển thông tin cho phòng tài nguyên và môi "
          "trường, và gọi lại cho anh khi có kết quả.")


def cpu_seconds() -> float:
    """User + system CPU of this process (all its threads) and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def long_call(folder: Path, args: argparse.Namespace) -> list[tuple[str, str]]:
    """Part 1: one ``--minutes`` call per format."""
    seconds = args.minutes * 60
    wav = speech_like_wav(folder / "call.wav", seconds)
    wav_per_hour = wav.stat().st_size * 3600 / seconds
    print(f"{args.minutes:.0f}-minute call; WAV keeps {wav_per_hour / 1e6:.1f} MB per hour")
    print(f"{'format':<14}{'x real time (wall)':>20}{'x real time per core':>22}{'MB per hour':>13}{'vs WAV':>9}")
    rows = []
    for fmt in args.formats.split(","):
        bitrate = getattr(args, f"bitrate_{fmt}")
        out = folder / f"call{extension(fmt)}"
        cpu, wall = cpu_seconds(), time.perf_counter()
        stored = verify(out, transcode(wav, out, fmt, bitrate))
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        per_hour = stored.size_bytes * 3600 / seconds
        print(f"{fmt + ' ' + bitrate:<14}{seconds / wall:>20.0f}{seconds / cpu:>22.0f}"
              f"{per_hour / 1e6:>13.1f}{wav_per_hour / per_hour:>8.0f}x")
        rows.append((f"transcode + verify, {args.minutes:.0f}-minute call, {fmt} {bitrate}",
                     f"{seconds / cpu:.0f}x real time per core, {per_hour / 1e6:.1f} MB per hour of speech "
                     f"({wav_per_hour / per_hour:.0f}x smaller than WAV)"))
    return rows


def by_step(folder: Path, args: argparse.Namespace) -> tuple[str, str]:
    """Part 2: the encode and the verify of one 60-s call, ``--runs`` times (medians of CPU milliseconds)."""
    wav = speech_like_wav(folder / "short.wav", CALL_SECONDS)
    encode, check = [], []
    for run in range(args.runs):
        out = folder / f"short-{run}.ogg"
        cpu = cpu_seconds()
        seconds = transcode(wav, out, "opus", args.bitrate_opus)
        middle = cpu_seconds()
        verify(out, seconds)
        encode.append((middle - cpu) * 1000)
        check.append((cpu_seconds() - middle) * 1000)
    total = statistics.median(a + b for a, b in zip(encode, check, strict=True))
    figure = (f"encode {statistics.median(encode):.0f} ms CPU, verify (full decode with its length, sha256) "
              f"{statistics.median(check):.0f} ms: {total:.0f} ms, {CALL_SECONDS * 1000 / total:.0f}x real time "
              f"per core")
    print(f"one {CALL_SECONDS:.0f}-s call, opus {args.bitrate_opus}, median of {args.runs}: {figure}")
    return f"one {CALL_SECONDS:.0f}-s call, opus {args.bitrate_opus}, by step (median of {args.runs})", figure


def worker(folder: Path, args: argparse.Namespace) -> tuple[str, str]:
    """Part 3: the worker storing ``--files`` closed 60-s WAVs, with one thread and with the default number."""
    wav = speech_like_wav(folder / "worker.wav", CALL_SECONDS)
    default = RecordingsSettings().workers
    figures = []
    for workers in sorted({1, default}):
        root = folder / f"workers-{workers}"
        url = f"sqlite:///{root / 'bench.db'}"
        root.mkdir()
        upgrade(url)
        settings = RecordingsSettings(spool=root / "spool", store=root / "store", workers=workers)
        for n in range(args.files):
            target = settings.spool / f"1795952249.{n}" / f"1795952249.{n}.wav"
            target.parent.mkdir(parents=True)
            shutil.copyfile(wav, target)
            target.with_name(target.name + ".done").touch()  # MixMonitor's marker: closed
        db = Database(url)
        recordings = RecordingWorker(settings, db, "bench")
        cpu, wall = cpu_seconds(), time.perf_counter()
        outcomes = recordings.run_once()
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        recordings.close()
        db.dispose()
        assert outcomes == {"stored": args.files}, outcomes
        rate = args.files / wall
        figures.append(f"{workers} worker{'s' if workers > 1 else ''}: {rate:.1f} a second "
                       f"({rate * CALL_SECONDS:.0f} {CALL_SECONDS:.0f}-s conversations at once), "
                       f"{cpu / args.files * 1000:.0f} ms CPU each")
        print(f"worker, {args.files} closed {CALL_SECONDS:.0f}-s WAVs: {figures[-1]}")
    return (f"the worker storing {args.files} closed {CALL_SECONDS:.0f}-s WAVs (SQLite; wall clock, so the "
            "machine's other load counts)", "; ".join(figures))


def speech_per_hour(folder: Path, bitrate: str) -> tuple[str, str] | None:
    """Stored bytes per hour of espeak-ng's Vietnamese voice in Opus, or None without espeak-ng."""
    if shutil.which("espeak-ng") is None:
        return None
    voice, wav, out = folder / "voice.wav", folder / "voice-8k.wav", folder / "voice.ogg"
    subprocess.run(["espeak-ng", "-v", "vi", "-s", "150", "-w", str(voice), SPEECH], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(voice), "-t", str(CALL_SECONDS * 5),
                    "-ar", "8000", "-ac", "1", "-sample_fmt", "s16", str(wav)], check=True)
    stored = verify(out, transcode(wav, out, "opus", bitrate))
    figure = f"{stored.size_bytes * 3600 / (CALL_SECONDS * 5) / 1e6:.1f} MB per hour"
    print(f"espeak-ng Vietnamese speech, opus {bitrate}: {figure}")
    return f"stored bytes per hour of speech, espeak-ng's Vietnamese voice, opus {bitrate}", figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=25.0, help="length of the long test call (default 25)")
    parser.add_argument("--formats", default="opus,mp3")
    parser.add_argument("--bitrate-opus", default="24k")
    parser.add_argument("--bitrate-mp3", default="32k")
    parser.add_argument("--runs", type=int, default=7, help="runs of the 60-s call, step by step (default 7)")
    parser.add_argument("--files", type=int, default=20, help="60-s WAVs the worker stores (default 20)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        rows = long_call(folder, args)
        speech = speech_per_hour(folder, args.bitrate_opus)
        rows += [by_step(folder, args), worker(folder, args), *([speech] if speech else [])]
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    record("recordings", rows)


if __name__ == "__main__":
    main()
