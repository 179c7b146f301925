"""The prompt manifest is complete for both languages, and generation is idempotent and spares studio files."""

from __future__ import annotations

import random
import subprocess
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcenter.model.hotline import LANGUAGES, load
from callcenter.model.schedule import Schedule
from callcenter.settings import Settings
from ivr.cases import CASE_STATUSES, CaseStatus
from ivr.flows import hotline, run
from ivr.prompts.__main__ import main
from ivr.prompts.generate import INDEX, Job, decide, generate, missing_tools, read_index
from ivr.prompts.manifest import FIXED, manifest
from ivr.speech import working_hours
from ivr.steps import Call, Services
from ivr.testing import FixedCases, ScriptedChannel, random_script

CONFIG = load(Settings().model_file)
MONDAY_9 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # 09:00 in Ho Chi Minh City: both lines open
SUNDAY = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)  # the city line is closed


def test_every_configured_and_fixed_prompt_has_both_languages() -> None:
    prompts = manifest(CONFIG)
    assert {f"greeting-{number}" for number in CONFIG.lines} <= set(prompts)
    assert {topic.prompt for topic in CONFIG.topics} <= set(prompts)
    assert {CaseStatus("1", code).prompt for code in (*CASE_STATUSES, "whatever")} <= set(prompts)
    assert {f"num-{n}" for n in range(60)} <= set(prompts)
    for name, texts in prompts.items():
        assert all(texts.get(language).strip() for language in LANGUAGES), name
    assert prompts["greeting-02621022"].get("vi") != prompts["greeting-1900868647"].get("vi")


def _played_everywhere() -> set[str]:
    played: set[str] = set()
    rng = random.Random(4573)
    statuses = (*CASE_STATUSES, "archived")
    cases = FixedCases({str(1111 * (index + 1)): status for index, status in enumerate(statuses)})
    for attempt in range(1500):
        cases.error = RuntimeError("store down") if attempt % 10 == 0 else None
        script = [*random_script(rng), rng.choice(["8", "!8"]), rng.choice(list(cases.cases)), "!1"]
        fake = ScriptedChannel(script, record_ok=rng.random() > 0.1, path=rng.choice(["", "/s/1.1/msg-1.1.wav"]))
        call = Call(line=rng.choice([*CONFIG.lines, "1"]), now=rng.choice([MONDAY_9, SUNDAY]),
                    caller=rng.choice(["", "0905123456"]))
        run(hotline, fake, call, Services(CONFIG, cases))
        played |= set(fake.played)
    for language in LANGUAGES:
        played |= set(working_hours(Schedule.model_validate({"hours": {"mon": ["00:00-24:00"]}}), language))
        played |= set(working_hours(Schedule.model_validate({"hours": {"mon": ["07:05-13:00"]}}), language))
    return played


def test_flows_play_only_manifest_prompts_and_every_fixed_prompt_is_used() -> None:
    played = _played_everywhere()
    assert played <= set(manifest(CONFIG)), played - set(manifest(CONFIG))
    assert set(FIXED) <= played, f"never played (dead or misspelt?): {set(FIXED) - played}"


def _fake_render(job: Job, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f"RIFF {job.text}".encode())


def test_generation_is_idempotent_by_content(tmp_path: Path) -> None:
    jobs = [Job("vi", "press", "bấm phím"), Job("en", "press", "press")]
    assert generate(jobs, tmp_path, render=_fake_render) == {"new": 2}
    assert generate(jobs, tmp_path, render=_fake_render) == {"current": 2}
    changed = [Job("vi", "press", "xin bấm phím"), jobs[1]]
    assert generate(changed, tmp_path, render=_fake_render) == {"changed": 1, "current": 1}
    assert (tmp_path / "vi/press.wav").read_bytes() == "RIFF xin bấm phím".encode()
    assert set(read_index(tmp_path)) == {"vi/press", "en/press"}


def test_studio_recordings_are_never_overwritten_unless_forced(tmp_path: Path) -> None:
    job = Job("vi", "greeting-02621022", "Xin chào")
    generate([job], tmp_path, render=_fake_render)
    studio = tmp_path / "vi/greeting-02621022.wav"
    studio.write_bytes(b"RIFF studio recording")
    assert decide(job, tmp_path, read_index(tmp_path)) == "kept"
    assert generate([Job("vi", "greeting-02621022", "Xin chào quý vị")], tmp_path, render=_fake_render) == {"kept": 1}
    assert studio.read_bytes() == b"RIFF studio recording"
    (tmp_path / "vi/other.wav").write_bytes(b"RIFF dropped in before any generation")
    assert decide(Job("vi", "other", "x"), tmp_path, {}) == "kept"
    assert generate([job], tmp_path, force=True, render=_fake_render) == {"forced": 1}


def test_a_failure_is_reported_and_the_rest_indexed(tmp_path: Path) -> None:
    def flaky(job: Job, path: Path) -> None:
        if job.name == "bad":
            raise subprocess.CalledProcessError(1, ["espeak-ng"], stderr=b"no voice")
        _fake_render(job, path)

    seen: list[tuple[str, str]] = []
    counts = generate([Job("vi", "good", "a"), Job("vi", "bad", "b")], tmp_path,
                      report=lambda key, state: seen.append((key, state)), render=flaky)
    assert counts == {"new": 1, "failed": 1}
    assert ("vi/bad", "failed (Command '['espeak-ng']' returned non-zero exit status 1.; no voice)") in seen
    assert set(read_index(tmp_path)) == {"vi/good"}
    assert generate([Job("vi", "bad", "b")], tmp_path, render=_fake_render) == {"new": 1}


def test_a_corrupt_index_is_ignored(tmp_path: Path) -> None:
    (tmp_path / INDEX).write_text("[not json", encoding="utf-8")
    assert read_index(tmp_path) == {}


@pytest.mark.skipif(bool(missing_tools()), reason="espeak-ng and sox are needed")
def test_real_generation_gives_8khz_mono_16bit_wav(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "hotline.toml"
    config.write_text(Settings().model_file.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["--out", str(tmp_path / "out"), "--model", str(config)]) == 0
    first = capsys.readouterr().out
    assert "vi/greeting-02621022: new" in first
    with wave.open(str(tmp_path / "out/vi/greeting-02621022.wav")) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
        assert audio.getnframes() > 8000  # seconds of speech, not an empty file
    assert len(list((tmp_path / "out").glob("*/*.wav"))) == 2 * len(manifest(CONFIG))
    assert main(["--out", str(tmp_path / "out"), "--model", str(config)]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{2 * len(manifest(CONFIG))} current")
