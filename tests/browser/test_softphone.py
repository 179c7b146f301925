"""The operator desk's browser softphone against the real sandbox: Chromium in the WebRTC test namespace
(callcenter/sandbox/webnet.py) signs in as op301, whose desk page registers its phone over wss; a baresip citizen
calls a hotline line and keys a topic, the queue rings the browser and the page pops up the caller and topic, the
operator answers on the page, and two-way audio is checked by tone: the citizen's 440 Hz in the browser's remote
track, and both the citizen's 440 Hz and the browser's 1000 Hz in MixMonitor's recording as the listener stored it.
Hold, mute and a DTMF digit; a blind transfer to an IP desk phone (op101), an attended one to op102 and a blind one to
a department's desk phone from the model's directory; a note; and a call-back from the worklist that rings the same
browser phone and reaches a citizen."""

from __future__ import annotations

import math
import re
import struct
import time
import wave
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect
from pydub import AudioSegment
from sqlalchemy import select

from callcenter.model.contract import RecordingStatus, Role
from callcenter.sandbox import webnet
from callcenter.sandbox.baresip import AgentError, SipAgent
from callcenter.store import accounts, worklist
from callcenter.store.db import Database
from callcenter.store.models import CALL, Call, CallbackAttempt, Recording
from tests.browser.conftest import CHROMIUM, FLAGS, ServerFactory, WebServer, wait_js
from tests.integration.conftest import (
    MODEL,
    ROOT,
    IvrProcess,
    ListenerProcess,
    caller_number,
    cli,
    wait_cel,
    wait_until,
)
from tests.webclient import PASSWORD, insert_calls, synthetic_calls

pytestmark = [pytest.mark.sandbox, pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]
WAIT = 30_000  # ms: Playwright's bound on each expectation
LINE = "02621022"  # open around the clock

OPERATOR = next(op for op in MODEL.operators.values() if op.device.value == "browser")
CITIZEN_HZ, BROWSER_HZ = 440.0, 1000.0  # baresip's microphone (write_tone_wav) and the browser's fake microphone
MEDIA_FLAGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--ignore-certificate-errors"]


def tone_wav(path: Path, freq: float, seconds: float = 10.0, rate: int = 48000) -> Path:
    """A mono 16-bit tone for Chromium's fake microphone (it loops the file)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * n / rate)))
                                 for n in range(int(rate * seconds))))
    return path


def tone_power(samples: list[int], rate: int, freq: float) -> float:
    """Goertzel: the power of one frequency in the samples, normalised by their length."""
    coefficient = 2 * math.cos(2 * math.pi * freq / rate)
    previous = before = 0.0
    for sample in samples:
        previous, before = sample + coefficient * previous - before, previous
    return (previous * previous + before * before - coefficient * previous * before) / len(samples) ** 2


@pytest.fixture(scope="module")
def test_network(sandbox: Path) -> webnet.TestNetwork:
    """The namespace and veth pair (the sandbox start made them already, before Asterisk bound the address)."""
    if not webnet.needs_network(MODEL.pbx.webrtc):
        pytest.fail(f"pbx.webrtc {MODEL.pbx.webrtc} is not a test-network address; see callcenter/sandbox/webnet.py")
    return webnet.ensure(MODEL.pbx.webrtc)


@pytest.fixture(scope="module")
def phone_browser(playwright: Playwright, test_network: webnet.TestNetwork,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Chromium inside the test namespace, its microphone a 1000 Hz tone."""
    folder = tmp_path_factory.mktemp("softphone")
    wrapper = webnet.chromium_wrapper(folder, CHROMIUM, test_network.netns)
    microphone = tone_wav(folder / "mic.wav", BROWSER_HZ)
    launched = playwright.chromium.launch(
        executable_path=str(wrapper),
        args=[*FLAGS, *MEDIA_FLAGS, f"--use-file-for-fake-audio-capture={microphone}"])
    yield launched
    launched.close()


# The dominant frequency of what the browser hears (its remote track), by an analyser over two seconds.
REMOTE_FREQUENCY = """async () => {
  const context = new AudioContext();
  const source = context.createMediaStreamSource(deskPhone.options.audio.srcObject);
  const analyser = context.createAnalyser();
  analyser.fftSize = 8192;
  source.connect(analyser);
  await new Promise((done) => setTimeout(done, 2000));
  const bins = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(bins);
  let best = 0;
  for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
  await context.close();
  return [best * context.sampleRate / analyser.fftSize, bins[best]];
}"""


