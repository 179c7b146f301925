"""What a department is told: an e-mail (subject and plain text, in the hotline's language) and a webhook body
(JSON), both made from an outbox row's payload. Pure: no I/O, no clock."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from callcenter.web.i18n import Formats, translations


@dataclass(frozen=True)
class Outgoing:
    """One message to send: the outbox row's key (the receiver's de-duplication key), channel and target."""

    key: str
    kind: str
    channel: str
    target: str
    payload: str


def case_url(base_url: str, number: str) -> str:
    return f"{base_url.rstrip('/')}/cases/{number}"


def email(message: Outgoing, sender: str, base_url: str, language: str, timezone: str) -> EmailMessage:
    """The e-mail for ``message``: its Message-ID comes from the outbox key, the same on every attempt."""
    data = json.loads(message.payload)
    _ = translations(language).gettext
    formats = Formats(language, timezone)
    label = data.get("topic_label", {}).get(language) or data["topic"]
    subject = (_("New case %(number)s: %(topic)s") if message.kind == "forwarded"
               else _("Overdue case %(number)s: %(topic)s")) % {"number": data["number"], "topic": label}
    due = formats.moment(datetime.fromisoformat(data["due_at"])) if data.get("due_at") else ""
    lines = [
        (_("A case was forwarded to %(department)s.") if message.kind == "forwarded"
         else _("A case of %(department)s is past its target time.")) % {"department": data["department_name"]},
        "",
        f"{_('Case')}: {data['number']}",
        f"{_('Topic')}: {label}",
        f"{_('Due')}: {due}",
        f"{_('Location')}: {data.get('location') or '-'}",
        "",
        data["description"],
        "",
        case_url(base_url, data["number"]),
    ]
    domain = sender.rpartition("@")[2] or "callcenter.invalid"
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = sender
    mail["To"] = message.target
    mail["Message-ID"] = f"<{hashlib.sha256(message.key.encode()).hexdigest()[:40]}@{domain}>"
    mail["X-Callcenter-Key"] = message.key
    mail.set_content("\n".join(lines))
    return mail


def webhook_body(message: Outgoing, base_url: str) -> bytes:
    """The webhook's JSON body: the event, its de-duplication key and the case."""
    data = json.loads(message.payload)
    event = data.pop("event")
    data["url"] = case_url(base_url, data["number"])
    return json.dumps({"event": event, "key": message.key, "case": data}, ensure_ascii=False,
                      sort_keys=True).encode()
