"""Pre-rendering of the banner variants (JSON, HTML fragment) and banner.js into ready-to-send bytes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import orjson

from broadcaster.public.palette import ASSERTIVE, PALETTE
from broadcaster.public.snapshot import BannerItem, Earlier
from broadcaster.settings import get_settings

JSON = b"application/json"
HTML = b"text/html; charset=utf-8"
JS = b"text/javascript; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Entry:
    """A ready response: body, strong ETag and the header lists for 200 and 304."""

    body: bytes
    etag: bytes
    headers: list[tuple[bytes, bytes]]
    headers_304: list[tuple[bytes, bytes]]


def cache_control() -> bytes:
    s = get_settings()
    return f"public, max-age={s.banner_max_age}, stale-while-revalidate={s.banner_stale_while_revalidate}".encode()


def banner_csp() -> bytes:
    """CSP of the embeddable banner fragment: framed by BANNER_FRAME_ANCESTORS (other pages: FRAME_ANCESTORS)."""
    from broadcaster.middleware import page_csp

    return page_csp(get_settings().banner_frame_ancestors).encode()


def make_entry(body: bytes, content_type: bytes, *, vary: bool = True, csp: bytes | None = None) -> Entry:
    etag = b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'
    common = [
        (b"etag", etag),
        (b"cache-control", cache_control()),
        (b"access-control-allow-origin", b"*"),
        (b"x-content-type-options", b"nosniff"),
    ]
    if vary:
        common.append((b"vary", b"Accept-Language"))
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *common]
    if csp is not None:
        headers.append((b"content-security-policy", csp))
    return Entry(body, etag, headers, common)


def _earlier_dict(earlier: Earlier) -> dict[str, object]:
    return {"id": earlier.update_id, "locale": earlier.locale, "text": earlier.text, "updated_at": earlier.updated_at}


def _item_dict(item: BannerItem, prefs: tuple[str, ...]) -> dict[str, object]:
    shown = item.choose(prefs, get_settings().default_locale)
    earlier = shown.earlier
    return {
        "id": item.update_id,
        "incident_id": item.incident_id,
        "severity": item.severity,
        "title": item.title,
        "text": shown.text,
        "locale": shown.locale,
        #: a language was asked for and `text` is not in it (it is in `locale`, the update's own language)
        "translation_missing": shown.missing,
        #: the latest earlier update in the asked language, shown beside `text`
        "earlier": None if earlier is None else _earlier_dict(earlier),
        "kind": item.kind,
        "status": item.status,
        "category": item.category,
        "link": item.links[0]["url"],
        "links": list(item.links),
        "routes": list(item.routes),
        "updated_at": item.updated_at,
        "area": item.area,
    }


def banner_json(items: tuple[BannerItem, ...], prefs: tuple[str, ...]) -> bytes:
    banners = [_item_dict(i, prefs) for i in items]
    updated = max((i.updated_at for i in items), default=None)
    return orjson.dumps({"banners": banners, "updated_at": updated})


def banner_html(items: tuple[BannerItem, ...], prefs: tuple[str, ...]) -> bytes:
    from broadcaster.public.templating import env

    banners = [_item_dict(i, prefs) for i in items]
    return env().get_template("banner.html").render(banners=banners, assertive=ASSERTIVE).encode()


def banner_js(*, static_url: str | None = None, api: str | None = None) -> bytes:
    """banner.js with the server's defaults (refresh interval, palette) filled in.

    `static_url` (default STATIC_PUBLIC_URL): the script reads the banner from the static copy there first and
    falls back to the service; `api`: the service's banner URL (the static copy of the script is not served by
    the service, so it cannot derive it from its own address)."""
    settings = get_settings()
    source = resources.files("broadcaster.public").joinpath("static/banner.js").read_bytes()
    config = orjson.dumps(
        {
            "refresh": settings.banner_refresh_seconds,
            "palette": PALETTE,
            "assertive": sorted(ASSERTIVE),
            "static": (settings.static_public_url if static_url is None else static_url).rstrip("/"),
            "api": api,
            "locales": list(settings.supported_locales),
        }
    ).replace(b"<", b"\\u003c")
    return source.replace(b"/*CONFIG*/null", config)