def open_desk(browser: Browser, server: WebServer, db: Database) -> tuple[Page, webnet.LoopbackBridge]:
    """The operator's desk at the app's loopback URL inside the namespace, signed in as the browser operator."""
    with db.session() as session:
        accounts.create_user(session, accounts.NewUser(OPERATOR.id, Role.OPERATOR, PASSWORD, operator=OPERATOR.id,
                                                       language="en"))
    bridge = webnet.LoopbackBridge(int(server.url.rsplit(":", 1)[1])).start()
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(f"{server.url}/sign-in")
    page.fill("input[name=name]", OPERATOR.id)
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/calls**")
    page.goto(f"{server.url}/desk")
    return page, bridge


def newest_recording(since: float) -> Path | None:
    spool = ROOT / "var/spool/asterisk/monitor"
    files = [path for path in spool.glob("*/*.wav") if path.stat().st_mtime >= since]
    return max(files, key=lambda path: path.stat().st_mtime) if files else None


def recorded_seconds(since: float) -> float:
    """How much the call's recording holds so far (MixMonitor writes 8 kHz 16-bit mono as it goes)."""
    found = newest_recording(since)
    return found.stat().st_size / 16000 if found else 0.0


def stored_recording(db: Database, wav: Path) -> Recording | None:
    """The row of a spool WAV (``<linkedid>/<uniqueid>.wav``) once the listener has stored its copy."""
    with db.session() as session:
        return session.scalar(select(Recording).where(Recording.linkedid == wav.parent.name,
                                                      Recording.uniqueid == wav.stem,
                                                      Recording.status == RecordingStatus.STORED))


# What the browser phone says of a transfer (JsSIP's REFER answered, accepted or failed, and why), kept in the page.
TRANSFER_OUTCOMES = """() => {
  window.transferOutcomes = [];
  for (const name of ["transferred", "transferFailed", "ended"]) {
    deskPhone.addEventListener(name, (e) => transferOutcomes.push([name, e.detail]));
  }
}"""
TRANSFER_SEEN = "() => ({state: deskPhone.state, events: transferOutcomes})"


def recording_tones(recording: Path) -> dict[float, float]:
    """Tone powers in a stored recording (decoded to MixMonitor's 8 kHz mono): each side's tone and two
    frequencies nobody sends."""
    audio = AudioSegment.from_file(recording).set_channels(1).set_frame_rate(8000)
    samples = list(audio.get_array_of_samples())
    return {hz: tone_power(samples, audio.frame_rate, hz) for hz in (CITIZEN_HZ, BROWSER_HZ, 700.0, 1500.0)}


