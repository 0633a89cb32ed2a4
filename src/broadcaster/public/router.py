"""HTTP endpoints of the public package: banner (documented fallback of the fast path), status page, feeds.

None of these need authentication. Everything is rendered once per content change (see cache.py)
and answered with an ETag, `Cache-Control: public` and 304 on `If-None-Match`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from broadcaster import invalidation, webpage
from broadcaster.domain import normalize_locale
from broadcaster.errors import BadRequest, NotFound
from broadcaster.pagination import IdPath
from broadcaster.public import banner_bytes, cap, cap_log, feeds, pages, queries, statuspage
from broadcaster.public.cache import BANNER_PATHS, get_cache
from broadcaster.services.service import today
from broadcaster.settings import get_settings

router = APIRouter(tags=["public"])
invalidation.install()

_BANNER_DOC = {
    "/v1/banner": (
        "Active banners as JSON",
        "The active banners (severity, title, short text, link, 'how to reach us' routes, updated_at), "
        "filtered by `site` and translated by `lang` or `Accept-Language` (the latest update in that language; "
        "when only an earlier update has it, that one beside the latest as `earlier`). Served from memory by a raw "
        "ASGI fast path in front of this app, with ETag/304, Cache-Control and CORS for any origin.",
        "application/json",
    ),
    "/v1/banner.html": ("Active banners as an accessible HTML fragment", "Same data as /v1/banner.", "text/html"),
    "/v1/banner.js": (
        "The embeddable banner script",
        'Add `<script src=".../v1/banner.js" async data-site="www" data-refresh="60"></script>` to a page.',
        "text/javascript",
    ),
}


def _banner_route(path: str) -> Callable[..., Any]:
    kind = BANNER_PATHS[path]

    async def endpoint(request: Request, site: str | None = None, lang: str | None = None) -> Response:
        status, headers, body = await get_cache().respond(
            kind,
            request.method,
            request.scope["query_string"],
            request.headers.get("accept-language", "").encode("latin-1") or None,
            request.headers.get("if-none-match", "").encode("latin-1") or None,
        )
        response = Response(content=body, status_code=status)
        response.raw_headers = headers  # exact bytes, same as the fast path
        return response

    endpoint.__name__ = "banner_" + kind
    return endpoint


for _path, (_summary, _description, _media) in _BANNER_DOC.items():
    # HEAD and OPTIONS (CORS preflight) answer from the same cache but stay out of the schema, so the
    # OpenAPI document has one operation (and one operation id) per banner path.
    router.add_api_route(_path, _banner_route(_path), methods=["HEAD", "OPTIONS"], include_in_schema=False)
    router.add_api_route(
        _path,
        _banner_route(_path),
        methods=["GET"],
        operation_id="banner_" + BANNER_PATHS[_path],
        summary=_summary,
        description=_description,
        response_class=Response,
        responses={200: {"content": {_media: {}}}, 304: {"description": "Not modified (If-None-Match)."}},
    )


def _cached(request: Request, key: Any, build: Callable[[], bytes | None], content_type: bytes) -> Response:
    """Build once per content change, then answer with the shared ETag/304/Cache-Control logic."""

    def make() -> banner_bytes.Entry | None:
        body = build()
        return None if body is None else banner_bytes.make_entry(body, content_type, vary=False)

    entry = get_cache().memo(key, make)
    if entry is None:
        raise NotFound("Not found.", field="id")
    inm = request.headers.get("if-none-match")
    from broadcaster.public.negotiation import etag_matches

    if inm is not None and etag_matches(inm.encode("latin-1"), entry.etag):
        response = Response(status_code=304)
        response.raw_headers = list(entry.headers_304)
        return response
    response = Response(content=b"" if request.method == "HEAD" else entry.body)
    response.raw_headers = list(entry.headers)
    return response


def _with_session(fn: Callable[..., bytes | None], *args: Any) -> Callable[[], bytes | None]:
    def build() -> bytes | None:
        from broadcaster.db import get_sessionmaker

        with get_sessionmaker()() as session:
            return fn(session, *args)

    return build


# --- status page -----------------------------------------------------------------------------------------
_LANG_DOC = (
    "`lang=<tag>`: each update in that language when it has a translation, otherwise in its own language (marked "
    "with its `lang` attribute), an untranslated newer update pointing to the latest one in that language. Only "
    "SUPPORTED_LOCALES (or their language) select a variant; any other valid tag shows the page as without it."
)


def _page_lang(lang: str | None) -> str | None:
    """The status pages' `lang`: normalised, one of SUPPORTED_LOCALES (exact, else by language) or None; 400
    naming `lang` when malformed. Bounded, so the cached variants stay few."""
    if not lang:
        return None
    try:
        tag = normalize_locale(lang)
    except ValueError as exc:
        raise BadRequest(str(exc), field="lang") from exc
    supported = get_settings().supported_locales
    if tag in supported:
        return tag
    return next((loc for loc in supported if loc.split("-")[0] == tag.split("-")[0]), None)


@router.get("/status", response_class=HTMLResponse, summary="Public status page", description=_LANG_DOC)
def status_page(request: Request, lang: str | None = None) -> Response:
    tag = _page_lang(lang)
    # keyed by the UTC day too: the components' 90-day bars move on at midnight
    return _cached(request, ("status", today(), tag), _with_session(pages.status_page, tag), banner_bytes.HTML)


@router.get("/status/history", response_class=HTMLResponse, summary="Past incidents", description=_LANG_DOC)
def history_page(request: Request, lang: str | None = None) -> Response:
    tag = _page_lang(lang)
    return _cached(request, ("history", tag), _with_session(pages.history_page, tag), banner_bytes.HTML)


@router.get(
    "/status/incidents/{incident_id}",
    response_class=HTMLResponse,
    summary="One incident's timeline",
    description=_LANG_DOC,
)
def incident_page(request: Request, incident_id: IdPath, lang: str | None = None) -> Response:
    tag = _page_lang(lang)
    return _cached(
        request,
        ("incident", incident_id, tag),
        _with_session(pages.incident_page, incident_id, tag),
        banner_bytes.HTML,
    )


# --- favicon (shipped in the package: broadcaster/webpage/favicon.{ico,svg}) ---------------------------------
def _favicon(name: str) -> Callable[[], Response]:
    def endpoint() -> Response:
        return Response(
            webpage.favicon(name),
            media_type=webpage.FAVICON_TYPES[name],
            headers={"Cache-Control": "public, max-age=86400"},
        )

    endpoint.__name__ = name.replace(".", "_")
    return endpoint


for _name in webpage.FAVICON_TYPES:
    router.add_api_route(f"/{_name}", _favicon(_name), methods=["GET", "HEAD"], include_in_schema=False)


# --- the Statuspage-compatible public API (Atlassian Statuspage public API v2; see docs/public.md) --------
_JSON_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}}},
    304: {"description": "Not modified (If-None-Match)."},
}

#: path under /api/v2 -> (cache key and builder, summary)
_STATUSPAGE: dict[str, tuple[str, Callable[..., bytes], str]] = {
    "summary.json": (
        "summary",
        statuspage.summary_json,
        "Page status, components, unresolved incidents, upcoming and running maintenance",
    ),
    "status.json": ("status", statuspage.status_json, "Page status rollup (indicator and description)"),
    "components.json": ("components", statuspage.components_json, "Public components and their status"),
    "incidents.json": ("incidents", statuspage.incidents_json, "The 50 most recent public incidents"),
    "incidents/unresolved.json": (
        "unresolved",
        statuspage.unresolved_json,
        "Public incidents investigating, identified or monitoring",
    ),
    "scheduled-maintenances.json": (
        "maintenances",
        lambda s: statuspage.maintenances_json(s, "all"),
        "The 50 most recent scheduled maintenances",
    ),
    "scheduled-maintenances/upcoming.json": (
        "maintenances-upcoming",
        lambda s: statuspage.maintenances_json(s, "upcoming"),
        "Scheduled maintenances not started yet",
    ),
    "scheduled-maintenances/active.json": (
        "maintenances-active",
        lambda s: statuspage.maintenances_json(s, "active"),
        "Scheduled maintenances in progress",
    ),
}

#: the paths served before the Statuspage API existed: same bytes as their /api/v2 twin
_OLD_PATHS = {"/v1/public/summary.json": "summary.json", "/v1/public/components.json": "components.json"}


def _statuspage_route(name: str, build: Callable[..., bytes]) -> Callable[..., Any]:
    def endpoint(request: Request) -> Response:
        return _cached(request, ("statuspage", name), _with_session(build), banner_bytes.JSON)

    endpoint.__name__ = "statuspage_" + name.replace("-", "_")
    return endpoint


for _sub, (_name, _build, _summary) in _STATUSPAGE.items():
    router.add_api_route(
        "/api/v2/" + _sub,
        _statuspage_route(_name, _build),
        methods=["GET"],
        summary=f"{_summary} (Statuspage API v2)",
        response_class=Response,
        responses=_JSON_RESPONSES,
    )
    # also under the status page's own URL (the documents' `page.url`): clients that build the API's URL from
    # the page URL they were given, or from `page.url`, find it there too
    router.add_api_route(
        "/status/api/v2/" + _sub, _statuspage_route(_name, _build), methods=["GET"], include_in_schema=False
    )
for _old, _sub in _OLD_PATHS.items():
    _name, _build, _summary = _STATUSPAGE[_sub]
    router.add_api_route(
        _old,
        _statuspage_route(_name, _build),
        methods=["GET"],
        operation_id="statuspage_old_" + _name,
        summary=f"Same as /api/v2/{_sub} (kept for existing readers)",
        deprecated=True,
        response_class=Response,
        responses=_JSON_RESPONSES,
    )


# --- feeds -------------------------------------------------------------------------------------------------
RSS = b"application/rss+xml; charset=utf-8"
ATOM = b"application/atom+xml; charset=utf-8"


def _feed(session: Any, kind: str) -> bytes:
    return feeds.public_feed(queries.public_updates(session), kind)


@router.get("/v1/feeds/rss.xml", summary="RSS 2.0 feed of public updates", response_class=Response)
def rss_feed(request: Request) -> Response:
    return _cached(request, ("rss",), _with_session(_feed, "rss"), RSS)


@router.get("/v1/feeds/atom.xml", summary="Atom feed of public updates", response_class=Response)
def atom_feed(request: Request) -> Response:
    return _cached(request, ("atom",), _with_session(_feed, "atom"), ATOM)


def _cap_index(session: Any) -> bytes:
    return feeds.cap_index(cap_log.recent(session))


@router.get("/v1/feeds/cap.xml", summary="Atom index of CAP 1.2 alerts", response_class=Response)
def cap_feed(request: Request) -> Response:
    return _cached(request, ("cap",), _with_session(_cap_index), ATOM)


def _cap_alert(session: Any, update_id: int) -> bytes | None:
    message = cap_log.publish_message(session, update_id)
    return None if message is None else message.xml


@router.get(
    "/v1/feeds/cap/{update_id}.xml",
    summary="The CAP 1.2 alert an update was published with",
    description="The stored bytes of the message first emitted for the update; later changes are new messages "
    "(`/v1/feeds/cap/messages/{message_id}.xml`, listed in `/v1/feeds/cap.xml`).",
    response_class=Response,
)
def cap_alert(request: Request, update_id: IdPath) -> Response:
    return _cached(request, ("cap", update_id), _with_session(_cap_alert, update_id), cap.CONTENT_TYPE)


def _cap_message(session: Any, message_id: int) -> bytes | None:
    message = cap_log.message(session, message_id)
    return None if message is None else message.xml


@router.get(
    "/v1/feeds/cap/messages/{message_id}.xml",
    summary="One CAP 1.2 message of the log (Alert, Update or Cancel), byte for byte as first emitted",
    response_class=Response,
)
def cap_message(request: Request, message_id: IdPath) -> Response:
    return _cached(request, ("cap-message", message_id), _with_session(_cap_message, message_id), cap.CONTENT_TYPE)
