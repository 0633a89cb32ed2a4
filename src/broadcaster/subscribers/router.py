"""HTTP endpoints of subscribers: the admin API (list, create, edit, delete) and the public self-service pages
(subscribe, confirm, unsubscribe, the proof-of-work challenge)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from broadcaster import audit, doors, throttle, webpage
from broadcaster.deps import SessionDep
from broadcaster.errors import BadRequest, Unprocessable, field_name
from broadcaster.pagination import IdPath, Page, PageParams, page_params
from broadcaster.security import Principal, Scope, require_scope
from broadcaster.subscribers import abuse, verification
from broadcaster.subscribers import service as subscribers
from broadcaster.subscribers.schemas import SubscribeIn, SubscriberIn, SubscriberOut, SubscriberPatch

router = APIRouter()

Reader = Annotated[Principal, Depends(require_scope(Scope.read))]
Writer = Annotated[Principal, Depends(require_scope(Scope.write))]

# Bodies the endpoints below parse themselves, documented so the OpenAPI document (and clients or fuzzers
# generated from it) know them.
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
    400: {"description": "The link is not valid (an HTML page).", "content": {"text/html": {}}},
    403: {"description": "The page's form token is missing (an HTML page).", "content": {"text/html": {}}},
}

# --- the admin API -----------------------------------------------------------------------------------


@router.post(
    "/v1/subscribers",
    response_model=SubscriberOut,
    status_code=201,
    tags=["subscribers"],
    openapi_extra=doors.not_a_door("the subscriber list: who may receive, not what is sent"),
)
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


@router.patch(
    "/v1/subscribers/{subscriber_id}",
    response_model=SubscriberOut,
    tags=["subscribers"],
    openapi_extra=doors.not_a_door("the subscriber list: who may receive, not what is sent"),
)
def patch_subscriber(subscriber_id: IdPath, body: SubscriberPatch, session: SessionDep, who: Writer) -> SubscriberOut:
    before = subscribers.out(session, subscribers.get(session, subscriber_id)).model_dump(mode="json")
    row = subscribers.patch(session, subscriber_id, body)
    out = subscribers.out(session, row)
    after = out.model_dump(mode="json")
    audit.record_change(session, who.actor, "subscriber.update", "subscriber", row.id, before=before, after=after)
    return out


@router.delete(
    "/v1/subscribers/{subscriber_id}",
    status_code=204,
    tags=["subscribers"],
    openapi_extra=doors.not_a_door("the subscriber list: who may receive, not what is sent"),
)
def delete_subscriber(subscriber_id: IdPath, session: SessionDep, who: Writer) -> Response:
    before = subscribers.out(session, subscribers.get(session, subscriber_id)).model_dump(mode="json")
    subscribers.delete(session, subscriber_id)
    audit.record(session, who.actor, "subscriber.delete", "subscriber", subscriber_id, before=before)
    return Response(status_code=204)


# --- self-service: subscribe, confirm, unsubscribe -----------------------------------------------------


def _page(
    title: str,
    paragraphs: list[webpage.Para | str],
    status_code: int = 200,
    *,
    form: webpage.Form | None = None,
    problem: bool = False,
) -> HTMLResponse:
    """A resident page in the public stylesheet (never cached; the referrer stays on this origin)."""
    return HTMLResponse(
        webpage.resident_page(title, paragraphs, form=form, problem=problem),
        status_code=status_code,
        headers=webpage.page_headers(),
    )


FormToken = Annotated[str, Form(max_length=300, description="The page's signed form token.")]


def _parse_json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object, or 400 `malformed_json` (also for nesting too deep to parse)."""
    try:
        data = orjson.loads(raw)
    except (orjson.JSONDecodeError, RecursionError) as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}", code="malformed_json") from exc
    if not isinstance(data, dict):
        raise BadRequest("Expected a JSON object.", field="body")
    return data


@router.post(
    "/v1/subscribe",
    status_code=202,
    tags=["subscribe"],
    openapi_extra=_SUBSCRIBE_BODY
    | doors.not_a_door("a person subscribes (rate-limited; confirmed before anything is sent)"),
    responses=_SUBSCRIBED,
)
async def subscribe(request: Request, session: SessionDep) -> Response:
    """Public self-service subscription (JSON or form). An email gets a confirmation link, a phone one
    confirmation text (reply YES); neither receives alerts before it is confirmed.

    Limits: requests per client IP (`SUBSCRIBE_RATE_LIMIT`) and phone signups per number prefix
    (`SUBSCRIBE_PHONE_PREFIX_RATE_LIMIT`) answer 429 with `Retry-After`; phones only from
    `SUBSCRIBE_PHONE_COUNTRIES`; an optional human check (`SUBSCRIBE_VERIFIER`, field `verification`)."""
    ip = throttle.client_ip(request)
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
        return _page("Thank you", [webpage.Para(message, cls="ok")], status_code=202)
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


