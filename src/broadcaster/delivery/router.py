"""HTTP endpoints of the delivery package: subscribers, broadcasts and reports, receipts, opt-in/out,
metrics and health."""

from __future__ import annotations

import html
import json
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import HTMLResponse, PlainTextResponse, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import select, text
from sse_starlette import EventSourceResponse

from broadcaster import audit
from broadcaster.delivery import abuse, live, planner, receipts, reports, subscribers, verification
from broadcaster.delivery.schemas import (
    BroadcastOut,
    BroadcastReport,
    CancelOut,
    DeliveryOut,
    SubscribeIn,
    SubscriberIn,
    SubscriberOut,
    SubscriberPatch,
)
from broadcaster.deps import RawBody, SessionDep
from broadcaster.domain import has_nul
from broadcaster.errors import BadRequest, Conflict, ErrorOut, Forbidden, Unprocessable, field_name
from broadcaster.models.delivery import Broadcast, Delivery
from broadcaster.pagination import IdPath, Page, PageParams, page_params
from broadcaster.security import Principal, Scope, require_scope
from broadcaster.settings import get_settings

router = APIRouter()

Reader = Annotated[Principal, Depends(require_scope(Scope.read))]
Writer = Annotated[Principal, Depends(require_scope(Scope.write))]
Publisher = Annotated[Principal, Depends(require_scope(Scope.publish))]

# Bodies the endpoints below parse themselves, documented so the OpenAPI document (and clients or fuzzers
# generated from it) know them.
_TWILIO_FORM: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "description": "Twilio's callback parameters (these are the ones read; all are signed).",
                    "properties": {
                        name: {"type": "string"}
                        for name in (
                            "MessageSid",
                            "CallSid",
                            "SmsSid",
                            "MessageStatus",
                            "CallStatus",
                            "SmsStatus",
                            "ErrorCode",
                            "ErrorMessage",
                            "From",
                            "Body",
                        )
                    },
                    "additionalProperties": {"type": "string"},
                }
            }
        },
    },
    "parameters": [
        {"name": "X-Twilio-Signature", "in": "header", "required": True, "schema": {"type": "string", "minLength": 1}}
    ],
}
_SENDGRID_EVENT = {
    "description": "One Event Webhook event, kept in the receipt log. These fields are read (strings from SendGrid, "
    "but any JSON is tolerated: one odd event must not make SendGrid retry the whole signed batch); items that are "
    "not objects are skipped.",
    "properties": {
        name: {}
        for name in ("event", "email", "sg_message_id", "delivery_id", "timestamp", "reason", "status", "response")
    },
}
_SENDGRID_EVENTS = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "array", "items": _SENDGRID_EVENT}}},
    },
    "parameters": [
        {"name": name, "in": "header", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in ("X-Twilio-Email-Event-Webhook-Signature", "X-Twilio-Email-Event-Webhook-Timestamp")
    ],
}
_SUBSCRIBE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": SubscribeIn.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "email": {"type": "string"},
                        "phone": {"type": "string"},
                        "locale": {"type": "string"},
                        "categories": {"type": "array", "items": {"type": "string"}},
                        "services": {"type": "array", "items": {"type": "string"}},
                    },
                    "description": "The status page's form: empty fields are left out.",
                }
            },
        },
    }
}
_SUBSCRIBED: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Subscribed, or a confirmation e-mail was sent (an HTML page when the form was posted).",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["status", "detail"],
                    "properties": {
                        "status": {"type": "string", "enum": ["pending_confirmation", "subscribed"]},
                        "detail": {"type": "string"},
                    },
                }
            },
            "text/html": {"schema": {"type": "string"}},
        },
    }
}
#: the e-mailed confirm/unsubscribe links answer a person with an HTML page, also when the link is not valid
_LINK_PAGE: dict[int | str, dict[str, Any]] = {
    400: {"description": "The link is not valid (an HTML page).", "content": {"text/html": {}}}
}


# --- subscribers ---------------------------------------------------------------------------------------


@router.post("/v1/subscribers", response_model=SubscriberOut, status_code=201, tags=["subscribers"])
def create_subscriber(body: SubscriberIn, session: SessionDep, who: Writer) -> SubscriberOut:
    row = subscribers.create(session, body)
    out = subscribers.out(session, row)
    audit.record(session, who.actor, "subscriber.create", "subscriber", row.id, after=out.model_dump(mode="json"))
    return out


