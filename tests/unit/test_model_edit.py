"""`callcenter operators add|remove|list|password` and the model file edits behind them: comments kept, an
invalid result refused with the file untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from callcenter.asterisk.secrets import sip_password
from callcenter.cli import main
from callcenter.model.contract import DeviceType
from callcenter.model.edit import add_operator, remove_operator
from callcenter.model.hotline import ModelError, load
from callcenter.settings import Settings


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "hotline.toml"
    shutil.copy(Settings().model_file, path)
    return path


def test_adding_an_operator_keeps_comments_and_joins_the_queue(model_file: Path) -> None:
    model = add_operator(model_file, "op104", "Trần Thị Lan", "104", DeviceType.SOFTPHONE, ["operators"])
    assert model.operators["op104"].device is DeviceType.SOFTPHONE
    assert model.queues["operators"].members[-1] == "op104"
    text = model_file.read_text(encoding="utf-8")
    assert "# The operators, keyed by their SIP user name." in text and 'name = "Trần Thị Lan"' in text
    assert load(model_file) == model


def test_an_agent_is_added_to_the_queue_s_agents_and_removed_from_them(model_file: Path) -> None:
    model = add_operator(model_file, "op105", "Lê Văn Nam", "105", DeviceType.SOFTPHONE, ["operators"], agent=True)
    queue = model.queues["operators"]
    assert queue.agents[-1] == "op105" and "op105" not in queue.members
    model = remove_operator(model_file, "op105")
    assert "op105" not in model.queues["operators"].agents


def test_removing_an_operator_drops_its_queue_membership(model_file: Path) -> None:
    model = remove_operator(model_file, "op202")
    assert "op202" not in model.operators and "op202" not in model.queues["operators"].members
    assert "op202" not in model_file.read_text(encoding="utf-8")


@pytest.mark.parametrize(("operator", "extension", "queues", "expected"), [
    ("op101", "104", ["operators"], "already exists"),
    ("op104", "101", ["operators"], "extensions used twice: ['101']"),
    ("op104", "02621022", ["operators"], "is a hotline number"),
    ("Bad Id", "104", ["operators"], "operators.Bad Id.id"),
    ("op104", "104", ["nobody"], "no queue 'nobody'"),
])
def test_an_invalid_change_is_refused_and_the_file_stays_as_it_was(
        model_file: Path, operator: str, extension: str, queues: list[str], expected: str) -> None:
    before = model_file.read_bytes()
    with pytest.raises(ModelError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        add_operator(model_file, operator, "X", extension, DeviceType.IP_PHONE, queues)
    assert model_file.read_bytes() == before


@pytest.mark.parametrize(("name", "expected"), [
    ("A\nB", "operators.op151.name: must be one line without control characters (found '\\n')"),
    ('x"y\\z', "operators.op151.name: a name shown as caller ID must not contain"),
])
def test_cli_refuses_a_name_that_would_write_asterisk_configuration(
        model_file: Path, capsys: pytest.CaptureFixture[str], name: str, expected: str) -> None:
    """Written raw into pjsip.conf's callerid and a dialplan comment, "A\\nB" made a stray line B."""
    before = model_file.read_bytes()
    code = main(["--model", str(model_file), "operators", "add", "op151", "--extension", "151", "--name", name,
                 "--no-reload"])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "Traceback" not in err
    assert model_file.read_bytes() == before


def test_removing_an_unknown_operator_is_an_error(model_file: Path) -> None:
    with pytest.raises(ModelError, match="no operator 'op999'"):
        remove_operator(model_file, "op999")


def test_cli_lists_adds_without_reload_and_prints_a_password(model_file: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model", str(model_file), "operators", "list"]) == 0
    listed = capsys.readouterr().out
    assert "op201" in listed and "softphone" in listed and "operators" in listed
    assert main(["--model", str(model_file), "operators", "add", "op104", "--device", "browser", "--no-reload"]) == 0
    assert "op104 added" in capsys.readouterr().out
    assert load(model_file).operators["op104"].extension == "104"  # from the id when not given
    assert main(["--model", str(model_file), "operators", "password", "op104"]) == 0
    assert capsys.readouterr().out.strip() == sip_password(Settings().pbx.sip_secret, "op104")
    assert main(["--model", str(model_file), "operators", "password", "op999"]) == 2


def test_a_broken_model_stops_every_command_with_its_problems(model_file: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    model_file.write_text(model_file.read_text(encoding="utf-8").replace('extension = "102"', 'extension = "101"'),
                          encoding="utf-8")
    assert main(["--model", str(model_file), "operators", "list"]) == 2
    assert "extensions used twice: ['101']" in capsys.readouterr().err


def test_a_hand_edited_name_with_a_line_break_stops_every_command(model_file: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    model_file.write_text(model_file.read_text(encoding="utf-8").replace(
        'name = "Operator 102"', 'name = """Operator 102\nexten => 999,1,System(touch /tmp/x)"""'), encoding="utf-8")
    assert main(["--model", str(model_file), "operators", "list"]) == 2
    assert "operators.op102.name: must be one line" in capsys.readouterr().err