_NOT_VALID = [
    "This confirmation link does not work: links last 7 days, and a link stops working once it is cancelled.",
    "To get alerts, subscribe again on our status page.",
]


def _again(title: str, action: str, token: str, button: str) -> HTMLResponse:
    """The post came with `Origin: null` and no valid form token: nothing changed, the button again."""
    return _page(
        title,
        [
            "Nothing was changed yet: we could not check that the request came from our page. Please press the button "
            "again."
        ],
        status_code=403,
        form=webpage.Form(f"{action}?token={token}", button, [(webpage.FORM_FIELD, webpage.form_token(token))]),
        problem=True,
    )


@router.get("/v1/subscribe/confirm", tags=["subscribe"], response_class=HTMLResponse, responses=_LINK_PAGE)
def confirm_subscription_page(session: SessionDep, token: Annotated[str, Query(max_length=1000)]) -> HTMLResponse:
    """The landing page of a confirmation link: a button that confirms by POST (mail scanners follow GET
    links, so GET alone never confirms)."""
    row = subscribers.confirm_target(session, token)
    if row is None:
        return _page("This link is not valid", list(_NOT_VALID), status_code=400, problem=True)
    if row.email_confirmed and not row.email_opted_out:
        return _page("Subscription confirmed", [webpage.Para("This address is already confirmed.", cls="ok")])
    return _page(
        "Confirm your subscription",
        [f"Do you want to get alerts by email at {row.email or ''}?", "Press the button to confirm."],
        form=webpage.Form(
            f"/v1/subscribe/confirm?token={token}",
            "Confirm my subscription",
            [(webpage.FORM_FIELD, webpage.form_token(token))],
        ),
    )


@router.post(
    "/v1/subscribe/confirm",
    tags=["subscribe"],
    response_class=HTMLResponse,
    responses=_LINK_PAGE,
    openapi_extra=doors.not_a_door("a person confirms their own subscription"),
)
def confirm_subscription(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Query(max_length=1000)],
    form_token: FormToken = "",
) -> HTMLResponse:
    """Confirm an email subscription (the landing page's button). With `Origin: null` the page's `form_token`
    is required (see broadcaster.webpage)."""
    if subscribers.confirm_target(session, token) is None:
        return _page("This link is not valid", list(_NOT_VALID), status_code=400, problem=True)
    if not webpage.null_origin_ok(request.headers, token, form_token):
        return _again("Confirm your subscription", "/v1/subscribe/confirm", token, "Confirm my subscription")
    row = subscribers.confirm(session, token)
    if row is None:
        return _page("This link is not valid", list(_NOT_VALID), status_code=400, problem=True)
    return _page("Subscription confirmed", [webpage.Para("You will get alerts by email.", cls="ok")])


@router.get("/v1/unsubscribe", tags=["subscribe"], response_class=HTMLResponse)
def unsubscribe_page(token: Annotated[str, Query(max_length=1000)]) -> HTMLResponse:
    """A confirmation page (link scanners fetch GET links, so GET alone never unsubscribes)."""
    return _page(
        "Unsubscribe",
        ["Do you want to stop getting email alerts from us?", "Press the button to unsubscribe."],
        form=webpage.Form(
            f"/v1/unsubscribe?token={token}",
            "Unsubscribe from email alerts",
            [("List-Unsubscribe", "One-Click"), (webpage.FORM_FIELD, webpage.form_token(token))],
        ),
    )


@router.post(
    "/v1/unsubscribe",
    tags=["subscribe"],
    response_class=HTMLResponse,
    responses=_LINK_PAGE,
    openapi_extra=doors.not_a_door("a person unsubscribes"),
)
def unsubscribe(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Query(max_length=1000)],
    form_token: FormToken = "",
) -> HTMLResponse:
    """RFC 8058 one-click unsubscribe (`List-Unsubscribe=One-Click`); no cookies or login needed. With
    `Origin: null` the page's `form_token` is required (see broadcaster.webpage)."""
    if not webpage.null_origin_ok(request.headers, token, form_token):
        return _again("Unsubscribe", "/v1/unsubscribe", token, "Unsubscribe from email alerts")
    row = subscribers.unsubscribe_email(session, token)
    if row is None:
        return _page(
            "This link is not valid",
            [
                "This unsubscribe link does not work. It may have been copied incompletely.",
                "Open the latest message we sent you and use its unsubscribe link again.",
            ],
            status_code=400,
            problem=True,
        )
    return _page("Unsubscribed", [webpage.Para("You will no longer get email alerts from us.", cls="ok")])
