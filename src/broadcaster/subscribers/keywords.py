"""The SMS keywords that keep their meaning whatever a message asked (carriers and Twilio handle them too):
STOP-family words opt out of SMS and voice, START-family words opt back in (and confirm a number from the
public form), HELP-family words get the help text. A question's answer keyword can never be one of them."""

from __future__ import annotations

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_WORDS = frozenset({"START", "YES", "UNSTOP", "OPTIN"})
HELP_WORDS = frozenset({"HELP", "INFO"})


def help_text(org: str) -> str:
    """The reply to HELP (also sent by the inbound fast path, responses/inbound_fastpath.py)."""
    return f"{org} alerts. Reply STOP to unsubscribe, START to resubscribe. Msg&data rates may apply."


def keyword_of(body: str) -> str:
    """The keyword an SMS body would be: trimmed, upper case, without a trailing full stop or exclamation mark."""
    return body.strip().upper().strip(".!")
