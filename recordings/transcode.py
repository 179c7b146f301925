"""Compress a WAV with pydub/ffmpeg (``transcode``), and what storing it needs besides: the WAV's header repaired,
its audio bytes, the copy's sha256. ``recordings.verify`` then checks the copy.

One ffmpeg process a file: about 50 ms of its CPU is the start alone (the dynamic loader binding Debian's ffmpeg to
some 200 libraries). The duration recorded is the WAV's own (its frame count: exact).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO

from pydub import AudioSegment

from recordings.files import create_private

FORMATS = {"opus": ("ogg", "libopus", ".ogg", "audio/ogg"), "mp3": ("mp3", "libmp3lame", ".mp3", "audio/mpeg")}
# libopus for MixMonitor's 8 kHz mono speech (encoded at 8 kHz: narrowband SILK, no resampling), at the configured
# bitrate (24k by default). Complexity 5 instead of libopus' 10: a third less encode CPU for the same size (within
# 3%) at this rate. 60 ms frames instead of 20: a stored recording has no latency to keep low, and fewer, larger
# packets cost 15% less CPU and 6% fewer bytes (less packet and Ogg overhead). See the README's Performance section.
OPUS_OPTIONS = ("-application", "voip", "-compression_level", "5", "-frame_duration", "60")


class TranscodeError(RuntimeError):
    """ffmpeg failed, or the compressed copy did not verify; the message says which."""


def extension(fmt: str) -> str:
    """``.ogg`` for opus, ``.mp3`` for mp3."""
    return FORMATS[fmt][2]


def media_type(fmt: str) -> str:
    """The HTTP content type of a stored format."""
    return FORMATS[fmt][3]


def require_ffmpeg() -> None:
    """Fail with what to do when ffmpeg is missing (pydub would only say "No such file")."""
    if shutil.which("ffmpeg") is None:
        raise TranscodeError("ffmpeg not found on PATH: install ffmpeg (apt-get install ffmpeg); the WAV is kept "
                             "and retried")


def transcode(source: Path | BinaryIO, target: Path, fmt: str, bitrate: str) -> float:
    """Write ``source`` (a WAV, by path or open file) compressed to a new file ``target``, 0600; return the source
    duration in seconds, exact (its frames over its rate).

    pydub holds the decoded audio (16-bit PCM: 8 kHz mono is 0.96 MB a minute) and nothing more; ffmpeg streams.
    """
    container, codec, _, _ = FORMATS[fmt]
    require_ffmpeg()
    try:
        audio = AudioSegment.from_wav(source)
        # Our own handle: pydub leaves a path it opened open when ffmpeg fails (an fd leak per failure).
        with create_private(target) as out:
            audio.export(out, format=container, codec=codec, bitrate=bitrate,
                         parameters=list(OPUS_OPTIONS) if fmt == "opus" else [])
    except Exception as exc:  # pydub raises its own CouldntEncodeError, wave errors, OSError (disk full)
        raise TranscodeError(f"transcoding to {target.name} failed: {exc}") from exc
    return float(audio.frame_count() / audio.frame_rate)


def sha256_of(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def repair_header(wav: BinaryIO) -> bool:
    """Give an open WAV the RIFF and data sizes its length implies, when they are wrong (Asterisk writes them on
    close, so a file left by a crash says 0). Returns True when the header was rewritten."""
    found, size = _data_chunk(wav), os.fstat(wav.fileno()).st_size
    if found is None:
        return False  # not a WAV at all, or no data chunk: transcoding will say so
    offset, length = found
    actual = size - offset - 8
    wav.seek(4)
    if length == actual and int.from_bytes(wav.read(4), "little") == size - 8:
        return False
    wav.seek(4)
    wav.write((size - 8).to_bytes(4, "little"))
    wav.seek(offset + 4)
    wav.write(actual.to_bytes(4, "little"))
    wav.flush()
    return True


def audio_bytes(wav: BinaryIO) -> int | None:
    """How many bytes of audio an open WAV's data chunk declares (0: a header and nothing else), None if unknown."""
    found = _data_chunk(wav)
    return None if found is None else found[1]


def _data_chunk(wav: BinaryIO) -> tuple[int, int] | None:
    """Offset and declared length of the data chunk, or None when this is no RIFF/WAVE file or it has none."""
    size = os.fstat(wav.fileno()).st_size
    wav.seek(0)
    head = wav.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    offset = 12
    while offset + 8 <= size:
        wav.seek(offset)
        chunk, length = wav.read(4), int.from_bytes(wav.read(4), "little")
        if chunk == b"data":
            return offset, length
        offset += 8 + length + (length & 1)
    return None
