"""Endpoints of two-way updates: tallies, CSV, live stream, closing, and the answer entry points (signed
e-mail links with a confirm form, the webhook response URL, the Twilio voice <Gather> action, inbound SMS; the
inbound SMS fast path in front of the app is inbound_fastpath.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Form, Header, Query, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from broadcaster import doors, webpage
from broadcaster.delivery.twilio_form import TWILIO_FORM_DOC, TwilioForm
from broadcaster.deps import SessionDep
from broadcaster.errors import ErrorOut, Forbidden, Unprocessable
from broadcaster.pagination import IdPath, Page, PageParams, page_params
from broadcaster.responses import links, matching, service, sms_answers
from broadcaster.responses.schemas import AnswerIn, FreeTextReplyOut, QuestionOut, ResponseOut, ResponsesOut
from broadcaster.security import Principal, Scope, require_scope
from broadcaster.settings import get_settings
from broadcaster.subscribers import keywords
from broadcaster.subscribers import service as subscriber_service

router = APIRouter(tags=["responses"])
Reader = Annotated[Principal, Depends(require_scope(Scope.read))]
Publisher = Annotated[Principal, Depends(require_scope(Scope.publish))]
Token = Annotated[str, Query(max_length=1000, description="The signed token of the link.")]

#: seconds between two looks at the tallies of a stream
POLL_SECONDS = 1.0
SEND_TIMEOUT = 30.0


@router.get(
    "/v1/updates/{update_id}/question",
    response_model=QuestionOut,
    responses={404: {"model": ErrorOut, "description": "No such update, or it asks no question."}},
)
def get_question(update_id: IdPath, session: SessionDep, _: Reader) -> QuestionOut:
    """The update's question and its state (draft, open, closed)."""
    return service.question_out(service.require_question(session, update_id))


@router.get(
    "/v1/updates/{update_id}/responses",
    response_model=ResponsesOut,
    responses={404: {"model": ErrorOut, "description": "No such update, or it asks no question."}},
)
def get_responses(
    update_id: IdPath,
    session: SessionDep,
    _: Reader,
    page: Annotated[PageParams, Depends(page_params)],
    segments: Annotated[bool, Query(description="Include counts per category, tag and area.")] = True,
) -> ResponsesOut:
    """Live tallies: per answer, per channel, per segment, "no answer yet", and the people who answered
    (needs-help answers first, with contact details; `limit`/`cursor` page them)."""
    return service.responses(session, update_id, limit=page.limit, cursor=page.cursor, with_segments=segments)


@router.get("/v1/updates/{update_id}/responses/received", response_model=Page[ResponseOut])
def list_received(
    update_id: IdPath,
    session: SessionDep,
    _: Reader,
    page: Annotated[PageParams, Depends(page_params)],
    unrecognised: Annotated[bool, Query(description="Only replies that chose no option.")] = False,
) -> Page[ResponseOut]:
    """Every answer received for the question, newest first (a person's earlier answers too)."""
    items, nxt = service.list_responses(
        session, update_id, unrecognised=unrecognised, limit=page.limit, cursor=page.cursor
    )
    return Page(items=items, next_cursor=nxt)


@router.get("/v1/updates/{update_id}/responses/unrecognised", response_model=Page[ResponseOut])
def list_unrecognised(
    update_id: IdPath, session: SessionDep, _: Reader, page: Annotated[PageParams, Depends(page_params)]
) -> Page[ResponseOut]:
    """Replies that chose no option ("maybe", "not safe"), newest first: for a person to read."""
    items, nxt = service.list_responses(session, update_id, unrecognised=True, limit=page.limit, cursor=page.cursor)
    return Page(items=items, next_cursor=nxt)