def test_a_browser_operator_answers_on_the_desk_talks_transfers_notes_and_calls_back(
        db: Database, agents: Callable[..., SipAgent], server_factory: ServerFactory, phone_browser: Browser,
        listener: ListenerProcess, ivr: IvrProcess, tmp_path: Path) -> None:
    """The issue's whole flow on one desk page: available, rung with the screen-pop, answered, audio both ways,
    hold, mute and a DTMF digit, transferred to an IP desk phone, noted; then a call-back from the worklist (in a
    second tab) rings the same browser phone and reaches the citizen, whose call links to the request."""
    ivr.start()
    server = server_factory(CALLCENTER_API__LIVE_BOARD="true")
    page, bridge = open_desk(phone_browser, server, db)
    try:
        expect(page.locator("#phone-registration")).to_have_attribute("data-registered", "true", timeout=WAIT)
        expect(page.locator("#my-state")).to_have_attribute("data-state", "free", timeout=WAIT)
        started = time.time()
        number = caller_number()
        citizen = agents("citizen1", caller_number=number, display_name="Lê Thị Thu", wav_seconds=120)
        citizen.dial(LINE)
        wait_cel(number, "IVR_MENU")
        topic = next(t for t in MODEL.line_topics(MODEL.lines[LINE]) if t.code == "security")
        citizen.send_digit(topic.digit)
        expect(page.locator("#phone-state")).to_have_attribute("data-state", "ringing", timeout=WAIT)
        expect(page.locator("#offer-number")).to_have_text(number, timeout=WAIT)  # the pop-up, before answering
        expect(page.locator("#offer-topic")).to_have_text(topic.label.get("en"))
        page.click("#phone-answer")
        expect(page.locator("#phone-state")).to_have_attribute("data-state", "talking", timeout=WAIT)
        citizen.wait_event("CALL_ESTABLISHED", 15)
        # ICE and DTLS done (the browser's host candidate on the veth, Asterisk's on pbx.webrtc), audio playing.
        wait_js(page, "deskPhone.session.connection.connectionState === 'connected' && "
                      "!!deskPhone.options.audio.srcObject", 10)
        heard, level = page.evaluate(REMOTE_FREQUENCY)
        assert abs(heard - CITIZEN_HZ) < 15, (heard, level)
        wait_until(lambda: recorded_seconds(started) >= 3, 20, "three seconds of the conversation recorded")
        recording = newest_recording(started)

        page.click("#phone-hold")
        expect(page.locator("#phone-state")).to_have_attribute("data-state", "held", timeout=WAIT)
        page.click("#phone-hold")
        expect(page.locator("#phone-state")).to_have_attribute("data-state", "talking", timeout=WAIT)
        page.click("#phone-mute")
        expect(page.locator("#phone-mute")).to_have_attribute("aria-pressed", "true")
        page.click("#phone-mute")
        expect(page.locator("#phone-mute")).to_have_attribute("aria-pressed", "false")
        page.click('.keypad .key[data-digit="5"]')
        citizen.wait_event("CALL_DTMF_START", 10)

        # Registered only now, or the queue might have offered it the caller first
        colleague = agents("op101", register=True, wav_seconds=60)  # an IP desk phone, answers at once
        page.select_option("#transfer-target", "101")
        page.click("#phone-transfer")
        colleague.wait_event("CALL_ESTABLISHED", 20)
        expect(page.locator("#phone-state")).not_to_have_attribute("data-state", re.compile("talking|held"),
                                                                   timeout=WAIT)
        citizen.hangup()
        citizen.wait_event("CALL_CLOSED", 20)
        expect(page.locator("#note-form")).to_be_visible(timeout=WAIT)
        call = wait_until(lambda: answered_by(db, number, OPERATOR.id), 30, "the call's log row")
        assert isinstance(call, Call) and call.operators == [OPERATOR.id, "op101"]
        # Not the WAV's .done marker: the listener's recordings worker takes the WAV and its marker out of the
        # spool at its next scan after MixMonitor closes it (every 2 s; 0.4 to 2.2 s later, measured), so a test
        # that looks later (a slow step under load) waits for a marker already gone. The stored copy stays.
        assert recording is not None and recording.parent.name == call.linkedid
        stored = wait_until(lambda: stored_recording(db, recording), 30, "the recording to be stored")
        assert isinstance(stored, Recording) and stored.path
        powers = recording_tones(tmp_path / "recordings" / stored.path)
        noise = max(powers[700.0], powers[1500.0])
        assert powers[CITIZEN_HZ] > 100 * noise and powers[BROWSER_HZ] > 100 * noise, powers
        page.fill("#note-text", "Phản ánh mất trật tự; đã chuyển cho anh An (101).")
        page.click("#note-save")
        expect(page.locator("#desk-message")).to_have_text("Saved", timeout=WAIT)

        # An attended transfer: the operator calls a colleague first (the caller on hold), then joins them
        second = caller_number()
        caller = agents("citizen2", caller_number=second, wav_seconds=120)
        cli("queue pause member PJSIP/op101 queue operators")  # away (the fixture ends the pause): the browser rings
        caller.dial(MODEL.sandbox.plain_number)  # the plain dialplan's queue
        expect(page.locator("#phone-state")).to_have_attribute("data-state", "ringing", timeout=WAIT)
        page.click("#phone-answer")
        caller.wait_event("CALL_ESTABLISHED", 15)
        expect(page.locator("#phone-state")).to_have_attribute("data-state", "talking", timeout=WAIT)
        consulted = agents("op102", register=True, wav_seconds=120)  # answers at once
        page.select_option("#transfer-target", "102")
        page.click("#phone-consult")
        consulted.wait_event("CALL_ESTABLISHED", 20)
        expect(page.locator("#phone-complete")).to_be_enabled(timeout=WAIT)
        page.click("#phone-complete")
        expect(page.locator("#phone-state")).not_to_have_attribute("data-state", re.compile("talking|held"),
                                                                   timeout=WAIT)
        caller.hangup()
        caller.wait_event("CALL_CLOSED", 20)
        consulted.wait_event("CALL_CLOSED", 20)  # op102 was talking to the caller: the caller's hang-up ends it
        joined = wait_until(lambda: answered_by(db, second, OPERATOR.id), 30, "the second call's log row")
        assert isinstance(joined, Call) and joined.operators == [OPERATOR.id, "op102"] and joined.transfers == 1

        # A blind transfer to a department's desk phone from the model's directory (out through [outbound]; in
        # the sandbox a test citizen answers for the department)
        department = next(d for d in MODEL.departments.values() if d.phone)
        desk_phone = agents("citizen7", register=True, wav_seconds=120)
        cli(f"database put sandbox-pstn {department.phone} citizen7")
        try:
            cli("queue pause member PJSIP/op102 queue operators")
            third = caller_number()
            caller = agents("citizen3", caller_number=third, wav_seconds=120)
            caller.dial(MODEL.sandbox.plain_number)
            expect(page.locator("#phone-state")).to_have_attribute("data-state", "ringing", timeout=WAIT)
            page.click("#phone-answer")
            caller.wait_event("CALL_ESTABLISHED", 15)
            page.select_option("#transfer-target", department.phone)
            page.evaluate(TRANSFER_OUTCOMES)
            page.click("#phone-transfer")
            try:
                desk_phone.wait_event("CALL_ESTABLISHED", 20)
            except AgentError as exc:  # once in CI (2026-12-02) the desk phone never rang: say what the page saw
                raise AssertionError(f"{exc}; the browser phone: {page.evaluate(TRANSFER_SEEN)}") from exc
            caller.hangup()
            caller.wait_event("CALL_CLOSED", 20)
        finally:
            cli(f"database del sandbox-pstn {department.phone}")

        # A call-back from the worklist, in a second tab: the desk's phone (first tab) rings first
        request_id, left = add_request(db)
        reached = agents("citizen6", register=True, wav_seconds=60)  # the citizen, answers at once
        cli(f"database put sandbox-pstn {left} citizen6")
        try:
            worklist = page.context.new_page()
            worklist.goto(f"{server.url}/worklist")
            row = worklist.locator(f'tr[data-call="{request_id}"]')
            row.get_by_role("button", name="Take").click()
            row.get_by_role("button", name="Call back").click()
            expect(page.locator("#phone-state")).to_have_attribute("data-state", "ringing", timeout=WAIT)
            page.click("#phone-answer")
            reached.wait_event("CALL_ESTABLISHED", 20)
            expect(page.locator("#phone-hangup")).to_be_enabled(timeout=WAIT)
            page.click("#phone-hangup")  # the operator ends this one from the page
            reached.wait_event("CALL_CLOSED", 20)
            wait_until(lambda: settled(db, request_id) == "reached", 30, "the call-back's result")
        finally:
            cli(f"database del sandbox-pstn {left}")
        worklist.goto(f"{server.url}/calls/{request_id}")
        listed = worklist.locator("#callbacks tr[data-attempt]")
        expect(listed).to_contain_text("reached")
        wait_until(lambda: (worklist.reload(), listed.locator("a").count())[1], 30, "the call-back in the log")
        listed.locator("a").click()
        expect(worklist.locator("#returning")).to_contain_text(f"#{request_id}", timeout=WAIT)
    finally:
        page.evaluate("deskPhone.stop()")
        wait_until(lambda: OPERATOR.id not in cli("pjsip show contacts"), 10, "the browser to unregister")
        page.context.close()
        bridge.stop()


