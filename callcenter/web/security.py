"""Security headers on every response, and the refusal to run outside the sandbox with the sandbox's secrets."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callcenter.settings import Settings

# No inline script or style anywhere: every asset is served by the app itself. connect-src adds the origin of
# Asterisk's secure WebSocket, where the operator desk's softphone registers.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "connect-src 'self'{connect}; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY"),
           (b"permissions-policy", b"camera=(), geolocation=(), microphone=(self)")]


def csp(connect: str = "") -> str:
    """The Content-Security-Policy, allowing ``connect`` (e.g. ``wss://198.51.100.1:8089``) besides the app."""
    return CSP.format(connect=f" {connect}" if connect else "")


class SecurityHeaders:
    """ASGI middleware adding :data:`HEADERS` and the CSP to every HTTP response (unless the app set one itself).
    ``connect`` says, per response, which WebSocket origin the pages may open (the model may change while up)."""

    def __init__(self, app: ASGIApp, connect: Callable[[], str] = str) -> None:
        self.app = app
        self.connect = connect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                wanted = [(b"content-security-policy", csp(self.connect()).encode()), *HEADERS]
                message["headers"] = [*message.get("headers", []),
                                      *((name, value) for name, value in wanted if name not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)


# The sandbox's development secrets: never acceptable on a real deployment.
DEFAULT_SECRETS = {
    "CALLCENTER_AMI__SECRET": ("ami", "secret", "hotline-dev-ami"),
    "CALLCENTER_PBX__SIP_SECRET": ("pbx", "sip_secret", "hotline-dev-sip"),
    "CALLCENTER_PBX__CONTROL_SECRET": ("pbx", "control_secret", "hotline-dev-control"),
    "CALLCENTER_API__SESSION_SECRET": ("api", "session_secret", "hotline-dev-session"),
    "CALLCENTER_API__LIVE_SECRET": ("api", "live_secret", "hotline-dev-live"),
    "CALLCENTER_NOTIFY__WEBHOOK_SECRET": ("notify", "webhook_secret", "hotline-dev-webhook"),
}


def default_secrets_in_use(settings: Settings) -> list[str]:
    """The environment variables still holding the sandbox's development secrets."""
    return [variable for variable, (section, field, default) in DEFAULT_SECRETS.items()
            if getattr(getattr(settings, section), field) == default]


def is_sandbox(settings: Settings) -> bool:
    """Whether this runs against the development sandbox (its Asterisk configuration folder)."""
    return settings.pbx.config_dir.resolve() == (settings.sandbox.root / "etc/asterisk").resolve()


def refuse_default_secrets(settings: Settings) -> str:
    """Why the service must not start (default secrets outside the sandbox), or ``""``."""
    found = default_secrets_in_use(settings)
    if found and not is_sandbox(settings):
        return (f"refusing to start outside the sandbox with its development secrets: set {', '.join(found)} "
                "(see README, Configuration)")
    return ""
