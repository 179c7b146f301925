"""Verify a compressed copy before its WAV may go: it decodes cleanly to the end, and to the WAV's length.

The decode runs in this process with PyAV (FFmpeg's own decoders, bundled in its wheel: no ffmpeg needed on the
machine, and no process to start, which cost ffmpeg 50 ms of CPU a file). It streams packet by packet, so memory is
one packet and its frame whatever the length, and PyAV releases the GIL while FFmpeg reads, demuxes and decodes, so
the worker's threads verify side by side. A module of its own so that the API, which imports ``recordings.transcode``
for the formats, does not load FFmpeg's libraries.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from recordings.transcode import TranscodeError, sha256_of

DURATION_TOLERANCE = 0.5  # seconds
# The decoder also checks that each MP3 frame uses exactly the bits it declares ("buffer"), and frame CRCs where a
# stream has them: most single-byte damage to an MP3 (which has no checksum) is then refused instead of concealed,
# 17 to 26 of 40 flipped bytes in 3-s test files against 1 without. Sound copies never trip them; Ogg pages carry
# their own CRC, which the demuxer checks.
DECODE_OPTIONS = {"err_detect": "crccheck+bitstream+buffer"}

# FFmpeg's errors reach PyAV's log callback (``decoded_seconds`` captures them in its own thread), nothing less
# (PyAV ignores every log by default); and each one, not only the first of a run of identical messages, which PyAV
# would drop even when the repeat comes from another file: two damaged copies in a row must both be refused.
av.logging.set_level(av.logging.ERROR)
av.logging.set_skip_repeated(False)


OGG_PAGE_MAX = 27 + 255 + 255 * 255  # header, segment table, body: the longest page Ogg allows
EOS = 0x04  # the header-type flag of a stream's last page


@dataclass(frozen=True)
class Stored:
    """What the database records of a verified compressed copy."""

    duration_seconds: float
    size_bytes: int
    sha256: str


def verify(path: Path, expected_seconds: float) -> Stored:
    """Decode the whole copy and compare the length decoded with ``expected_seconds`` (the WAV's); raise
    TranscodeError if it does not decode cleanly or is off by more than DURATION_TOLERANCE.

    The duration returned is ``expected_seconds``: the copy's own may differ by the codec's padding."""
    seconds = decoded_seconds(path)
    check_ogg_end(path)
    if abs(seconds - expected_seconds) > DURATION_TOLERANCE:
        raise TranscodeError(f"{path.name}: decodes to {seconds:.2f} s, expected {expected_seconds:.2f} s")
    return Stored(duration_seconds=round(expected_seconds, 3), size_bytes=path.stat().st_size,
                  sha256=sha256_of(path))


def decoded_seconds(path: Path) -> float:
    """Decode the file's first audio stream to its end and return the seconds decoded; raise TranscodeError when
    FFmpeg raises or logs an error on the way (an Ogg page whose CRC fails is logged and skipped, not raised), or
    when the file holds no audio stream."""
    seconds = 0.0
    try:
        with av.logging.Capture() as errors, av.open(str(path)) as container:
            stream = container.streams.audio[0]
            stream.codec_context.options = DECODE_OPTIONS
            for packet in container.demux(stream):  # the last one is empty: it drains the decoder
                for frame in packet.decode():
                    seconds += frame.samples / frame.sample_rate
    except (av.FFmpegError, IndexError, ValueError) as exc:  # IndexError: no audio stream; ValueError: bad tags
        raise TranscodeError(f"{path.name} does not decode cleanly: {exc}") from exc
    if errors:
        found = "; ".join(f"[{name}] {message.strip()}" for _, name, message in errors[:3])
        raise TranscodeError(f"{path.name} does not decode cleanly: {found[:200]}")
    return seconds


def check_ogg_end(path: Path) -> None:
    """An Ogg copy (known by its content: the worker verifies ``<name>.ogg.<pid>.part``) must end with a whole page
    flagged as its stream's last (end of stream). FFmpeg decodes a file cut at a page boundary, or inside its last
    page, without a word: up to a page of sound (about a second) would be lost inside the duration tolerance. Raise
    TranscodeError otherwise; any other file passes."""
    with path.open("rb") as handle:
        if handle.read(4) != b"OggS":
            return
        size = handle.seek(0, 2)
        handle.seek(max(0, size - OGG_PAGE_MAX))
        tail = handle.read()
    at = len(tail)
    while (at := tail.rfind(b"OggS", 0, at)) >= 0:  # the last page's start (the pattern may occur in audio too)
        if at + 27 <= len(tail):
            segments = tail[at + 26]
            table = tail[at + 27:at + 27 + segments]
            if len(table) == segments and at + 27 + segments + sum(table) == len(tail):
                if not tail[at + 5] & EOS:
                    raise TranscodeError(f"{path.name} does not decode cleanly: its last Ogg page is not the "
                                         "stream's end (the file was cut)")
                return
    raise TranscodeError(f"{path.name} does not decode cleanly: it does not end with a whole Ogg page (the file "
                         "was cut)")
