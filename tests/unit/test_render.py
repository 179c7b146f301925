"""Asterisk's configuration rendered from the model: what a deployment gets, what only the sandbox gets, and
secrets that never land in a world-readable file."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest

from callcenter.asterisk.install import install
from callcenter.asterisk.render import render
from callcenter.asterisk.secrets import sip_password
from callcenter.model.contract import Spool
from callcenter.model.hotline import HotlineModel, load, parse
from callcenter.settings import PbxSettings, Settings

SETTINGS = Settings(pbx=PbxSettings(sip_secret="test-key", control_secret="ctl-secret"))
MODEL = load(SETTINGS.model_file)


def files(model: HotlineModel = MODEL, sandbox: bool = False) -> dict[str, str]:
    return {name: rendered.text for name, rendered in render(model, SETTINGS, sandbox).items()}


def test_every_operator_gets_an_endpoint_with_its_template_extension_and_own_password() -> None:
    pjsip = files()["pjsip_model.conf"]
    for op in MODEL.operators.values():
        template = {"ip_phone": "operator-ipphone", "softphone": "operator-softphone",
                    "browser": "operator-browser"}[op.device.value]
        assert f"[{op.id}]({template})\n" in pjsip
        assert f'callerid = "{op.name}" <{op.extension}>' in pjsip
        assert f"password = {sip_password('test-key', op.id)}\n" in pjsip
    assert len({sip_password("test-key", op) for op in MODEL.operators}) == len(MODEL.operators)


def test_vietnamese_names_are_written_as_they_are_each_on_its_own_line() -> None:
    raw = tomllib.loads(SETTINGS.model_file.read_text(encoding="utf-8"))
    raw["operators"]["op102"]["name"] = "Nguyễn Thị Hoa"
    raw["lines"]["02621022"]["name"] = "Đường dây nóng; tỉnh"  # after the dialplan line's ";": a comment anyway
    out = files(parse(raw))
    assert 'callerid = "Nguyễn Thị Hoa" <102>\n' in out["pjsip_model.conf"]
    ext = out["extensions_model.conf"]
    assert "exten => 102,1,Set(OPERATOR=op102)  ; Nguyễn Thị Hoa\n" in ext
    assert "exten => 02621022,1,Set(__HOTLINE_QUEUE=operators)  ; Đường dây nóng; tỉnh\n" in ext


@pytest.mark.parametrize("name", ["A\nB", 'x"y', "x\\z", "x;y"])
def test_a_name_that_would_write_configuration_is_not_rendered_even_from_an_unchecked_model(name: str) -> None:
    op = MODEL.operators["op102"].model_copy(update={"name": name})  # model_copy does not validate
    unchecked = MODEL.model_copy(update={"operators": {**MODEL.operators, "op102": op}})
    with pytest.raises(ValueError, match=r"must be one line|must not contain"):
        files(unchecked)


def test_transports_and_media_bind_the_models_sip_address() -> None:
    raw = tomllib.loads(SETTINGS.model_file.read_text(encoding="utf-8"))
    raw["pbx"]["sip"] = "192.0.2.10:5070"
    pjsip = files(parse(raw), sandbox=True)["pjsip_model.conf"]
    assert pjsip.count("bind = 192.0.2.10:5070\n") == 2  # UDP and TCP
    browsers = sum(op.device.value == "browser" for op in MODEL.operators.values())
    endpoints = len(MODEL.operators) - browsers + MODEL.sandbox.citizens
    assert pjsip.count("media_address = 192.0.2.10\nbind_rtp_to_media_address = yes\n") == endpoints
    raw["pbx"]["sip"] = raw["pbx"]["webrtc"] = "0.0.0.0:5060"
    assert "media_address" not in files(parse(raw))["pjsip_model.conf"]  # listening everywhere: RTP too


def test_a_deployment_gets_no_test_citizens_no_plain_dialplan_and_no_sandbox_ami_user() -> None:
    deployment, sandbox = files(sandbox=False), files(sandbox=True)
    assert "citizen" not in deployment["pjsip_model.conf"]
    assert "[citizen12](citizen)" in sandbox["pjsip_model.conf"]
    assert MODEL.sandbox.plain_number not in deployment["extensions_model.conf"]
    assert f"exten => {MODEL.sandbox.plain_number},1,Goto(plain-pbx" in sandbox["extensions_model.conf"]
    assert f"[{SETTINGS.sandbox.admin_username}]" not in deployment["manager_model.conf"]
    assert "write = all" in sandbox["manager_model.conf"]


def test_queues_lines_directory_and_globals_follow_the_model() -> None:
    out = files()
    queue = MODEL.queues["operators"]
    assert ("[operators](queue-defaults)\nstrategy = leastrecent\ntimeout = 15\nwrapuptime = 0\nautopause = yes\n"
            in out["queues_model.conf"])
    assert all(f"member => PJSIP/{m},0,{m},PJSIP/{m}\n" in out["queues_model.conf"] for m in queue.members)
    assert queue.agents and not any(f"PJSIP/{a}," in out["queues_model.conf"] for a in queue.agents)  # log in later
    ext = out["extensions_model.conf"]
    for number in MODEL.lines:
        assert f"exten => {number},1,Set(__HOTLINE_QUEUE=operators)" in ext
    for op in MODEL.operators.values():
        assert f"exten => {op.extension},1,Set(OPERATOR={op.id})" in ext
        assert f"exten => {op.id},1,Goto(operator-directory,{op.extension},1)" in ext
    assert f"IVR_URL = agi://{MODEL.ivr.address}\n" in ext
    assert f"RECORDINGS_SPOOL = {MODEL.pbx.spool}\n" in ext
    assert f"QUEUE_WAIT_operators = {queue.wait_seconds}\n" in ext


def test_the_recording_path_is_the_spool_contracts() -> None:
    wav = Spool.conversation("${RECORDINGS_SPOOL}", "${CHANNEL(linkedid)}", "${UNIQUEID}")
    assert wav == "${RECORDINGS_SPOOL}/${CHANNEL(linkedid)}/${UNIQUEID}.wav"
    assert f"MixMonitor({wav},b,/bin/touch {wav}{Spool.DONE_SUFFIX})" in files()["extensions_model.conf"]


def test_a_channel_already_recorded_is_not_recorded_again() -> None:
    """A citizen transferred to a hotline number runs [record-call] again: a second MixMonitor into the same file
    would write over the first part of the call (tests/integration/test_recordings_sandbox.py)."""
    record_call = files()["extensions_model.conf"].split("[record-call]\n")[1].splitlines()
    assert record_call[0] == 'exten => s,1,GotoIf($["${MIXMONITOR_FILENAME}" != ""]?recorded)'
    assert record_call[1].startswith(" same => n,MixMonitor(") and record_call[2] == " same => n(recorded),Return()"


def test_ami_address_and_users_with_their_secrets() -> None:
    manager = files()["manager_model.conf"]
    assert manager.startswith("; generated") and "port = 5038\nbindaddr = 127.0.0.1\n" in manager
    assert f"[{SETTINGS.ami.username}]\nsecret = {SETTINGS.ami.secret}\n" in manager
    assert f"[{SETTINGS.pbx.control_username}]\nsecret = ctl-secret\n" in manager
    listener = manager.split(f"[{SETTINGS.ami.username}]")[1].split("\n[")[0]
    assert "read = call,agent\nwrite = reporting\n" in listener  # it reads; its only actions report
    filters = [line for line in listener.splitlines() if line.startswith("eventfilter")]
    assert filters == [f"eventfilter(action(include),name({name})) =" for name in ("CEL", "FullyBooted", "Shutdown")]
    live = manager.split(f"[{SETTINGS.api.live_username}]\nsecret = {SETTINGS.api.live_secret}\n")[1].split("\n[")[0]
    assert "read = call,agent\n" in live and "eventfilter" not in live  # the live board reads queue events too


def test_install_writes_a_complete_folder_and_only_the_owner_reads_secrets(tmp_path: Path) -> None:
    written = install(tmp_path, MODEL, SETTINGS, sandbox=False)
    for name in ("pjsip.conf", "extensions.conf", "queues.conf", "manager.conf", "cel.conf", "pjsip_model.conf",
                 "extensions_model.conf", "queues_model.conf", "manager_model.conf"):
        assert name in written and (tmp_path / name).is_file()
    assert "extensions_sandbox.conf" not in written
    for name in ("pjsip_model.conf", "manager_model.conf"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "extensions.conf").stat().st_mode) == 0o644
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind
    hand_written = (tmp_path / "pjsip.conf").read_text(encoding="utf-8")
    assert "#include pjsip_model.conf" in hand_written and "password =" not in hand_written


def test_the_hand_written_files_hold_no_list_of_operators_lines_or_secrets() -> None:
    source = Path(__file__).resolve().parents[2] / "asterisk-conf"
    text = "\n".join(path.read_text(encoding="utf-8") for path in source.rglob("*.conf"))
    for fact in [*MODEL.lines, *MODEL.operators, "hotline-dev", "127.0.0.1:4573", "5060"]:
        assert fact not in text, fact


def test_sip_passwords_are_stable_distinct_and_config_safe() -> None:
    assert sip_password("k", "op101") == sip_password("k", "op101")
    assert sip_password("k", "op101") != sip_password("k2", "op101") != sip_password("k", "op102")
    assert all(c.isalnum() or c in "-_" for c in sip_password("k", "op101"))


@pytest.mark.parametrize("device", ["browser"])
def test_a_browser_operator_gets_the_webrtc_template(device: str) -> None:
    raw: dict[str, Any] = tomllib.loads(SETTINGS.model_file.read_text(encoding="utf-8"))
    raw["operators"]["op202"]["device"] = device
    assert "[op202](operator-browser)" in files(parse(raw))["pjsip_model.conf"]


def test_browser_operators_register_over_wss_with_media_on_the_webrtc_address() -> None:
    raw: dict[str, Any] = tomllib.loads(SETTINGS.model_file.read_text(encoding="utf-8"))
    raw["pbx"]["webrtc"] = "203.0.113.5:8443"
    raw["pbx"]["tls_cert"] = "/etc/ssl/hotline.pem"
    out = files(parse(raw))
    pjsip = out["pjsip_model.conf"]
    assert "[transport-wss]\ntype = transport\nprotocol = wss\n" in pjsip
    browser = pjsip[pjsip.index("[op301](operator-browser)"):pjsip.index("[op301](aor-base)")]
    assert "transport = transport-wss\nmedia_address = 203.0.113.5\nbind_rtp_to_media_address = yes\n" in browser
    assert out["http_model.conf"].endswith("tlsbindaddr = 203.0.113.5:8443\ntlscertfile = /etc/ssl/hotline.pem\n"
                                           "tlsprivatekey = /etc/asterisk/keys/asterisk.key\n")
    template = (Path(__file__).resolve().parents[2] / "asterisk-conf/pjsip.conf").read_text(encoding="utf-8")
    browser_template = template[template.index("[operator-browser]"):].split("\n\n")[0]
    for option in ("webrtc = yes", "dtls_auto_generate_cert = yes", "allow = opus,ulaw"):
        assert option in browser_template


def test_call_backs_go_out_by_the_model_s_route_or_the_sandbox_s_test_citizens() -> None:
    carrier = MODEL.model_copy(update={"pbx": MODEL.pbx.model_copy(update={"outbound": "PJSIP/{number}@carrier"})})
    by_carrier = files(carrier)["extensions_model.conf"]
    assert "[outbound]\nexten => _X.,1,Dial(PJSIP/${EXTEN}@carrier,45,${OUTBOUND_OPTIONS})\n" in by_carrier
    assert "exten => _X.,1,NoOp(no outbound route" in files()["extensions_model.conf"]
    assert "Dial(PJSIP/${CITIZEN},45,${OUTBOUND_OPTIONS})" in files(sandbox=True)["extensions_model.conf"]
    for out in (files(carrier), files(), files(sandbox=True)):  # a transferred caller nobody answers is re-queued
        assert "GotoIf($[\"${HOTLINE_LINE}\" != \"\"]?hotline,${HOTLINE_LINE},requeue)" in out["extensions_model.conf"]
    directory = files()["extensions_model.conf"]
    phones = [d.phone for d in MODEL.departments.values() if d.phone]
    assert phones and all(f"exten => {phone},1,Goto(outbound,${{EXTEN}},1)" in directory for phone in phones)


@pytest.mark.parametrize("route", ["PJSIP/carrier", "PJSIP/{number}@carrier;evil", "Local/{number}@x,1,System(x)"])
def test_an_outbound_route_without_the_number_or_with_dialplan_syntax_is_refused(route: str) -> None:
    raw = tomllib.loads(SETTINGS.model_file.read_text(encoding="utf-8"))
    raw.setdefault("pbx", {})["outbound"] = route
    with pytest.raises(ValueError, match="outbound"):
        parse(raw, "hotline.toml")


def test_a_node_s_systemname_goes_into_asterisk_conf_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    settings = Settings(pbx=PbxSettings(systemname="pbx2"))
    install(tmp_path / "with", MODEL, settings, sandbox=False)
    options = (tmp_path / "with/asterisk.conf").read_text().split("[options]\n", 1)[1]
    assert options.startswith("systemname = pbx2 ")
    install(tmp_path / "without", MODEL, Settings(), sandbox=False)
    assert "systemname" not in (tmp_path / "without/asterisk.conf").read_text()
    for bad in ("pbx.2", "-pbx", "pbx 2", "x" * 33, "a/b"):  # a dot or slash would break the spool's id contract
        with pytest.raises(ValueError, match="systemname"):
            PbxSettings(systemname=bad)


def test_nodes_are_one_by_default_and_each_name_once() -> None:
    settings = Settings()
    [only] = settings.listener_nodes(MODEL.pbx.ami)
    assert (only.name, only.ami, only.spool) == (settings.ami.node, MODEL.pbx.ami, settings.recordings.spool)
    assert settings.node_spools() == {settings.ami.node: settings.recordings.spool}
    node = {"ami": "10.0.0.11:5038", "cel_file": "/srv/a/cel.json", "spool": "/srv/a/monitor"}
    second = {**node, "name": "pbx2", "ami": "10.0.0.12:5038"}
    two = Settings.model_validate({"nodes": [{**node, "name": "pbx1"}, second]})
    assert [(n.name, str(n.ami)) for n in two.listener_nodes(MODEL.pbx.ami)] == [
        ("pbx1", "10.0.0.11:5038"), ("pbx2", "10.0.0.12:5038")]
    with pytest.raises(ValueError, match="repeated: pbx1"):
        Settings.model_validate({"nodes": [{**node, "name": "pbx1"}, {**node, "name": "pbx1"}]})
    for bad in ({**node, "name": "../x"}, {**node, "name": "pbx1", "ami": "nowhere"}):
        with pytest.raises(ValueError):
            Settings.model_validate({"nodes": [bad]})
