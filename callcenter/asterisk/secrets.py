"""SIP passwords: one per endpoint, derived from one secret key in the settings (never stored in the repository).

A hotline with 40 operators needs 40 passwords; deriving each from ``CALLCENTER_PBX__SIP_SECRET`` and the endpoint
id keeps them distinct without a second secrets file, and lets every part that must register a phone (the
sandbox's agents, later the browser softphone) compute the one it needs. Changing the key changes them all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def sip_password(secret: str, endpoint: str) -> str:
    """The SIP password of ``endpoint`` (24 URL-safe characters: safe in pjsip.conf and in a phone's menu)."""
    digest = hmac.new(secret.encode("utf-8"), endpoint.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:24]