@router.get("/v1/updates/{update_id}/responses/needs-a-person", response_model=list[FreeTextReplyOut])
def list_needs_a_person(update_id: IdPath, session: SessionDep, _: Reader) -> list[FreeTextReplyOut]:
    """Replies that chose no option but say the person is in danger or asks for help, in any supported language
    ("not safe", "ayuda", "pas en sécurité", "hilfe"; docs/responses.md), newest first, with the sender's contact
    details: a person should read each one. Looked for among the newest 2,000 replies that chose no option."""
    flagged, _others = service.free_text_replies(session, update_id, limit=0)
    return flagged


@router.get(
    "/v1/updates/{update_id}/responses.csv",
    response_class=StreamingResponse,
    responses={200: {"description": "Every recipient and their answer.", "content": {"text/csv": {}}}},
)
def export_responses(update_id: IdPath, session: SessionDep, _: Reader) -> StreamingResponse:
    """Every person asked and their latest answer as CSV (needs-help first; formula-safe cells)."""
    question = service.require_question(session, update_id)
    return StreamingResponse(
        service.csv_lines(question.id),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="update-{update_id}-responses.csv"'},
    )


def _tally_json(update_id: int) -> tuple[str, str]:
    from broadcaster.db import session_scope

    with session_scope() as session:
        out = service.responses(session, update_id, limit=50, with_segments=False)
        return out.model_dump_json(), out.question.state


async def _events(request: Request, update_id: int, first: tuple[str, str]) -> AsyncIterator[ServerSentEvent]:
    data, state = first
    sent = 0
    while True:
        sent += 1
        yield ServerSentEvent(data=data, event="responses", id=str(sent), retry=3000)
        if state == service.CLOSED:
            yield ServerSentEvent(data='{"state": "closed"}', event="end", id=str(sent + 1))
            return
        previous = data
        while data == previous:
            await anyio.sleep(POLL_SECONDS)
            if await request.is_disconnected():
                return
            data, state = await anyio.to_thread.run_sync(_tally_json, update_id)


@router.get(
    "/v1/updates/{update_id}/responses/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "`responses` events (the tallies, at most one a second).",
            "content": {"text/event-stream": {}},
        }
    },
)
async def stream_responses(
    update_id: IdPath,
    request: Request,
    _: Reader,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
) -> Response:
    """The tallies as server-sent events whenever they change (polled once a second off the event loop, each
    time with a short session of its own); after the question is closed, an `end` event."""
    first = await anyio.to_thread.run_sync(_tally_json, update_id)
    if last_event_id is not None and first[1] == service.CLOSED:
        return Response(status_code=204)
    return EventSourceResponse(
        _events(request, update_id, first),
        ping=get_settings().broadcast_events_heartbeat_seconds,
        send_timeout=SEND_TIMEOUT,
    )


@router.post(
    "/v1/updates/{update_id}/question/close",
    response_model=QuestionOut,
    responses={409: {"model": ErrorOut, "description": "The update is not published yet."}},
    openapi_extra=doors.door("question.close"),
)
def close_question(update_id: IdPath, session: SessionDep, who: Publisher) -> QuestionOut:
    """Close the question (audited): later answers are stored but count nowhere and trigger nothing, and
    every pending escalation stops."""
    question = service.require_question(session, update_id)
    return service.question_out(service.close_question(session, question, who.actor))


# --- answer entry points (public, signed) ----------------------------------------------------------------


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


_INVALID = [
    "This answer link does not work. It may have been copied incompletely.",
    "Open the message we sent you and use its link again, or reply to the message the way it says.",
]
_LINK_PAGE: dict[int | str, dict[str, Any]] = {
    400: {"description": "The link is not valid (an HTML page).", "content": {"text/html": {}}},
    403: {"description": "The page's form token is missing (an HTML page).", "content": {"text/html": {}}},
}
FormToken = Annotated[str, Form(max_length=300, description="The page's signed form token.")]


def _invalid() -> HTMLResponse:
    return _page("This link is not valid", list(_INVALID), status_code=400, problem=True)


