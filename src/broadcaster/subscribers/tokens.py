"""Subscribers' signed links: one-click unsubscribe (RFC 8058) and e-mail confirmation.

Confirmation tokens carry the address they confirm and the time they were issued: they expire after
`CONFIRM_MAX_AGE` (7 days), and one issued before the subscriber's latest unsubscribe cannot undo it.
"""

from __future__ import annotations

import time

from broadcaster.settings import get_settings
from broadcaster.signing import sign

#: seconds a confirmation link stays valid
CONFIRM_MAX_AGE = 7 * 24 * 3600


def unsubscribe_url(subscriber_id: int, channel: str = "email") -> str:
    token = sign("unsubscribe", {"s": subscriber_id, "c": channel})
    return f"{get_settings().public_url.rstrip('/')}/v1/unsubscribe?token={token}"


def confirm_url(subscriber_id: int, email: str, issued: float | None = None) -> str:
    """The landing page of an email confirmation (it confirms by POST: mail scanners follow GET links).
    `t`, the issue time, has milliseconds: it is compared with the time of the latest unsubscribe."""
    t = round(time.time() if issued is None else issued, 3)
    token = sign("confirm", {"s": subscriber_id, "e": email, "t": t})
    return f"{get_settings().public_url.rstrip('/')}/v1/subscribe/confirm?token={token}"
