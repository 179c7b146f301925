"""The operator desk's browser softphone against the real sandbox: Chromium in the WebRTC test namespace
(callcenter/sandbox/webnet.py) registers op301 over wss with softphone.js, a baresip citizen calls the plain
number, the queue rings the browser, the page answers, and two-way audio is checked by tone: the citizen's 440 Hz
in the browser's remote track, and both the citizen's 440 Hz and the browser's 1000 Hz in MixMonitor's recording."""

from __future__ import annotations

import math
import struct
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright

from callcenter.asterisk.secrets import sip_password
from callcenter.sandbox import webnet
from callcenter.sandbox.baresip import SipAgent
from tests.browser.conftest import CHROMIUM, FLAGS, ServerFactory, wait_js
from tests.integration.conftest import MODEL, ROOT, SETTINGS, caller_number, cli, wait_until

pytestmark = pytest.mark.sandbox

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


START_PHONE = """([url, user, password]) => {
  const audio = document.createElement("audio");
  audio.autoplay = true;
  document.body.append(audio);
  window.seen = [];
  window.phone = Softphone.create({wsUrl: url, user, password, audio});
  for (const name of ["registered", "registrationFailed", "incoming", "confirmed", "ended"]) {
    phone.addEventListener(name, (e) => seen.push([name, e.detail]));
  }
  phone.start();
}"""
# The dominant frequency of what the browser hears (its remote track), by an analyser over two seconds.
REMOTE_FREQUENCY = """async () => {
  const context = new AudioContext();
  const source = context.createMediaStreamSource(phone.options.audio.srcObject);
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


def open_phone(browser: Browser, url: str, server_port: int) -> tuple[Page, webnet.LoopbackBridge]:
    """The app's sign-in page at its loopback URL inside the namespace, with jssip and softphone.js loaded."""
    bridge = webnet.LoopbackBridge(server_port).start()
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(f"{url}/sign-in")
    page.add_script_tag(url="/static/vendor/jssip/jssip.min.js")
    page.add_script_tag(url="/static/softphone.js")
    return page, bridge


def newest_recording(since: float) -> Path:
    spool = ROOT / "var/spool/asterisk/monitor"
    files = [path for path in spool.glob("*/*.wav") if path.stat().st_mtime >= since]
    assert files, "no recording"
    return max(files, key=lambda path: path.stat().st_mtime)


def test_a_citizen_reaches_the_browser_operator_with_audio_both_ways(
        agents: Callable[..., SipAgent], server_factory: ServerFactory, phone_browser: Browser) -> None:
    server = server_factory()
    page, bridge = open_phone(phone_browser, server.url, int(server.url.rsplit(":", 1)[1]))
    try:
        password = sip_password(SETTINGS.pbx.sip_secret, OPERATOR.id)
        page.evaluate(START_PHONE, [MODEL.pbx.wss_url, OPERATOR.id, password])
        wait_js(page, "phone.registered", 15)
        assert OPERATOR.id in cli("pjsip show contacts")
        started = time.time()
        citizen = agents("citizen1", caller_number=caller_number(), wav_seconds=40)
        citizen.dial(MODEL.sandbox.plain_number)
        wait_js(page, "phone.state === 'ringing'", 30)
        page.evaluate("phone.answer()")
        wait_js(page, "phone.state === 'talking'", 15)
        citizen.wait_event("CALL_ESTABLISHED", 15)
        # ICE and DTLS done (the browser's host candidate on the veth, Asterisk's on pbx.webrtc), audio playing.
        wait_js(page, "phone.session.connection.connectionState === 'connected' && !!phone.options.audio.srcObject", 10)
        heard, level = page.evaluate(REMOTE_FREQUENCY)
        assert abs(heard - CITIZEN_HZ) < 15, (heard, level, page.evaluate("seen"))
        time.sleep(3)
        citizen.hangup()
        wait_js(page, "phone.state === 'ended' || phone.state === 'idle'", 10)
        recording = newest_recording(started)
        wait_until(lambda: "PJSIP/op301" not in cli("core show channels"), 10, "the call to end")
        samples, rate = wav_samples(recording)
        powers = {hz: tone_power(samples, rate, hz) for hz in (CITIZEN_HZ, BROWSER_HZ, 700.0, 1500.0)}
        noise = max(powers[700.0], powers[1500.0])
        print("tone powers in", recording.name, {hz: f"{p:.3g}" for hz, p in powers.items()}, "browser heard", heard)
        assert powers[CITIZEN_HZ] > 100 * noise and powers[BROWSER_HZ] > 100 * noise, (recording, powers)
    finally:
        page.evaluate("phone.stop()")
        wait_until(lambda: OPERATOR.id not in cli("pjsip show contacts"), 10, "the browser to unregister")
        page.context.close()
        bridge.stop()