def _stale_form(token: str) -> HTMLResponse:
    return _page(
        "Please press the button again",
        ["Your answer was not recorded yet: we could not check that it came from our page."],
        status_code=403,
        form=webpage.Form(
            f"/v1/answer?token={token}", "Send my answer", [(webpage.FORM_FIELD, webpage.form_token(token))]
        ),
        problem=True,
    )


def _link(session: SessionDep, token: str) -> tuple[Any, dict[str, Any]] | None:
    payload = links.read("answer", token)
    if payload is None or "s" not in payload or not isinstance(payload.get("o"), str):
        return None
    from broadcaster.models.responses import Question

    question = session.get(Question, payload["q"])
    if question is None or not any(str(o["key"]) == payload["o"] for o in question.options):
        return None
    return question, payload


def _question_locale(session: SessionDep, question: Any) -> str:
    from broadcaster.models import Update

    update = session.get(Update, question.update_id)
    return update.locale if update is not None else ""


@router.get("/v1/answer", response_class=HTMLResponse, responses=_LINK_PAGE)
def answer_page(session: SessionDep, token: Token) -> HTMLResponse:
    """The page an e-mail answer button opens: it shows the answer and a button that records it by POST
    (mail scanners follow GET links, so GET alone never records)."""
    found = _link(session, token)
    if found is None:
        return _invalid()
    question, payload = found
    label = next(str(o["label"]) for o in question.options if str(o["key"]) == payload["o"])
    lang = _question_locale(session, question)
    paragraphs: list[webpage.Para | str] = [
        webpage.Para(question.text, cls="question", lang=lang),
        webpage.Para(f"Your answer: {label}", cls="answer"),
        "Press the button to send it. Nothing is sent until you do.",
    ]
    if question.state == "closed":
        paragraphs.append("This question is closed, but your answer will still be recorded.")
    return _page(
        "Confirm your answer",
        paragraphs,
        form=webpage.Form(
            f"/v1/answer?token={token}", f"Send my answer: {label}", [(webpage.FORM_FIELD, webpage.form_token(token))]
        ),
    )


@router.post(
    "/v1/answer",
    response_class=HTMLResponse,
    responses=_LINK_PAGE,
    openapi_extra=doors.not_a_door("a person answers a question (signed link)"),
)
def answer_confirm(request: Request, session: SessionDep, token: Token, form_token: FormToken = "") -> HTMLResponse:
    """Record the answer of an e-mail button (the confirm form's POST). A post with `Origin: null` (the
    browser sent no referrer) needs the page's `form_token` (see broadcaster.webpage)."""
    found = _link(session, token)
    if found is None:
        return _invalid()
    if not webpage.null_origin_ok(request.headers, token, form_token):
        return _stale_form(token)
    question, payload = found
    answer = service.record_answer(
        session,
        channel="email",
        body=payload["o"],
        question_id=question.id,
        subscriber_id=payload["s"],
        option_key=payload["o"],
    )
    text = service.reply_text(session, answer) or "Your answer was recorded."
    return _page("Thank you", [webpage.Para(text, cls="ok")])


@router.post(
    "/v1/answer/webhook",
    responses={403: {"model": ErrorOut, "description": "The response URL's token is not valid."}},
    openapi_extra=doors.not_a_door("an answer through a signed response URL"),
)
def answer_webhook(session: SessionDep, token: Token, body: AnswerIn) -> dict[str, Any]:
    """An answer through a webhook payload's `response_url` (e.g. a chat bot). A webhook reaches a channel,
    not a person: the answer is stored (with `respondent`) and shown, never counted in the tallies."""
    payload = links.read("webhook-answer", token)
    if payload is None:
        raise Forbidden("The response URL is not valid.", field="token")
    question = service.require_question_by_id(session, int(payload["q"]))
    option = next((o for o in question.options if str(o["key"]).upper() == body.option.upper()), None)
    if option is None:
        raise Unprocessable(
            f"option {body.option!r} is not one of {', '.join(str(o['key']) for o in question.options)}",
            field="option",
        )
    answer = service.record_answer(
        session,
        channel="webhook",
        body=body.option,
        address=body.respondent,
        question_id=question.id,
        option_key=str(option["key"]),
        provider_event_id=body.event_id,
    )
    return {"recorded": True, "duplicate": answer.duplicate, "option": option["key"], "counted": answer.counted}


