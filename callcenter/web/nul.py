"""Refuse a NUL character in a request's path, query string or (url-encoded) form before any route sees it.

No field of the hotline's holds one, and PostgreSQL's text cannot store one: a route that took it to the database
(a token's name, a display name, a sign-in name) failed with a server error there, and SQLite stored what no page
should show. Routes that check their own text (case forms, Open311, notes) refused it already; this covers every
other one at once (Open311 is left to refuse it in its own error format). Multipart forms (files, whose bytes may
be anything) are left to their routes, which check their text fields. A url-encoded form is read whole here (as the
CSRF check and the route read it anyway), up to ``MAX_FORM`` bytes.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callcenter.web.csrf import refuse_plain, replay

MAX_FORM = 1024 * 1024  # the largest form a page sends (a case's texts) is a few tens of kilobytes
FORM = b"application/x-www-form-urlencoded"
REFUSED = "the request contains a NUL character (%00), which no field takes"
OPEN311 = "/open311/"  # checks every value itself and answers in the GeoReport v2 error format its clients read


def _has_nul(raw: bytes) -> bool:
    return b"%00" in raw or b"\x00" in raw


class NoNul:
    """ASGI middleware: 400 for a NUL in the path, the query string or a url-encoded form; 413 for a form larger
    than :data:`MAX_FORM`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(OPEN311):
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", "") or _has_nul(scope.get("query_string", b"")):
            await refuse_plain(send, 400, REFUSED)
            return
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
        if content_type.partition(b";")[0].strip().lower() != FORM:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size, more = 0, True
        while more:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > MAX_FORM:
                await refuse_plain(send, 413, f"too large: a form takes at most {MAX_FORM // 1024} KiB")
                return
            more = message.get("more_body", False)
        if _has_nul(b"".join(m.get("body", b"") for m in messages)):
            await refuse_plain(send, 400, REFUSED)
            return
        await self.app(scope, replay(messages, receive), send)
