"""Security headers on every response, and the refusal to run outside the sandbox with the sandbox's secrets."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callcenter.settings import Settings

# No inline script or style anywhere: every asset is served by the app itself.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY"),
           (b"permissions-policy", b"camera=(), geolocation=(), microphone=(self)")]


class SecurityHeaders:
    """ASGI middleware adding :data:`HEADERS` to every HTTP response (unless the app set one itself)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((name, value) for name, value in HEADERS if name not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)


# The sandbox's development secrets: never acceptable on a real deployment.
DEFAULT_SECRETS = {
    "CALLCENTER_AMI__SECRET": ("ami", "secret", "hotline-dev-ami"),
    "CALLCENTER_PBX__SIP_SECRET": ("pbx", "sip_secret", "hotline-dev-sip"),
    "CALLCENTER_PBX__CONTROL_SECRET": ("pbx", "control_secret", "hotline-dev-control"),
    "CALLCENTER_API__SESSION_SECRET": ("api", "session_secret", "hotline-dev-session"),
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
