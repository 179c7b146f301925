"""The spool contract: which names are recordings, and what a scan reports instead of following or guessing."""

from __future__ import annotations

from pathlib import Path

import pytest

from recordings.spool import parse, scan


@pytest.mark.parametrize(("path", "linkedid", "uniqueid", "kind"), [
    ("/s/1795952249.0/1795952249.1.wav", "1795952249.0", "1795952249.1", "conversation"),
    ("/s/1795952249.0/msg-1795952249.2.wav", "1795952249.0", "1795952249.2", "message"),
    ("/s/pbx1-1795952249.0/pbx1-1795952249.1.wav", "pbx1-1795952249.0", "pbx1-1795952249.1", "conversation"),
    ("/s/hn-pbx_2-1795952249.0/msg-hn-pbx_2-1795952249.4.wav", "hn-pbx_2-1795952249.0", "hn-pbx_2-1795952249.4",
     "message"),
])
def test_names_on_the_contract(path: str, linkedid: str, uniqueid: str, kind: str) -> None:
    found = parse(Path(path))
    assert found is not None
    assert (found.linkedid, found.uniqueid, found.kind) == (linkedid, uniqueid, kind)
    assert f"{found.recorded_at:%Y-%m-%d}" == "2026-11-29"


@pytest.mark.parametrize("path", [
    "/s/1795952249.0/1795952249.1.WAV", "/s/1795952249.0/1795952249.1.wav49", "/s/x/1795952249.1.wav",
    "/s/10000000000000.1/10000000000000.1.wav",  # epoch past year 9999: no date, no crash
    "/s/99999999999999999999999.1/99999999999999999999999.1.wav", "/s/../1.1.wav", "/s/.-1.1/.-1.1.wav",
    "/s/-1795952249.0/-1795952249.0.wav", "/s/a.b-1795952249.0/a.b-1795952249.0.wav",
])
def test_names_off_the_contract(path: str) -> None:
    assert parse(Path(path)) is None


def test_scan_reports_links_strays_and_odd_names_and_follows_nothing(tmp_path: Path) -> None:
    spool, elsewhere = tmp_path / "spool", tmp_path / "elsewhere"
    (spool / "1795952249.0").mkdir(parents=True)
    elsewhere.mkdir()
    (elsewhere / "1795952249.5.wav").write_bytes(b"x")
    files = ["1795952249.0/1795952249.0.wav", "1795952249.0/1795952249.0.wav.done", "1795952249.0/a.WAV",
             "stray.wav", "1795952249.0/orphan.wav.done"]
    for name in files:
        (spool / name).write_bytes(b"x")
    (spool / "1795952249.5").symlink_to(elsewhere, target_is_directory=True)
    (spool / "1795952249.0" / "1795952249.1.wav").symlink_to(elsewhere / "1795952249.5.wav")
    (spool / "1795952249.0" / "nested").mkdir()
    result = scan(spool)
    assert [f.path for f in result.wavs] == [spool / "1795952249.0/1795952249.0.wav"]
    reported = {str(m.path.relative_to(spool)): m.reason for m in result.misfits}
    assert set(reported) == {"1795952249.0/a.WAV", "stray.wav", "1795952249.0/orphan.wav.done", "1795952249.5",
                             "1795952249.0/1795952249.1.wav", "1795952249.0/nested"}
    assert "link" in reported["1795952249.5"] and "link" in reported["1795952249.0/1795952249.1.wav"]


def test_scan_of_a_missing_spool_is_empty(tmp_path: Path) -> None:
    result = scan(tmp_path / "absent")
    assert (result.wavs, result.misfits) == ([], [])


def test_a_call_backs_recording_is_on_the_contract_and_dated_by_its_start() -> None:
    """A call-back's call id is chosen by us (AMI Originate's ChannelId): the folder MixMonitor records into, and
    the operator's channel's uniqueid. Off the contract, the worker would leave the file alone."""
    from datetime import UTC, datetime

    from callcenter.desk.callback import new_linkedid

    linkedid = new_linkedid(1_800_000_000.7)
    found = parse(Path(f"/spool/{linkedid}/{linkedid}.wav"))
    assert found is not None and (found.linkedid, found.uniqueid) == (linkedid, linkedid)
    assert found.recorded_at == datetime.fromtimestamp(1_800_000_000, UTC)
    assert new_linkedid() != new_linkedid() and len(new_linkedid()) <= 64  # the journal's ids are 64 at most
