"""The operator desk's browser softphone against the real sandbox: Chromium in the WebRTC test namespace
(callcenter/sandbox/webnet.py) signs in as op301, whose desk page registers its phone over wss; a baresip citizen
calls the plain number, the queue rings the browser, the operator answers on the page, and two-way audio is checked
by tone: the citizen's 440 Hz in the browser's remote track, and both the citizen's 440 Hz and the browser's
1000 Hz in MixMonitor's recording. The operator then transfers the caller to an IP desk phone (op101), which
answers."""

from __future__ import annotations

import math
import re
import struct
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from callcenter.model.contract import Role
from callcenter.sandbox import webnet
from callcenter.sandbox.baresip import SipAgent
from callcenter.store import accounts
from callcenter.store.db import Database
from tests.browser.conftest import CHROMIUM, FLAGS, ServerFactory, WebServer, wait_js
from tests.integration.conftest import MODEL, ROOT, caller_number, cli, wait_until
from tests.webclient import PASSWORD

pytestmark = [pytest.mark.sandbox, pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]
WAIT = 30_000  # ms: Playwright's bound on each expectation

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


def wav_samples(path: Path) -> tuple[list[int], int]:
    with wave.open(str(path), "rb") as source:
        frames = source.readframes(source.getnframes())
        return list(struct.unpack(f"<{len(frames) // 2}h", frames)), source.getframerate()


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


def test_a_citizen_reaches_the_browser_operator_who_answers_on_the_desk_and_transfers_to_a_desk_phone(
        db: Database, agents: Callable[..., SipAgent], server_factory: ServerFactory,
        phone_browser: Browser) -> None:
    server = server_factory()
    page, bridge = open_desk(phone_browser, server, db)
    try:
        expect(page.locator("#phone-registration")).to_have_attribute("data-registered", "true", timeout=WAIT)
        assert OPERATOR.id in cli("pjsip show contacts")
        started = time.time()
        number = caller_number()
        citizen = agents("citizen1", caller_number=number, wav_seconds=60)
        citizen.dial(MODEL.sandbox.plain_number)
        expect(page.locator("#phone-state")).to_have_attribute("data-state", "ringing", timeout=WAIT)
        expect(page.locator("#phone-peer")).to_contain_text(number)
        page.click("#phone-answer")
        expect(page.locator("#phone-state")).to_have_attribute("data-state", "talking", timeout=WAIT)
        citizen.wait_event("CALL_ESTABLISHED", 15)
        # ICE and DTLS done (the browser's host candidate on the veth, Asterisk's on pbx.webrtc), audio playing.
        wait_js(page, "deskPhone.session.connection.connectionState === 'connected' && "
                      "!!deskPhone.options.audio.srcObject", 10)
        heard, level = page.evaluate(REMOTE_FREQUENCY)
        assert abs(heard - CITIZEN_HZ) < 15, (heard, level)
        wait_until(lambda: recorded_seconds(started) >= 3, 20, "three seconds of the conversation recorded")

        # Registered only now, or the queue might have offered it the caller first
        colleague = agents("op101", register=True, wav_seconds=60)  # an IP desk phone, answers at once
        page.select_option("#transfer-target", "101")
        page.click("#phone-transfer")
        colleague.wait_event("CALL_ESTABLISHED", 20)
        expect(page.locator("#phone-state")).not_to_have_attribute("data-state", re.compile("talking|held"),
                                                                   timeout=WAIT)
        citizen.hangup()
        citizen.wait_event("CALL_CLOSED", 20)
        wait_until(lambda: "PJSIP/op301" not in cli("core show channels"), 10, "the call to end")
        recording = newest_recording(started)
        assert recording is not None
        samples, rate = wav_samples(recording)
        powers = {hz: tone_power(samples, rate, hz) for hz in (CITIZEN_HZ, BROWSER_HZ, 700.0, 1500.0)}
        noise = max(powers[700.0], powers[1500.0])
        print("tone powers in", recording.name, {hz: f"{p:.3g}" for hz, p in powers.items()}, "browser heard", heard)
        assert powers[CITIZEN_HZ] > 100 * noise and powers[BROWSER_HZ] > 100 * noise, (recording, powers)
    finally:
        page.evaluate("deskPhone.stop()")
        wait_until(lambda: OPERATOR.id not in cli("pjsip show contacts"), 10, "the browser to unregister")
        page.context.close()
        bridge.stop()
