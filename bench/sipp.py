"""SIPp (Debian's ``sip-tester``) for the load bench: operators that register and answer, citizens that call.

The scenarios are in ``bench/sipp/``. Operators: one SIPp registers every operator account from its port
(``register.xml``), then another SIPp on the same port answers every call Asterisk sends them (``operator.xml``)
and echoes the caller's RTP back (``-rtp_echo``). Citizens: one SIPp places the calls (``citizen.xml``) with
digest auth as the sandbox's first test citizen (each call with its own caller number), plays real G.711 A-law
audio from SIPp's own capture, keys the topic with an RFC 2833 digit after the greeting and hangs up after a fixed
time.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = Path(__file__).with_name("sipp")
PCAPS = Path("/usr/share/sip-tester")
AUDIO = PCAPS / "g711a.pcap"  # 7.05 s of speech, PCMA
AUDIO_SECONDS = 7.1  # replayed back to back
ASTERISK = "127.0.0.1:5060"


def require_sipp() -> str:
    """The sipp binary, or exit with how to install it."""
    found = shutil.which("sipp")
    if found is None or not AUDIO.exists():
        raise SystemExit("SIPp is missing: `make system-deps` (apt-get install sip-tester)")
    return found


def write_injection(path: Path, rows: list[tuple[str, ...]]) -> Path:
    """A SIPp injection file: one call per line, fields separated by ``;``, taken in order."""
    path.write_text("SEQUENTIAL\n" + "".join(";".join(row) + "\n" for row in rows), encoding="ascii")
    return path


def _play(pcap: Path) -> str:
    return f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'


def _pause(seconds: float) -> str:
    return f'  <pause milliseconds="{max(0, round(seconds * 1000))}"/>\n' if seconds > 0 else ""


def audio_plan(call_seconds: float, key_at: float) -> list[tuple[float, Path]]:
    """When to start each capture: speech back to back, the digit alone at ``key_at`` (two RTP streams at once
    would share one port), speech again until the caller hangs up."""
    plan: list[tuple[float, Path]] = []
    at = 0.0
    while at + AUDIO_SECONDS <= key_at:
        plan.append((at, AUDIO))
        at += AUDIO_SECONDS
    plan.append((key_at, PCAPS / "dtmf_2833_1.pcap"))
    at = key_at + 0.5
    while at + 1 < call_seconds:
        plan.append((at, AUDIO))
        at += AUDIO_SECONDS
    return plan


def citizen_scenario(folder: Path, call_seconds: float, key_at: float) -> Path:
    """``citizen.xml`` with its audio: hang up ``call_seconds`` after the answer, key "1" at ``key_at``."""
    steps, now = "", 0.0
    for at, pcap in audio_plan(call_seconds, key_at):
        steps += _pause(at - now) + _play(pcap)
        now = at
    steps += _pause(call_seconds - now)
    text = (SCENARIOS / "citizen.xml").read_text(encoding="ascii").replace("  <!-- AUDIO -->\n", steps)
    path = folder / "citizen.xml"
    path.write_text(text, encoding="ascii")
    return path


@dataclass
class Sipp:
    """One SIPp process, its statistics file (every ``stat_every`` s) and its error log in ``folder``."""

    name: str
    folder: Path
    args: list[str]
    port: int
    media_port: int
    proc: subprocess.Popen[bytes] | None = None
    stat_every: int = 5

    @property
    def stat_file(self) -> Path:
        return self.folder / f"{self.name}-stat.csv"

    def start(self) -> Sipp:
        cmd = [require_sipp(), ASTERISK, "-i", "127.0.0.1", "-p", str(self.port), "-mi", "127.0.0.1",
               "-mp", str(self.media_port), "-nostdin", "-trace_err", "-error_file",
               str(self.folder / f"{self.name}-errors.log"), "-trace_stat", "-stf", str(self.stat_file),
               "-fd", str(self.stat_every), *self.args]
        with (self.folder / f"{self.name}.out").open("wb") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        return self

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Terminate (killed after 10 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def counters(self) -> dict[str, str]:
        """The last line of the statistics file, by column (``OutgoingCall(C)``, ``SuccessfulCall(C)``, ...)."""
        if not self.stat_file.exists():
            return {}
        lines = [line for line in self.stat_file.read_text(errors="replace").splitlines() if line.strip()]
        if len(lines) < 2:
            return {}
        return dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))

    def count(self, column: str) -> int:
        value = self.counters().get(column, "0").strip()
        return int(value) if value.isdigit() else 0


def register(folder: Path, accounts: list[tuple[str, str]], port: int, expires: int) -> None:
    """REGISTER (or, with ``expires`` 0, un-register) every ``(user, password)`` from ``port``, one short SIPp
    each (SIPp 3.6 takes no injected field inside its ``[authentication]`` keyword: -au/-ap it is)."""
    failed = []
    for user, password in accounts:
        sipp = Sipp(f"register-{expires}", folder,
                    ["-sf", str(SCENARIOS / "register.xml"), "-s", user, "-au", user, "-ap", password,
                     "-key", "expires", str(expires), "-m", "1", "-recv_timeout", "5000"], port, 44000)
        if sipp.start().wait(30) != 0:
            failed.append(user)
    if failed:
        raise SystemExit(f"registering operators failed for {failed}: see {folder}/register-{expires}-errors.log")


def operators(folder: Path, port: int, media_port: int) -> Sipp:
    """The operators' SIPp: answers every call on ``port`` and echoes RTP."""
    return Sipp("operators", folder, ["-sf", str(SCENARIOS / "operator.xml"), "-rtp_echo"], port, media_port).start()


def citizens(folder: Path, scenario: Path, account: tuple[str, str], prefix: str, line: str,
             concurrent: int, rate: float, total: int, tag: str) -> Sipp:
    """The citizens' SIPp (every call authenticated as ``account``): ``total`` calls to ``line``, at most
    ``concurrent`` at once, started at ``rate``/s; caller numbers are ``prefix`` + SIPp's call number."""
    inf = write_injection(folder / f"citizens-{tag}.csv", [(prefix,)])
    return Sipp(f"citizens-{tag}", folder,
                ["-sf", str(scenario), "-inf", str(inf), "-s", line, "-au", account[0], "-ap", account[1],
                 "-l", str(concurrent), "-r", str(round(rate * 1000)), "-rp", "1000s", "-m", str(total)],
                5090, 40000).start()
