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
from broadcaster.errors import NotFound
from broadcaster.pagination import IdPath
from broadcaster.public import banner_bytes, cap, cap_log, feeds, pages, queries, statuspage
from broadcaster.public.cache import BANNER_PATHS, get_cache
from broadcaster.services.service import today

router = APIRouter(tags=["public"])
invalidation.install()

_BANNER_DOC = {
    "/v1/banner": (
        "Active banners as JSON",
        "The active banners (severity, title, short text, link, 'how to reach us' routes, updated_at), "
        "filtered by `site` and translated by `lang` or `Accept-Language`. Served from memory by a raw "
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
@router.get("/status", response_class=HTMLResponse, summary="Public status page")
def status_page(request: Request) -> Response:
    # keyed by the UTC day too: the components' 90-day bars move on at midnight
    return _cached(request, ("status", today()), _with_session(pages.status_page), banner_bytes.HTML)


@router.get("/status/history", response_class=HTMLResponse, summary="Past incidents")
def history_page(request: Request) -> Response:
    return _cached(request, ("history",), _with_session(pages.history_page), banner_bytes.HTML)


@router.get("/status/incidents/{incident_id}", response_class=HTMLResponse, summary="One incident's timeline")
def incident_page(request: Request, incident_id: IdPath) -> Response:
    return _cached(
        request, ("incident", incident_id), _with_session(pages.incident_page, incident_id), banner_bytes.HTML
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


# --- components (services) as JSON, shaped like Atlassian Statuspage's /api/v2 (see docs/services.md) -----
@router.get(
    "/v1/public/components.json",
    summary="Public components and their status (Statuspage /api/v2/components.json in spirit)",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}, 304: {"description": "Not modified (If-None-Match)."}},
)
def components_json(request: Request) -> Response:
    return _cached(request, ("components.json",), _with_session(statuspage.components_json), banner_bytes.JSON)


@router.get(
    "/v1/public/summary.json",
    summary="Overall status, components and unresolved incidents (Statuspage /api/v2/summary.json in spirit)",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}, 304: {"description": "Not modified (If-None-Match)."}},
)
def summary_json(request: Request) -> Response:
    return _cached(request, ("summary.json",), _with_session(statuspage.summary_json), banner_bytes.JSON)


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
