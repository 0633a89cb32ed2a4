"""Showing secrets safely: settings values, webhook URLs (their token is in the path or query) and API keys."""

from __future__ import annotations

from urllib.parse import urlsplit


def mask(value: object | None) -> str | None:
    """Mask a secret for display: keep at most the last 4 characters."""
    if value is None:
        return None
    raw = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    if len(raw) <= 4:
        return "****"
    return "****" + raw[-4:]


def mask_url(url: str) -> str:
    """Mask a secret URL for display. Webhook URLs carry their token in the path (Slack, Teams) or the query,
    and sometimes credentials before the host: show scheme, host, port and a hint of the path only."""
    parsed = urlsplit(url)
    host = parsed.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    try:
        port = f":{parsed.port}" if parsed.port is not None else ""
    except ValueError:
        port = ""
    path = parsed.path
    if len(path) > 8:
        path = path[:4] + "****" + path[-4:]
    return f"{parsed.scheme}://{host}{port}{path}"


def is_url(address: str) -> bool:
    """Whether a delivery address is a URL (a webhook target: a secret, shown only masked)."""
    return address[:8].lower().startswith(("http://", "https://"))