@router.get("/v1/subscribers", response_model=Page[SubscriberOut], tags=["subscribers"])
def list_subscribers(
    session: SessionDep,
    _: Reader,
    page: Annotated[PageParams, Depends(page_params)],
    q: Annotated[str | None, Query(max_length=320, description="Substring of email, phone or name.")] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    locale: Annotated[str | None, Query(max_length=16)] = None,
    test_group: bool | None = None,
    service: Annotated[str | None, Query(max_length=64, description="Followers of this service.")] = None,
) -> Page[SubscriberOut]:
    rows = subscribers.list_subscribers(
        session,
        q=q,
        category=category,
        tag=tag,
        service=service,
        locale=locale,
        test_group=test_group,
        limit=page.limit,
        cursor=page.cursor,
    )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(items=subscribers.outs(session, rows), next_cursor=str(rows[-1].id) if more else None)


@router.get("/v1/subscribers/{subscriber_id}", response_model=SubscriberOut, tags=["subscribers"])
def get_subscriber(subscriber_id: IdPath, session: SessionDep, _: Reader) -> SubscriberOut:
    return subscribers.out(session, subscribers.get(session, subscriber_id))


@router.patch("/v1/subscribers/{subscriber_id}", response_model=SubscriberOut, tags=["subscribers"])
def patch_subscriber(subscriber_id: IdPath, body: SubscriberPatch, session: SessionDep, who: Writer) -> SubscriberOut:
    before = subscribers.out(session, subscribers.get(session, subscriber_id)).model_dump(mode="json")
    row = subscribers.patch(session, subscriber_id, body)
    out = subscribers.out(session, row)
    after = out.model_dump(mode="json")
    audit.record_change(session, who.actor, "subscriber.update", "subscriber", row.id, before=before, after=after)
    return out


@router.delete("/v1/subscribers/{subscriber_id}", status_code=204, tags=["subscribers"])
def delete_subscriber(subscriber_id: IdPath, session: SessionDep, who: Writer) -> Response:
    before = subscribers.out(session, subscribers.get(session, subscriber_id)).model_dump(mode="json")
    subscribers.delete(session, subscriber_id)
    audit.record(session, who.actor, "subscriber.delete", "subscriber", subscriber_id, before=before)
    return Response(status_code=204)


# --- broadcasts and reports ----------------------------------------------------------------------------


