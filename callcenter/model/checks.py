"""Cross-checks of the telephony model: what no single section can check on its own (keys, digits, references)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callcenter.model.hotline import HotlineModel

QUEUE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")  # it becomes a section name in queues.conf


def duplicates(values: Iterable[str]) -> list[str]:
    """Values that occur more than once, sorted."""
    return sorted(value for value, count in Counter(values).items() if count > 1)


def problems(model: HotlineModel) -> list[str]:
    """Every inconsistency in ``model``, one readable line each (empty when the model is usable)."""
    return [*_topics(model), *_digits(model), *_lines(model), *_operators(model), *_queues(model),
            *_departments(model)]


def _departments(model: HotlineModel) -> list[str]:
    found = [f"departments.{key}: a key is lower-case letters, digits, - and _" for key in model.departments
             if not QUEUE_NAME.match(key)]
    phones = [d.phone for d in model.departments.values() if d.phone]
    if duplicates(phones):
        found.append(f"departments: phones listed twice: {duplicates(phones)}")
    taken = set(model.lines) | {model.sandbox.plain_number} | {op.extension for op in model.operators.values()}
    found += [f"departments.{key}.phone {d.phone} is a hotline number or an operator's extension"
              for key, d in model.departments.items() if d.phone in taken]
    found += [f"topics.{t.code}.department: no department {t.department!r} (known: {sorted(model.departments)})"
              for t in model.topics if t.department and t.department not in model.departments]
    return found


def _topics(model: HotlineModel) -> list[str]:
    found = []
    if duplicates(model.topic_codes):
        found.append(f"topics: duplicate codes {duplicates(model.topic_codes)}")
    if duplicates(t.digit for t in model.topics):
        found.append(f"topics: duplicate digits {duplicates(t.digit for t in model.topics)}")
    return found


def _digits(model: HotlineModel) -> list[str]:
    menu = model.ivr.menu
    keys = {menu.case_status_digit: "ivr.menu.case_status_digit", menu.repeat_digit: "ivr.menu.repeat_digit"}
    found = [] if len(keys) == 2 else ["ivr.menu: case_status_digit and repeat_digit are the same key"]
    found += [f"topic {t.code!r}: digit {t.digit} is also {keys[t.digit]}" for t in model.topics if t.digit in keys]
    after = (model.ivr.after_hours.message_digit, model.ivr.after_hours.callback_digit, menu.case_status_digit)
    if duplicates(after):
        found.append(f"ivr.after_hours: message, callback and case status keys must differ, got {after}")
    return found


def _lines(model: HotlineModel) -> list[str]:
    found = []
    for key, line in model.lines.items():
        if key != line.number:
            found.append(f"lines.{key}: number {line.number!r} differs from its table name")
        unknown = [code for code in line.topics if code not in model.topic_codes]
        if unknown:
            found.append(f"lines.{key}.topics: unknown topic codes {unknown} (known: {model.topic_codes})")
        if duplicates(line.topics):
            found.append(f"lines.{key}.topics: listed twice: {duplicates(line.topics)}")
        if line.queue not in model.queues:
            found.append(f"lines.{key}.queue: no queue {line.queue!r} (known: {sorted(model.queues)})")
    if model.sandbox.plain_number in model.lines:
        found.append(f"sandbox.plain_number {model.sandbox.plain_number} is also a line")
    return found


def _operators(model: HotlineModel) -> list[str]:
    found = [f"operators.{key}: id {op.id!r} differs from its table name"
             for key, op in model.operators.items() if key != op.id]
    extensions = [op.extension for op in model.operators.values()]
    if duplicates(extensions):
        found.append(f"operators: extensions used twice: {duplicates(extensions)}")
    taken = set(model.lines) | {model.sandbox.plain_number}
    found += [f"operators.{op.id}.extension {op.extension} is a hotline number"
              for op in model.operators.values() if op.extension in taken]
    citizens = set(model.sandbox.citizen_ids)
    found += [f"operators.{op.id}: the id is a sandbox citizen's" for op in model.operators.values()
              if op.id in citizens]
    return found


def _queues(model: HotlineModel) -> list[str]:
    found = [f"queues.{name}: a queue name is lower-case letters, digits, - and _" for name in model.queues
             if not QUEUE_NAME.match(name)]
    for name, queue in model.queues.items():
        for field in ("members", "agents"):
            listed = getattr(queue, field)
            unknown = [member for member in listed if member not in model.operators]
            if unknown:
                found.append(f"queues.{name}.{field}: not operators: {unknown}")
            if duplicates(listed):
                found.append(f"queues.{name}.{field}: listed twice: {duplicates(listed)}")
        both = sorted(set(queue.members) & set(queue.agents))
        if both:
            found.append(f"queues.{name}: {both} both always in the queue (members) and logging in (agents)")
    return found
