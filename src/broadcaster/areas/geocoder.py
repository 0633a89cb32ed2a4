"""Optional geocoding of a subscriber's address at CSV import (off unless GEOCODER_URL is set).

Speaks the Nominatim search API (`GET {GEOCODER_URL}/search?format=json&limit=1&q=<address>` answering
`[{"lat": "40.7", "lon": "-74.0", ...}]`), which Nominatim, Photon's Nominatim mode, LocationIQ and Pelias'
compatibility layers serve. Run your own for bulk imports: the public nominatim.openstreetmap.org allows one
request per second and forbids bulk geocoding.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable

from broadcaster import __version__
from broadcaster.settings import Settings

log = logging.getLogger(__name__)


def enabled(settings: Settings) -> bool:
    return bool(settings.geocoder_url)


def geocode(address: str, settings: Settings) -> tuple[float, float] | None:
    """(lat, lon) of the first match, or None (no match, a bad answer or the geocoder unreachable: logged)."""
    if not settings.geocoder_url or not address.strip():
        return None
    query = urllib.parse.urlencode({"format": "json", "limit": "1", "q": address.strip()})
    url = f"{settings.geocoder_url.rstrip('/')}/search?{query}"
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        log.warning("GEOCODER_URL must be an http(s) URL; not geocoding")
        return None
    headers = {"User-Agent": f"broadcaster/{__version__}", "Accept": "application/json"}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (http(s) only, checked above)
    try:
        with urllib.request.urlopen(request, timeout=settings.geocoder_timeout_seconds) as resp:  # noqa: S310
            data = json.loads(resp.read(1 << 20))
        first = data[0] if isinstance(data, list) and data else None
        if not isinstance(first, dict):
            return None
        lat, lon = float(first["lat"]), float(first["lon"])
    except (urllib.error.URLError, TimeoutError, OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("geocoding failed for an import row: %s", type(exc).__name__)
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    return lat, lon


def geocode_all(addresses: Iterable[str], settings: Settings) -> dict[str, tuple[float, float] | None]:
    """Each distinct address geocoded once."""
    out: dict[str, tuple[float, float] | None] = {}
    for address in addresses:
        if address not in out:
            out[address] = geocode(address, settings)
    return out