def answered_by(db: Database, number: str, operator: str) -> Call | None:
    with db.session() as session:
        return session.scalars(select(Call).where(CALL.caller_number == number, CALL.operator == operator,
                                                  CALL.direction == "inbound")).first()


def add_request(db: Database) -> tuple[int, str]:
    """An after-hours call-back request 30 days old (first on the worklist, oldest first, even in a long-lived sandbox
    where requests of earlier runs wait); its id and the number the caller left."""
    left = caller_number()
    row = synthetic_calls(1, datetime.now(UTC) - timedelta(days=30), 0.01)[0] | {
        "node": "sandbox", "linkedid": f"request-{left}", "caller_number": caller_number(), "callback_number": left,
        "line": LINE, "status": "callback_requested", "operator": "", "talk_seconds": None, "after_hours": True}
    insert_calls(db, [row])
    with db.session() as session:
        return int(session.scalars(select(Call.id).where(CALL.linkedid == row["linkedid"])).one()), left


def settled(db: Database, request_id: int) -> str:
    """The result of the request's call-back, settled when the worklist is looked at (as the page does)."""
    with db.session() as session:
        worklist.settle_attempts(session, set(MODEL.operators), ["sandbox"])
        attempt = session.scalars(select(CallbackAttempt).where(CallbackAttempt.call_id == request_id)).first()
        return attempt.result if attempt is not None else ""