def _voice_twiml(text: str | None) -> Response:
    from twilio.twiml.voice_response import VoiceResponse

    reply = VoiceResponse()
    if text:
        reply.say(text)
    return Response(content=str(reply), media_type="application/xml")


@router.post(
    "/v1/webhooks/twilio/voice-answer",
    tags=["webhooks"],
    response_class=Response,
    responses={
        200: {"description": "TwiML.", "content": {"application/xml": {}}},
        403: {"model": ErrorOut, "description": "Invalid Twilio signature or token."},
    },
    openapi_extra=doors.not_a_door("a provider's signed callback: a key pressed on a call"),
)
def voice_answer(params: TwilioForm, session: SessionDep, token: Token) -> Response:
    """The action of a call's <Gather>: Twilio posts the pressed key (`Digits`); the request must carry a
    valid `X-Twilio-Signature` and the signed `token` naming the question and the person."""
    payload = links.read("voice-answer", token)
    if payload is None or "s" not in payload:
        raise Forbidden("Invalid answer token.", field="token")
    question = service.require_question_by_id(session, int(payload["q"]))
    digits = str(params.get("Digits", ""))
    call = str(params.get("CallSid", ""))
    answer = service.record_answer(
        session,
        channel="voice",
        body=digits,
        address=str(params.get("To", "")),
        question_id=question.id,
        subscriber_id=int(payload["s"]),
        option_key=matching.digit_option(digits, question.options) or "",
        provider_event_id=f"{call}:{digits}" if call else None,
    )
    return _voice_twiml(service.reply_text(session, answer, voice=True))


def _sms_twiml(message: str | None) -> Response:
    from twilio.twiml.messaging_response import MessagingResponse

    reply = MessagingResponse()
    if message:
        reply.message(message)
    return Response(content=str(reply), media_type="application/xml")


@router.post(
    "/v1/webhooks/twilio/inbound",
    tags=["webhooks"],
    openapi_extra=TWILIO_FORM_DOC | doors.not_a_door("a provider's signed callback: an SMS received"),
    response_class=Response,
    responses={200: {"description": "TwiML reply.", "content": {"application/xml": {"schema": {"type": "string"}}}}},
)
def twilio_inbound(params: TwilioForm, session: SessionDep) -> Response:
    """Inbound SMS: STOP-family words opt out of SMS and voice, START-family (YES) opt in and confirm a number
    from the public form, HELP answers; anything else (and START/YES too, when a question was sent to the
    number) is an answer to the latest open question sent to that number (docs/responses.md)."""
    sender = str(params.get("From", ""))
    word = keywords.keyword_of(str(params.get("Body", "")))
    if word in keywords.STOP_WORDS:
        # Twilio (and carriers) send the standard opt-out confirmation themselves; we only record it
        subscriber_service.set_sms_opt_out(session, sender, True)
        return _sms_twiml(None)
    if word in keywords.START_WORDS:
        # YES (or START) also confirms a number from the public form (SMS double opt-in); Twilio answers
        # its opt-in keywords itself, so no reply of ours is added. It may also answer an open question.
        subscriber_service.set_sms_opt_out(session, sender, False)
        sms_answers.answer_sms(session, params, reply=False)
        return _sms_twiml(None)
    if word in keywords.HELP_WORDS:
        return _sms_twiml(keywords.help_text(get_settings().org_name))
    return _sms_twiml(sms_answers.answer_sms(session, params))
