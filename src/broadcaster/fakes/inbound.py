"""The fake provider's inbound simulator: people answering a question, the way the providers deliver it.

- **SMS replies** arrive as Twilio's inbound webhook: a form POST to `/v1/webhooks/twilio/inbound` signed
  with `X-Twilio-Signature` (computed by the Twilio SDK's `RequestValidator` over the service's public URL),
  each with its `MessageSid`; `retries` posts the very same request again, as Twilio does when an answer
  is slow or lost.
- **E-mail answers** are the per-recipient answer links the service put in the SendGrid request the fake
  received (`-answer_url_<key>-` substitutions): a person "clicks" one, GET (the confirm page, what a mail
  scanner would also fetch) then POST (the confirmation); `retries` POSTs it again.

    sim = InboundSimulator(client)                       # any httpx.Client on the service (TestClient too)
    sim.sms("+15551230001", "1 safe", retries=1)
    links = email_answer_links(fake.requests("sendgrid"))  # address -> {option key -> link}
    sim.click(links["p0001@example.org"]["2"])
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx
from twilio.request_validator import RequestValidator

from broadcaster.fakes.state import RecordedRequest

TWILIO_INBOUND_PATH = "/v1/webhooks/twilio/inbound"


class InboundSimulator:
    """Posts inbound answers to the service as Twilio (signed) and as a person clicking e-mail links."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        public_url: str | None = None,
        auth_token: str | None = None,
        account_sid: str | None = None,
        to_number: str = "+15005550006",
    ) -> None:
        from broadcaster.fakes.credentials import TWILIO_SID, TWILIO_TOKEN
        from broadcaster.settings import get_settings

        settings = get_settings()
        self.http = http
        self.public_url = (public_url or settings.public_url).rstrip("/")
        token = auth_token or (settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None)
        self.validator = RequestValidator(token or TWILIO_TOKEN)
        self.account_sid = account_sid or settings.twilio_account_sid or TWILIO_SID
        self.to_number = to_number

    def sms(self, sender: str, body: str, *, message_sid: str | None = None, retries: int = 0) -> list[httpx.Response]:
        """One inbound SMS (`retries` more deliveries of the same request); the service's answers."""
        params = {
            "MessageSid": message_sid or "SM" + secrets.token_hex(16),
            "AccountSid": self.account_sid,
            "From": sender,
            "To": self.to_number,
            "Body": body,
            "NumMedia": "0",
        }
        signature = self.validator.compute_signature(self.public_url + TWILIO_INBOUND_PATH, params)
        headers = {"X-Twilio-Signature": signature}
        return [self.http.post(TWILIO_INBOUND_PATH, data=params, headers=headers) for _ in range(1 + retries)]

    def click(self, link: str, *, retries: int = 0) -> list[httpx.Response]:
        """Open an e-mail answer link (GET) and confirm it (POST; `retries` more POSTs); every answer."""
        parts = urlsplit(link)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        out = [self.http.get(target)]
        out += [self.http.post(target) for _ in range(1 + retries)]
        return out


def email_answer_links(requests: Iterable[RecordedRequest]) -> dict[str, dict[str, str]]:
    """From SendGrid send requests the fake received: recipient address -> {option key -> answer link}."""
    out: dict[str, dict[str, str]] = {}
    for req in requests:
        if req.provider != "sendgrid" or req.method != "POST" or not req.path.endswith("/mail/send"):
            continue
        mail: dict[str, Any] = req.json or {}
        for p in mail.get("personalizations") or []:
            subs = p.get("substitutions") or {}
            links = {
                k[len("-answer_url_") : -1]: str(v)
                for k, v in subs.items()
                if k.startswith("-answer_url_") and k.endswith("-")
            }
            if not links:
                continue
            for to in p.get("to") or []:
                out[str(to.get("email", "")).lower()] = links
    return out
