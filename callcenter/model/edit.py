"""Change the model file in place, keeping its comments and layout (tomlkit), and refuse a change that would
leave it invalid: the file is only replaced once the new text loads without problems."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import tomlkit
from tomlkit.items import Table

from callcenter.model.contract import DeviceType
from callcenter.model.hotline import HotlineModel, ModelError, parse


def _replace(path: Path, change: Callable[[tomlkit.TOMLDocument], None]) -> HotlineModel:
    """Apply ``change`` to the document, validate the result, then replace the file atomically."""
    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    change(document)
    text = tomlkit.dumps(document)
    model = parse(tomlkit.parse(text).unwrap(), str(path))  # raises ModelError: the file stays as it was
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, path.stat().st_mode & 0o777)
    os.replace(temporary, path)
    return model


def _tables(document: tomlkit.TOMLDocument, name: str) -> Table:
    if name not in document:
        document[name] = tomlkit.table(is_super_table=True)
    table = document[name]
    assert isinstance(table, Table)
    return table


def add_operator(path: Path, operator_id: str, name: str, extension: str, device: DeviceType,
                 queues: list[str], agent: bool = False) -> HotlineModel:
    """Add an operator to ``queues``: always in them (``members``) or, as an ``agent``, once they log in at the
    desk; ModelError if the result is invalid."""
    def change(document: tomlkit.TOMLDocument) -> None:
        operators = _tables(document, "operators")
        if operator_id in operators:
            raise ModelError(f"{path}: operator {operator_id!r} already exists")
        entry = tomlkit.table()
        entry.update({"name": name, "extension": extension, "device": device.value})
        operators[operator_id] = entry
        all_queues = _tables(document, "queues")
        for queue in queues:
            if queue not in all_queues:
                raise ModelError(f"{path}: no queue {queue!r} (known: {', '.join(all_queues)})")
            field = "agents" if agent else "members"
            members = all_queues[queue].setdefault(field, tomlkit.array())  # type: ignore[union-attr]
            members.append(operator_id)
    return _replace(path, change)


def remove_operator(path: Path, operator_id: str) -> HotlineModel:
    """Remove an operator and their queue memberships; ModelError if there is no such operator."""
    def change(document: tomlkit.TOMLDocument) -> None:
        operators = _tables(document, "operators")
        if operator_id not in operators:
            raise ModelError(f"{path}: no operator {operator_id!r}")
        del operators[operator_id]
        for queue in _tables(document, "queues").values():
            for field in ("members", "agents"):
                members = queue.get(field) if isinstance(queue, Table) else None
                if members is not None and operator_id in members:
                    members.remove(operator_id)
    return _replace(path, change)