@router.get("/v1/broadcasts", response_model=Page[BroadcastOut], tags=["broadcasts"])
def list_broadcasts(
    session: SessionDep,
    _: Reader,
    page: Annotated[PageParams, Depends(page_params)],
    state: Annotated[str | None, Query(pattern="^(planning|sending|done|cancelled|failed)$")] = None,
    update_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Page[BroadcastOut]:
    stmt = select(Broadcast).order_by(Broadcast.id.desc()).limit(page.limit + 1)
    if page.cursor is not None:
        stmt = stmt.where(Broadcast.id < page.cursor)
    if state:
        stmt = stmt.where(Broadcast.state == state)
    if update_id:
        stmt = stmt.where(Broadcast.update_id == update_id)
    rows = list(session.scalars(stmt))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(items=[reports.out(r) for r in rows], next_cursor=str(rows[-1].id) if more else None)


@router.get("/v1/broadcasts/{broadcast_id}", response_model=BroadcastReport, tags=["broadcasts"])
def get_broadcast(broadcast_id: IdPath, session: SessionDep, _: Reader) -> BroadcastReport:
    """The broadcast with delivery counts per channel and status, progress (0..1) and send rate."""
    return reports.report(session, broadcast_id)


@router.post("/v1/broadcasts/{broadcast_id}/cancel", response_model=CancelOut, tags=["broadcasts"])
def cancel_broadcast(broadcast_id: IdPath, session: SessionDep, who: Publisher) -> CancelOut:
    """Stop a broadcast: pending deliveries are cancelled at once, claimed batches within a second."""
    row = reports.get_broadcast(session, broadcast_id)
    if row.state in ("done", "cancelled", "failed"):
        raise Conflict(f"Broadcast {broadcast_id} is already {row.state}.", field="broadcast_id")
    state = row.state
    n = planner.cancel(session, broadcast_id)
    audit.record(
        session,
        who.actor,
        "broadcast.cancel",
        "broadcast",
        broadcast_id,
        before={"state": state},
        after={"state": "cancelled", "deliveries_cancelled": n},
        cancelled=n,
    )
    return CancelOut(id=broadcast_id, state="cancelled", cancelled=n)


_EVENTS_DOC = (
    "Server-sent events (`text/event-stream`). `event: report` carries the same JSON as "
    "`GET /v1/broadcasts/{id}` (with `channels_report` and each channel's `eta`), sent when it changes and at "
    "most once a second; a comment line (`: ping`) every `BROADCAST_EVENTS_HEARTBEAT_SECONDS` (15 s) keeps "
    "proxies from closing the stream. Once the broadcast is done, cancelled or failed, its final report is "
    'followed by `event: end` (`{"state": ...}`) and the stream ends. An EventSource that reconnects '
    "(`Last-Event-ID`) to a finished broadcast gets 204, which stops its retries."
)


@router.get(
    "/v1/broadcasts/{broadcast_id}/events",
    tags=["broadcasts"],
    response_class=EventSourceResponse,
    responses={
        200: {"description": _EVENTS_DOC, "content": {"text/event-stream": {"schema": {"type": "string"}}}},
        204: {"description": "A reconnect (`Last-Event-ID`) after the broadcast finished: nothing more to send."},
        404: {"model": ErrorOut, "description": "No such broadcast."},
    },
)
async def broadcast_events(
    broadcast_id: IdPath,
    request: Request,
    _: Reader,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
) -> Response:
    """Live progress: the broadcast report as server-sent events until the broadcast is finished.

    Every database read runs in a worker thread with a short session of its own: no connection is held
    while a client reads the stream."""
    first = await live.first_report(broadcast_id)
    if last_event_id is not None and first[1] in live.FINAL_STATES:
        return Response(status_code=204)
    return EventSourceResponse(
        live.events(request, broadcast_id, first),
        ping=get_settings().broadcast_events_heartbeat_seconds,
        send_timeout=live.SEND_TIMEOUT,
    )


@router.get("/v1/broadcasts/{broadcast_id}/timeline", response_model=live.TimelineOut, tags=["broadcasts"])
def broadcast_timeline(
    broadcast_id: IdPath,
    session: SessionDep,
    _: Reader,
    bucket: Annotated[str, Query(pattern="^(1s|10s|1m)$", description="Bucket width: `1s`, `10s` or `1m`.")] = "1s",
) -> live.TimelineOut:
    """Deliveries sent and failed per time bucket (for a chart), counted in the database."""
    return live.timeline(session, broadcast_id, bucket)


StatusQ = Annotated[str | None, Query(max_length=16)]
ChannelQ = Annotated[str | None, Query(max_length=64)]
AddressQ = Annotated[str | None, Query(max_length=2048)]


@router.get("/v1/broadcasts/{broadcast_id}/deliveries", response_model=Page[DeliveryOut], tags=["broadcasts"])
def list_deliveries(
    broadcast_id: IdPath,
    session: SessionDep,
    _: Reader,
    page: Annotated[PageParams, Depends(page_params)],
    channel: ChannelQ = None,
    status_: Annotated[str | None, Query(alias="status", max_length=16)] = None,
    address: AddressQ = None,
) -> Page[DeliveryOut]:
    reports.get_broadcast(session, broadcast_id)
    stmt = (
        reports.deliveries_query(broadcast_id, channel, status_, address)
        .order_by(Delivery.id.desc())
        .limit(page.limit + 1)
    )
    if page.cursor is not None:
        stmt = stmt.where(Delivery.id < page.cursor)
    rows = list(session.scalars(stmt))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(items=[reports.delivery_out(r) for r in rows], next_cursor=str(rows[-1].id) if more else None)


@router.get(
    "/v1/broadcasts/{broadcast_id}/deliveries.csv",
    tags=["broadcasts"],
    response_class=StreamingResponse,
    responses={
        200: {"description": "The delivery log as CSV.", "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
def export_deliveries(
    broadcast_id: IdPath,
    session: SessionDep,
    _: Reader,
    channel: ChannelQ = None,
    status_: Annotated[str | None, Query(alias="status", max_length=16)] = None,
    address: AddressQ = None,
) -> StreamingResponse:
    """The per-recipient delivery log as CSV (streamed)."""
    reports.get_broadcast(session, broadcast_id)
    return StreamingResponse(
        reports.csv_rows(broadcast_id, channel, status_, address),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="broadcast-{broadcast_id}-deliveries.csv"'},
    )


# --- receipts (public, signed) -------------------------------------------------------------------------


def _public_url(request: Request) -> str:
    url = get_settings().public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return url


async def _twilio_form(request: Request) -> dict[str, Any]:
    form = await request.form()
    params = {k: v for k, v in form.items() if isinstance(v, str)}
    if not receipts.twilio_signature_ok(
        get_settings(), _public_url(request), params, request.headers.get("x-twilio-signature")
    ):
        raise Forbidden("Invalid Twilio signature.", field="X-Twilio-Signature")
    bad = next((k for k, v in params.items() if has_nul(k) or has_nul(v)), None)
    if bad is not None:  # PostgreSQL cannot store them; refused on every backend alike
        raise Unprocessable("Parameters must not contain NUL characters.", field=field_name([bad.replace("\x00", "")]))
    return params


# Endpoints that touch the database are plain `def` (FastAPI runs them in its thread pool): the body is
# read by an async dependency on the event loop, the database work never runs there (issue 10).
TwilioForm = Annotated[dict[str, Any], Depends(_twilio_form)]


@router.post(
    "/v1/webhooks/twilio/status",
    status_code=204,
    tags=["webhooks"],
    openapi_extra=_TWILIO_FORM
    | {
        "parameters": [
            *_TWILIO_FORM["parameters"],
            {"name": "delivery_id", "in": "query", "schema": {"type": "string"}, "description": "Set by Broadcaster."},
        ]
    },
)
def twilio_status(request: Request, params: TwilioForm, session: SessionDep) -> Response:
    """Twilio message/call status callback (signature required)."""
    receipts.apply_twilio(session, params, request.query_params.get("delivery_id"))
    return Response(status_code=204)


STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
START_WORDS = {"START", "YES", "UNSTOP", "OPTIN"}
HELP_WORDS = {"HELP", "INFO"}


def help_text(org: str) -> str:
    """The reply to HELP (also sent by the inbound fast path, delivery/inbound_fastpath.py)."""
    return f"{org} alerts. Reply STOP to unsubscribe, START to resubscribe. Msg&data rates may apply."


def _twiml(message: str | None) -> Response:
    from twilio.twiml.messaging_response import MessagingResponse

    reply = MessagingResponse()
    if message:
        reply.message(message)
    return Response(content=str(reply), media_type="application/xml")


@router.post(
    "/v1/webhooks/twilio/inbound",
    tags=["webhooks"],
    openapi_extra=_TWILIO_FORM,
    response_class=Response,
    responses={200: {"description": "TwiML reply.", "content": {"application/xml": {"schema": {"type": "string"}}}}},
)
def twilio_inbound(params: TwilioForm, session: SessionDep) -> Response:
    """Inbound SMS: STOP-family words opt out of SMS and voice, START-family (YES) opt in and confirm a number
    from the public form, HELP answers; anything else (and START/YES too, when a question was sent to the
    number) is an answer to the latest open question sent to that number (docs/responses.md)."""
    from broadcaster.responses.service import answer_sms

    sender = str(params.get("From", ""))
    word = str(params.get("Body", "")).strip().upper().strip(".!")
    org = get_settings().org_name
    if word in STOP_WORDS:
        # Twilio (and carriers) send the standard opt-out confirmation themselves; we only record it
        subscribers.set_sms_opt_out(session, sender, True)
        return _twiml(None)
    if word in START_WORDS:
        # YES (or START) also confirms a number from the public form (SMS double opt-in); Twilio answers
        # its opt-in keywords itself, so no reply of ours is added. It may also answer an open question.
        subscribers.set_sms_opt_out(session, sender, False)
        answer_sms(session, params, reply=False)
        return _twiml(None)
    if word in HELP_WORDS:
        return _twiml(help_text(org))
    return _twiml(answer_sms(session, params))


@router.post("/v1/webhooks/sendgrid/events", status_code=204, tags=["webhooks"], openapi_extra=_SENDGRID_EVENTS)
def sendgrid_events(request: Request, raw: RawBody, session: SessionDep) -> Response:
    """SendGrid signed Event Webhook (ECDSA over timestamp + raw body)."""
    if not receipts.sendgrid_signature_ok(
        get_settings(),
        raw,
        request.headers.get("x-twilio-email-event-webhook-signature"),
        request.headers.get("x-twilio-email-event-webhook-timestamp"),
    ):
        raise Forbidden("Invalid SendGrid Event Webhook signature.", field="X-Twilio-Email-Event-Webhook-Signature")
    try:
        events = json.loads(raw)
    except ValueError as exc:
        raise BadRequest("The body is not JSON.") from exc
    if not isinstance(events, list):
        raise BadRequest("Expected a JSON array of events.")
    bad = next((i for i, event in enumerate(events) if has_nul(event)), None)
    if bad is not None:  # PostgreSQL cannot store them; refused on every backend alike
        raise Unprocessable("Events must not contain NUL characters.", field=str(bad))
    receipts.apply_sendgrid(session, events)
    return Response(status_code=204)


# --- self-service: subscribe, confirm, unsubscribe -----------------------------------------------------


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    org = html.escape(get_settings().org_name)
    return HTMLResponse(
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        f"<title>{html.escape(title)} - {org}</title><main><h1>{html.escape(title)}</h1>{body}</main></html>",
        status_code=status_code,
    )


def _parse_json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object, or 400 `malformed_json` (also for nesting too deep to parse)."""
    try:
        data = orjson.loads(raw)
    except (orjson.JSONDecodeError, RecursionError) as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}", code="malformed_json") from exc
    if not isinstance(data, dict):
        raise BadRequest("Expected a JSON object.", field="body")
    return data


@router.post("/v1/subscribe", status_code=202, tags=["subscribe"], openapi_extra=_SUBSCRIBE_BODY, responses=_SUBSCRIBED)
async def subscribe(request: Request, session: SessionDep) -> Response:
    """Public self-service subscription (JSON or form). An email gets a confirmation link, a phone one
    confirmation text (reply YES); neither receives alerts before it is confirmed.

    Limits: requests per client IP (`SUBSCRIBE_RATE_LIMIT`) and phone signups per number prefix
    (`SUBSCRIBE_PHONE_PREFIX_RATE_LIMIT`) answer 429 with `Retry-After`; phones only from
    `SUBSCRIBE_PHONE_COUNTRIES`; an optional human check (`SUBSCRIBE_VERIFIER`, field `verification`)."""
    ip = abuse.client_ip(request)
    await anyio.to_thread.run_sync(abuse.check_ip, ip)  # the limits' storage may be Redis: off the loop
    is_form = not request.headers.get("content-type", "").startswith("application/json")
    if is_form:
        form = await request.form()
        keys = ("email", "phone", "locale", *verification.TOKEN_FIELDS)
        data: dict[str, Any] = {k: v for k in keys if isinstance(v := form.get(k), str) and v}
        data["categories"] = [c for c in form.getlist("categories") if isinstance(c, str) and c]
        data["services"] = [c for c in form.getlist("services") if isinstance(c, str) and c]
    else:
        data = _parse_json_object(await request.body())
    await anyio.to_thread.run_sync(verification.check, data, ip)
    try:
        body = SubscribeIn(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = field_name(first["loc"], whole="body")
        raise Unprocessable(f"{field}: {first['msg']}" if field else str(first["msg"]), field=field) from exc
    if body.phone:
        abuse.check_phone_country(body.phone)
        await anyio.to_thread.run_sync(abuse.check_phone_prefix, body.phone)
    # the database work in a thread: waiting for SQLite's write lock on the event loop froze every request
    # (banner included) while the request holding the lock could not commit (issue 10)
    outcome = await anyio.to_thread.run_sync(subscribers.subscribe, session, body)
    parts = []
    if outcome.email_pending:
        parts.append("Check your email for a confirmation link.")
    if outcome.phone_pending:
        parts.append("Reply YES to the text message we sent to confirm your number.")
    message = " ".join(parts) or "You are subscribed."
    pending = outcome.email_pending or outcome.phone_pending
    if is_form:
        return _page("Thank you", f"<p>{html.escape(message)}</p>", status_code=202)
    return Response(
        json.dumps({"status": "pending_confirmation" if pending else "subscribed", "detail": message}),
        status_code=202,
        media_type="application/json",
    )


@router.get("/v1/subscribe/challenge", tags=["subscribe"])
def subscribe_challenge() -> dict[str, Any]:
    """A proof-of-work challenge for `SUBSCRIBE_VERIFIER=pow`: find a decimal `nonce` such that SHA-256 of
    `challenge:nonce` starts with `difficulty` zero bits, and send `verification=challenge:nonce` (once,
    within `expires_in` seconds)."""
    return verification.new_challenge()


_NOT_VALID = "<p>This confirmation link is not valid: it expired (links last 7 days) or was cancelled.</p>"


@router.get("/v1/subscribe/confirm", tags=["subscribe"], response_class=HTMLResponse, responses=_LINK_PAGE)
def confirm_subscription_page(session: SessionDep, token: Annotated[str, Query(max_length=1000)]) -> HTMLResponse:
    """The landing page of a confirmation link: a button that confirms by POST (mail scanners follow GET
    links, so GET alone never confirms)."""
    row = subscribers.confirm_target(session, token)
    if row is None:
        return _page("Link not valid", _NOT_VALID, status_code=400)
    if row.email_confirmed and not row.email_opted_out:
        return _page("Subscription confirmed", "<p>This address is already confirmed.</p>")
    safe = html.escape(token, quote=True)
    return _page(
        "Confirm your subscription",
        f"<p>Get alerts by email at {html.escape(row.email or '')}?</p>"
        f"<form method=post action='/v1/subscribe/confirm?token={safe}'>"
        "<button type=submit>Confirm my subscription</button></form>",
    )


@router.post("/v1/subscribe/confirm", tags=["subscribe"], response_class=HTMLResponse, responses=_LINK_PAGE)
def confirm_subscription(session: SessionDep, token: Annotated[str, Query(max_length=1000)]) -> HTMLResponse:
    """Confirm an email subscription (the landing page's button)."""
    row = subscribers.confirm(session, token)
    if row is None:
        return _page("Link not valid", _NOT_VALID, status_code=400)
    return _page("Subscription confirmed", "<p>You will receive alerts by email.</p>")


@router.get("/v1/unsubscribe", tags=["subscribe"], response_class=HTMLResponse)
def unsubscribe_page(token: Annotated[str, Query(max_length=1000)]) -> HTMLResponse:
    """A confirmation page (link scanners fetch GET links, so GET alone never unsubscribes)."""
    safe = html.escape(token, quote=True)
    return _page(
        "Unsubscribe",
        f"<form method=post action='/v1/unsubscribe?token={safe}'>"
        "<input type=hidden name='List-Unsubscribe' value='One-Click'>"
        "<button type=submit>Unsubscribe from email alerts</button></form>",
    )


@router.post("/v1/unsubscribe", tags=["subscribe"], response_class=HTMLResponse, responses=_LINK_PAGE)
def unsubscribe(session: SessionDep, token: Annotated[str, Query(max_length=1000)]) -> HTMLResponse:
    """RFC 8058 one-click unsubscribe (`List-Unsubscribe=One-Click`); no cookies or login needed."""
    row = subscribers.unsubscribe_email(session, token)
    if row is None:
        return _page("Link not valid", "<p>This unsubscribe link is invalid.</p>", status_code=400)
    return _page("Unsubscribed", "<p>You will no longer receive email alerts.</p>")


# --- operations ----------------------------------------------------------------------------------------


@router.get("/metrics", include_in_schema=False)
def metrics_endpoint(_: Annotated[Principal, Depends(require_scope(Scope.metrics))]) -> Response:
    """Prometheus metrics; needs a key with the `metrics` scope (or `admin`): queue depths and send counts
    are operational detail an anonymous caller has no business reading."""
    from broadcaster.delivery import metrics

    body, ctype = metrics.render()
    return Response(content=body, media_type=ctype)


@router.get("/healthz", tags=["operations"], response_class=PlainTextResponse)
async def healthz() -> PlainTextResponse:
    """The process is up (answered on the event loop: no database, and no wait for a thread-pool slot)."""
    return PlainTextResponse("ok")


@router.get("/readyz", tags=["operations"])
def readyz() -> Response:
    """The database answers and its schema is at the latest migration."""
    from alembic.script import ScriptDirectory

    from broadcaster.db import get_engine
    from broadcaster.migrate import alembic_config

    try:
        with get_engine().connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except Exception as exc:
        body: dict[str, Any] = {"status": "unavailable", "detail": f"database: {type(exc).__name__}"}
        return Response(json.dumps(body), status_code=503, media_type="application/json")
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if set(current) != set(heads):
        body = {"status": "unavailable", "detail": "migrations pending", "current": list(current), "head": list(heads)}
        return Response(json.dumps(body), status_code=503, media_type="application/json")
    return Response(json.dumps({"status": "ok", **_static_status()}), media_type="application/json")


def _static_status() -> dict[str, Any]:
    """Static publishing's state, when it is on: a failing target shows as `degraded` (still 200: the API itself
    is ready; publishing never waits for the static copy)."""
    from broadcaster.db import get_sessionmaker
    from broadcaster.staticsite.runner import status as static_status

    with get_sessionmaker()() as session:
        state = static_status(session)
    if state is None:
        return {}
    return {"status": "degraded" if state["failing"] else "ok", "static_publishing": state}


__all__ = ["router", "status"]
