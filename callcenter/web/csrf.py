"""CSRF protection for every form post (asgi-csrf: a signed double-submit cookie; bearer-token requests are
exempt), with two things asgi-csrf does not do by itself:

- **File uploads.** asgi-csrf 0.11 reads a multipart body with ``FormParser(FileClass=...)``, an argument
  python-multipart no longer has (a TypeError on every upload). Here the multipart body is read up to its
  ``csrftoken`` field with python-multipart's current API, and asgi-csrf is handed the token the way it accepts
  without reading the body (the ``x-csrftoken`` header), then the body is replayed. The token must come before any
  file; the pages put it first. asgi-csrf itself never sees the multipart type (it would try to parse it).
- **Size.** A multipart post must say its ``Content-Length`` (browsers always do) and stay within ``max_upload``
  bytes, or it is refused (411, 413) before a byte of it is read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgi_csrf import asgi_csrf
from python_multipart import FormParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FIELD = "csrftoken"
HEADER = b"x-csrftoken"
HIDDEN = b"application/x-callcenter-upload"  # what asgi-csrf sees instead of multipart/form-data
REAL_TYPE = "callcenter.content_type"


class _Found(Exception):
    def __init__(self, token: str | None) -> None:
        self.token = token


class _Unreadable(Exception):
    """A multipart body python-multipart cannot parse."""


async def _token_of(boundary: bytes, receive: Receive) -> tuple[str | None, list[Message]]:
    """Read a multipart body up to its csrftoken field (None if a file or the end comes first); the messages read
    so far, to replay. A body that cannot be parsed raises :class:`_Unreadable`."""
    def on_field(field: object) -> None:
        if getattr(field, "field_name", b"") == FIELD.encode():
            value = getattr(field, "value", b"") or b""
            raise _Found(value.decode("utf-8", "replace"))

    def on_file(_file: object) -> None:
        raise _Found(None)

    parser = FormParser("multipart/form-data", on_field, on_file, boundary=boundary)
    messages: list[Message] = []
    more = True
    try:
        while more:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            parser.write(message.get("body", b""))
            more = message.get("more_body", False)
        parser.finalize()
    except _Found as found:
        return found.token, messages
    except ValueError as exc:  # python-multipart's parse errors
        raise _Unreadable(str(exc)) from exc
    return None, messages


def replay(messages: list[Message], receive: Receive) -> Callable[[], Awaitable[Message]]:
    """A ``receive`` that hands out the messages already read first, then the rest of the request."""
    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()
    return replayed


async def refuse_plain(send: Send, status: int, text: str) -> None:
    """Answer ``status`` with ``text`` (before any route: a middleware's refusal)."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
    await send({"type": "http.response.body", "body": text.encode()})


def _cookieless(scope: Scope) -> bool:
    """Open311 posts skip the CSRF check: those routes authenticate by api_key only and never read the session
    cookie, so a forged cross-site post carries nothing to ride on; an Open311 client that happens to send some
    cookie (a proxy's, say) must not be refused for lacking a CSRF token it was never given."""
    return str(scope.get("path", "")).startswith("/open311/")


class _Restore:
    """Inside asgi-csrf: give the request back its real Content-Type (hidden from asgi-csrf, see below)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        real = scope.get(REAL_TYPE)
        if real is not None:
            scope = {**scope, "headers": [(k, real if k == b"content-type" else v) for k, v in scope["headers"]]}
        await self.app(scope, receive, send)


class CsrfProtection:
    """asgi-csrf as Starlette middleware: a form post must carry the token its page was given.

    A multipart post reaches asgi-csrf with its token in the header and its Content-Type hidden, so asgi-csrf
    either lets it through on the header (or no cookie, a bearer token, Open311) or refuses it as a type it does
    not know: it never tries to parse the body itself.
    """

    def __init__(self, app: ASGIApp, secret: str, secure: bool, max_upload: int) -> None:
        self.app = asgi_csrf(_Restore(app), signing_secret=secret, cookie_secure=secure, cookie_samesite="Strict",
                             always_protect={"/sign-in"}, skip_if_scope=_cookieless)
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or []) if scope["type"] == "http" else {}
        content_type = headers.get(b"content-type", b"")
        kind, _, params = content_type.partition(b";")
        if kind.strip().lower() != b"multipart/form-data":
            await self.app(scope, receive, send)
            return
        length = headers.get(b"content-length", b"")
        if not length.isdigit():
            await refuse_plain(send, 411, "a file upload must say its Content-Length")
            return
        if int(length) > self.max_upload:
            await refuse_plain(send, 413, f"too large: at most {self.max_upload // (1024 * 1024)} MiB per upload")
            return
        boundary = next((p.strip().partition(b"=")[2].strip(b'"') for p in params.split(b";")
                         if p.strip().lower().startswith(b"boundary=")), b"")
        if not boundary:
            await refuse_plain(send, 400, "the form cannot be read: multipart/form-data without its boundary")
            return
        messages: list[Message] = []
        token = None
        if HEADER not in headers:
            try:
                token, messages = await _token_of(boundary, receive)
            except _Unreadable as exc:
                await refuse_plain(send, 400, f"the form cannot be read: {exc}")
                return
        hidden = [(k, HIDDEN if k == b"content-type" else v) for k, v in scope["headers"]]
        if token is not None:
            hidden.append((HEADER, token.encode("latin-1", "replace")))
        await self.app({**scope, "headers": hidden, REAL_TYPE: content_type}, replay(messages, receive), send)
