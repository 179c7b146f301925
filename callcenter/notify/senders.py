"""The senders: e-mail through an SMTP relay and an HTTP webhook. Each sends one message or raises
:class:`DeliveryError` saying why (the worker retries later); neither retries by itself."""

from __future__ import annotations

import hashlib
import hmac
import smtplib
import ssl
from typing import Protocol

import httpx

from callcenter.notify.messages import Outgoing, email, webhook_body
from callcenter.settings import NotifySettings


class DeliveryError(Exception):
    """A message could not be delivered this time; the text says why."""


class Sender(Protocol):
    def send(self, message: Outgoing) -> None: ...


class SmtpSender:
    """E-mail over SMTP (optionally STARTTLS and a sign-in), one connection per message: tens a day."""

    def __init__(self, settings: NotifySettings, timezone: str) -> None:
        self.settings, self.timezone = settings, timezone

    def send(self, message: Outgoing) -> None:
        s = self.settings
        mail = email(message, s.sender, s.base_url, s.language, self.timezone)
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.timeout) as smtp:
                if s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.smtp_username:
                    smtp.login(s.smtp_username, s.smtp_password)
                refused = smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"smtp {s.smtp_host}:{s.smtp_port}: {exc}") from exc
        if refused:
            raise DeliveryError(f"smtp refused {', '.join(refused)}")


class WebhookSender:
    """A JSON POST signed with HMAC-SHA256; any 2xx answer is a delivery, anything else is retried."""

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self.client = httpx.Client(timeout=settings.timeout, follow_redirects=False)

    def send(self, message: Outgoing) -> None:
        body = webhook_body(message, self.settings.base_url)
        signature = hmac.new(self.settings.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.key,
                   "X-Callcenter-Event": message.kind, "X-Callcenter-Signature": f"sha256={signature}",
                   "User-Agent": "callcenter-notify"}
        try:
            answer = self.client.post(message.target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {message.target}: {exc.__class__.__name__}: {exc}") from exc
        if not answer.is_success:
            raise DeliveryError(f"webhook {message.target}: HTTP {answer.status_code}")

    def close(self) -> None:
        self.client.close()
