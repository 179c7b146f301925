"""Recording paths through the real sandbox that the plain answered call does not take: a call-back the operator
transfers, and a citizen transferred to a hotline number (the [hotline] dialplan, and its recording, a second
time). Each must end up as stored audio covering the whole conversation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydub import AudioSegment
from sqlalchemy import select

from callcenter.desk import callback
from callcenter.model.contract import RecordingStatus
from callcenter.sandbox.baresip import SipAgent
from callcenter.store.db import Database
from callcenter.store.models import Call, Recording
from tests.integration.conftest import (
    CEL,
    MODEL,
    SETTINGS,
    ListenerProcess,
    caller_number,
    cli,
    wait_cel,
    wait_for_calls,
    wait_until,
)

pytestmark = pytest.mark.sandbox
WAV_BYTES_A_SECOND = 16_000  # MixMonitor's 8 kHz 16-bit mono


def recorded_seconds(linkedid: str) -> float:
    """How much audio the call's WAVs in the spool hold so far, all together."""
    return sum(path.stat().st_size for path in (SETTINGS.recordings.spool / linkedid).glob("*.wav")) / (
        WAV_BYTES_A_SECOND)


def stored(db: Database, linkedid: str) -> list[Recording]:
    """The call's recordings once none is waiting in the spool any more: each stored (or found empty)."""
    with db.session() as session:
        rows = list(session.scalars(select(Recording).where(Recording.linkedid == linkedid)))
    settled = {RecordingStatus.STORED, RecordingStatus.EMPTY}
    spool_empty = not list((SETTINGS.recordings.spool / linkedid).glob("*.wav"))
    return rows if rows and spool_empty and all(row.status in settled for row in rows) else []


def silent_seconds(recording: Path) -> list[int]:
    """The whole seconds of a stored recording (first and last left out) without the agents' tone."""
    audio = AudioSegment.from_file(recording).set_channels(1).set_frame_rate(8000).set_sample_width(2)
    return [second for second in range(1, int(audio.duration_seconds) - 1)
            if audio[second * 1000:(second + 1) * 1000].rms < 200]


def test_a_call_back_the_operator_transfers_is_recorded_to_its_end_and_gives_the_citizen_no_transfer_codes(
        db: Database, listener: ListenerProcess, agents: Callable[..., SipAgent], tmp_path: Path) -> None:
    number = caller_number()
    citizen = agents("citizen12", register=True, wav_seconds=120)  # answers at once, talks until hung up on
    cli(f"database put sandbox-pstn {number} citizen12")
    try:
        phone = agents("op101", register=True, wav_seconds=120)  # the operator's own phone, answers at once
        colleague = agents("op201", register=True, wav_seconds=4)  # hangs up 4 s after answering
        linkedid = callback.new_linkedid()
        asyncio.run(callback.originate(SETTINGS, MODEL, "op101", number, "02621022", "none", linkedid))
        citizen.wait_event("CALL_ESTABLISHED", 20)
        wait_until(lambda: recorded_seconds(linkedid) >= 3, 20, "3 s of the call-back recorded")
        phone.command("transfer", "sip:op201@127.0.0.1:5060")  # blind transfer of the citizen, by REFER
        colleague.wait_event("CALL_ESTABLISHED", 20)
        after = time.monotonic()
        # Transferred, the citizen's channel dials op201 ([dial-operator]): the transfer codes are not theirs
        # (a code fires only when its digits come within a second of each other: sent in a row).
        for digit in "#1202":
            citizen.send_digit(digit)
        assert [colleague.wait_event("CALL_DTMF_START", 5)["param"] for _ in "#1202"] == list("#1202")
        colleague.wait_event("CALL_CLOSED", 20)
        talked_after = time.monotonic() - after
    finally:
        cli(f"database del sandbox-pstn {number}")
    rows = wait_until(lambda: stored(db, linkedid), 30, "the call-back's recordings stored")
    assert isinstance(rows, list)
    total = sum(row.duration_seconds or 0 for row in rows)
    # The citizen's conversation with the colleague is in the recording too, not only the operator's part.
    assert total >= 3 + talked_after - 1, (total, talked_after, [(r.uniqueid, r.duration_seconds) for r in rows])
    with db.session() as session:
        assert session.scalar(select(Call.id).where(Call.linkedid == linkedid)) is not None


def test_a_citizen_transferred_to_a_hotline_number_keeps_one_whole_recording(
        db: Database, listener: ListenerProcess, agents: Callable[..., SipAgent], tmp_path: Path) -> None:
    operator = agents("op101", register=True, wav_seconds=120)
    number = caller_number()
    citizen = agents("citizen13", wav_seconds=11, caller_number=number)  # hangs up 11 s after the PBX answers
    citizen.dial("02621022")
    operator.wait_event("CALL_ESTABLISHED", 15)
    linkedid = str(CEL.wait(number, "BRIDGE_ENTER")["linkedid"])
    # The first part longer than what is left after the transfer: a second recording into the same file would
    # overwrite it from the start and leave silence where it ended.
    wait_until(lambda: recorded_seconds(linkedid) >= 7, 20, "7 s of the conversation recorded")
    # To the other hotline line (its queue has the same operators): the citizen goes through [hotline] again.
    operator.command("transfer", "sip:1900868647@127.0.0.1:5060")
    wait_cel(number, "BRIDGE_ENTER", count=2, timeout=30)  # an operator took the citizen again
    citizen.wait_event("CALL_CLOSED", 30)
    call = wait_for_calls(db, [number])[number]
    rows = wait_until(lambda: stored(db, linkedid), 30, "the transferred call's recordings stored")
    assert isinstance(rows, list)
    assert [row.status for row in rows] == ["stored"], [(r.uniqueid, r.status) for r in rows]
    assert abs((rows[0].duration_seconds or 0) - (call.talk_seconds or 0)) < 1.5, (rows[0].duration_seconds,
                                                                                    call.talk_seconds)
    # Both parts of the conversation are there: no stretch overwritten or left silent.
    assert silent_seconds(tmp_path / "recordings" / (rows[0].path or "")) == []
