"""Storing a recording: the verify of a real compressed copy (it refuses a damaged or truncated one, and needs no
ffmpeg on the machine), and how many WAVs are stored at once."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import ValidationError

from callcenter.settings import RecordingsSettings, Settings
from recordings.transcode import TranscodeError, extension, transcode
from recordings.verify import DURATION_TOLERANCE, verify
from tests.factories import speech_like_wav

SECONDS = 3.2  # Ogg pages hold about 1 s: the last one holds 0.2 s, less than the tolerance
BITRATES = {"opus": "24k", "mp3": "32k"}
REFUSED = r"does not decode cleanly|decodes to"


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Each format's copy of one WAV, made by the worker's own encode (the noise seeded: the same bytes each run)."""
    folder = tmp_path_factory.mktemp("copies")
    wav = speech_like_wav(folder / "call.wav", SECONDS, seed=1)
    made = {}
    for fmt, bitrate in BITRATES.items():
        target = folder / f"call{extension(fmt)}"
        assert transcode(wav, target, fmt, bitrate) == SECONDS
        made[fmt] = target.read_bytes()
    return made


def _copy(tmp_path: Path, fmt: str, data: bytes) -> Path:
    path = tmp_path / f"copy{extension(fmt)}"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("fmt", BITRATES)
def test_a_sound_copy_verifies_without_ffmpeg_on_the_machine(copies: dict[str, bytes], fmt: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # the verify decodes in this process
    path = _copy(tmp_path, fmt, copies[fmt])
    stored = verify(path, SECONDS)
    assert (stored.duration_seconds, stored.size_bytes) == (SECONDS, len(copies[fmt]))
    assert stored.sha256 == hashlib.sha256(copies[fmt]).hexdigest()


@pytest.mark.parametrize("fmt", BITRATES)
def test_a_copy_whose_length_differs_from_the_wavs_is_refused(copies: dict[str, bytes], fmt: str,
                                                              tmp_path: Path) -> None:
    path = _copy(tmp_path, fmt, copies[fmt])
    with pytest.raises(TranscodeError, match=rf"decodes to 3\.2\d s, expected {SECONDS + 0.6:.2f} s"):
        verify(path, SECONDS + DURATION_TOLERANCE + 0.1)


@pytest.mark.parametrize("fmt", BITRATES)
@pytest.mark.parametrize("keep", [0, 30, 200, 0.5, 0.8], ids=["empty", "30-bytes", "headers", "half", "80%"])
def test_a_truncated_copy_is_refused(copies: dict[str, bytes], fmt: str, keep: float, tmp_path: Path) -> None:
    data = copies[fmt]
    path = _copy(tmp_path, fmt, data[:int(keep * len(data)) if isinstance(keep, float) else keep])
    with pytest.raises(TranscodeError, match=REFUSED):
        verify(path, SECONDS)


def _pages(data: bytes) -> list[int]:
    """Where each Ogg page starts (by its header's lengths, not by searching for the pattern)."""
    starts, at = [], 0
    while at < len(data):
        assert data[at:at + 4] == b"OggS"
        starts.append(at)
        segments = data[at + 26]
        at += 27 + segments + sum(data[at + 27:at + 27 + segments])
    return starts


@pytest.mark.parametrize("cut", ["last page gone", "inside the last page"])
def test_an_ogg_copy_cut_near_its_end_is_refused_even_when_the_length_would_pass(
        copies: dict[str, bytes], cut: str, tmp_path: Path) -> None:
    data = copies["opus"]
    last = _pages(data)[-1]
    assert data[last + 5] & 0x04  # the sound copy's last page says it ends the stream
    path = tmp_path / "call.ogg.4242.part"  # named as the worker names the copy it verifies
    path.write_bytes(data[:last] if cut == "last page gone" else data[:last + 40])
    with pytest.raises(TranscodeError, match="was cut"):
        verify(path, SECONDS)  # 0.2 s short: inside the tolerance, so only the end check refuses it


@pytest.mark.parametrize("fmt", BITRATES)
def test_a_copy_with_a_block_of_zeros_is_refused(copies: dict[str, bytes], fmt: str, tmp_path: Path) -> None:
    data = bytearray(copies[fmt])
    data[len(data) // 2:len(data) // 2 + 2000] = bytes(2000)
    with pytest.raises(TranscodeError, match=REFUSED):
        verify(_copy(tmp_path, fmt, bytes(data)), SECONDS)


def test_garbage_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TranscodeError, match="does not decode cleanly"):
        verify(_copy(tmp_path, "opus", os.urandom(4000)), SECONDS)


def test_a_damaged_ogg_page_is_refused_even_when_the_length_would_pass(copies: dict[str, bytes],
                                                                      tmp_path: Path) -> None:
    """One flipped byte in the last page: FFmpeg logs the CRC failure and skips the page, 0.2 s of audio, which the
    length check alone lets through. Twice in a row: PyAV would drop a repeat of the same message."""
    data = bytearray(copies["opus"])
    data[-10] ^= 0xFF
    path = _copy(tmp_path, "opus", bytes(data))
    for _ in range(2):
        with pytest.raises(TranscodeError, match=r"does not decode cleanly: \[ogg\] CRC mismatch"):
            verify(path, SECONDS)


def test_threads_verifying_at_once_each_get_their_own_errors(copies: dict[str, bytes], tmp_path: Path) -> None:
    """The worker verifies in several threads: FFmpeg's errors are caught per thread, so a damaged copy beside a
    sound one refuses only itself."""
    damaged = bytearray(copies["opus"])
    damaged[-10] ^= 0xFF
    sound, bad = tmp_path / "sound.ogg", tmp_path / "bad.ogg"
    sound.write_bytes(copies["opus"])
    bad.write_bytes(bytes(damaged))

    def outcome(path: Path) -> str:
        try:
            verify(path, SECONDS)
        except TranscodeError:
            return "refused"
        return "stored"

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(outcome, [sound, bad] * 20))
    assert outcomes == ["stored", "refused"] * 20


def test_most_flipped_bytes_in_an_mp3_are_refused(copies: dict[str, bytes], tmp_path: Path) -> None:
    """MP3 has no checksum: its decoder conceals damage unless told to check each frame's bits (1 of these 40 is
    refused without that, and at least a quarter with it)."""
    data, refused = copies["mp3"], 0
    for n in range(40):
        damaged = bytearray(data)
        damaged[len(data) * (n + 5) // 50] ^= 0xFF
        try:
            verify(_copy(tmp_path, "mp3", bytes(damaged)), SECONDS)
        except TranscodeError:
            refused += 1
    assert refused >= 10, f"only {refused} of 40 damaged copies refused"


def test_workers_default_to_the_cores_up_to_two() -> None:
    assert RecordingsSettings().workers == min(2, os.cpu_count() or 1)


def test_workers_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_RECORDINGS__WORKERS", "3")
    assert Settings().recordings.workers == 3


@pytest.mark.parametrize("workers", [0, -1, 17])
def test_workers_out_of_range_are_refused(workers: int) -> None:
    with pytest.raises(ValidationError, match="workers"):
        RecordingsSettings(workers=workers)
