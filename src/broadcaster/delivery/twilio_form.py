"""Twilio's signed form callbacks (status callbacks, inbound SMS, call answers): the FastAPI dependency that reads
the form, checks `X-Twilio-Signature` against PUBLIC_URL (twilio's RequestValidator, receipts.py) and refuses NUL
characters, and the OpenAPI description of the form."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from broadcaster.delivery import receipts
from broadcaster.domain import has_nul
from broadcaster.errors import Forbidden, Unprocessable, field_name
from broadcaster.settings import get_settings

#: the form as the OpenAPI document describes it (clients and fuzzers generated from it know its fields)
TWILIO_FORM_DOC: dict[str, Any] = {
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


def _public_url(request: Request) -> str:
    url = get_settings().public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return url


async def twilio_form(request: Request) -> dict[str, Any]:
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
TwilioForm = Annotated[dict[str, Any], Depends(twilio_form)]
