"""HTTP endpoints of the delivery engine: broadcasts, their reports, progress and exports, and the providers'
signed receipts (Twilio status callbacks, SendGrid's Event Webhook)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sse_starlette import EventSourceResponse

from broadcaster import audit, doors
from broadcaster.delivery import live, planner, receipts, reports
from broadcaster.delivery.schemas import (
    BroadcastOut,
    BroadcastReport,
    CancelOut,
    DeliveryOut,
    StopOut,
)
from broadcaster.delivery.twilio_form import TWILIO_FORM_DOC, TwilioForm
from broadcaster.deps import RawBody, SessionDep
from broadcaster.domain import has_nul
from broadcaster.errors import BadRequest, Conflict, ErrorOut, Forbidden, Unprocessable
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


@router.post(
    "/v1/broadcasts/{broadcast_id}/cancel",
    response_model=CancelOut,
    tags=["broadcasts"],
    openapi_extra=doors.not_a_door("stops a broadcast's pending deliveries; never sends"),
)
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


@router.post(
    "/v1/broadcasts/{broadcast_id}/stop",
    response_model=StopOut,
    tags=["broadcasts"],
    responses={
        404: {"model": ErrorOut, "description": "No such broadcast."},
        409: {
            "model": ErrorOut,
            "description": "The send hold is over and the broadcast has started (`hold_over`: use "
            "`POST /v1/broadcasts/{id}/cancel` to stop what is not sent yet), or it already finished.",
        },
    },
    openapi_extra=doors.not_a_door("stops a broadcast during its send hold, before anything is sent; never sends"),
)
def stop_broadcast(broadcast_id: IdPath, session: SessionDep, who: Publisher) -> StopOut:
    """Stop a broadcast during its send hold (SEND_HOLD_SECONDS after publishing or approving): it is cancelled
    before any message is handed to a provider. Once the hold is over and the worker has started it, the answer
    is 409 `hold_over` (Cancel stops what is left). The update stays published: the status page and banner show
    it until a correction or retraction."""
    row = reports.get_broadcast(session, broadcast_id)
    before = {"state": row.state, "not_before": row.not_before}
    if not planner.stop(session, broadcast_id):
        session.refresh(row)
        if row.state in ("sending", "done"):
            raise Conflict(
                f"Broadcast {broadcast_id} has started sending: the send hold is over. Cancel it to stop the "
                "messages not sent yet.",
                field="broadcast_id",
                code="hold_over",
            )
        raise Conflict(f"Broadcast {broadcast_id} is already {row.state}.", field="broadcast_id")
    audit.record(
        session,
        who.actor,
        "broadcast.stop",
        "broadcast",
        broadcast_id,
        before=before,
        after={"state": "cancelled", "sent": 0},
        update_id=row.update_id,
    )
    return StopOut(id=broadcast_id, state="cancelled", sent=0)


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


@router.post(
    "/v1/webhooks/twilio/status",
    status_code=204,
    tags=["webhooks"],
    openapi_extra=doors.not_a_door("a provider's signed delivery receipt")
    | TWILIO_FORM_DOC
    | {
        "parameters": [
            *TWILIO_FORM_DOC["parameters"],
            {"name": "delivery_id", "in": "query", "schema": {"type": "string"}, "description": "Set by Broadcaster."},
        ]
    },
)
def twilio_status(request: Request, params: TwilioForm, session: SessionDep) -> Response:
    """Twilio message/call status callback (signature required)."""
    receipts.apply_twilio(session, params, request.query_params.get("delivery_id"))
    return Response(status_code=204)


@router.post(
    "/v1/webhooks/sendgrid/events",
    status_code=204,
    tags=["webhooks"],
    openapi_extra=_SENDGRID_EVENTS | doors.not_a_door("a provider's signed delivery receipts"),
)
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
