"""Logging for `serve`, `worker` and the CLI: one format, secrets redacted, chatty HTTP clients held back.

`RedactSecrets` is a `logging.Filter` installed on every handler Broadcaster sets up (the root handler,
uvicorn's handlers, the last-resort handler). It rewrites a record's message, exception text and stack
before any formatter sees them, replacing with ``****``:

- every configured secret (each `SecretStr` setting, the database password, outbound webhook URLs) and
  its encodings (URL-encoded, base64, Twilio's HTTP Basic ``base64(sid:token)``);
- API keys, ``bk_<prefix>_<secret>`` -> ``bk_<prefix>_****``;
- ``Authorization`` header values (``Bearer``/``Basic``/``OAuth`` ... keep only the scheme);
- ``token=``/``access_token=`` query values and signed link tokens / JWTs (``eyJ...``).

A record with nothing to hide costs one `getMessage()` and one regex search. Provider SDKs and HTTP
clients that log headers, bodies or OAuth signing inputs (`NOISY_LOGGERS`) stay at WARNING unless
`LOG_PROVIDER_HTTP` is on; their output is redacted either way.
"""

from __future__ import annotations

import base64
import copy
import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

from pydantic import SecretStr

if TYPE_CHECKING:
    from broadcaster.settings import Settings

MASK = "****"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: secrets shorter than this are not searched for (they would blank out ordinary words)
MIN_SECRET_LENGTH = 6
#: libraries that log request headers, bodies, URLs or OAuth signature inputs at DEBUG/INFO
NOISY_LOGGERS = (
    "python_http_client",  # sendgrid: "HEADERS: {'Authorization': 'Bearer SG...'}" and the mail JSON
    "twilio.http_client",
    "tweepy",  # the OAuth 1.0a Authorization header
    "oauthlib",  # signature base strings and signatures
    "requests_oauthlib",
    "urllib3",  # Mastodon.py (requests): URLs
    "httpx",  # URLs with query strings
    "httpcore",
    "hpack",  # decoded HTTP/2 headers
)

_FALLBACK_FORMATTER = logging.Formatter()
_GENERIC = (
    # API keys: keep the lookup prefix, drop the secret
    r"(?P<key>bk_[0-9a-f]{8}_)[A-Za-z0-9_-]{8,}"
    # Authorization header values: a quoted value up to its closing quote, or scheme + credentials
    r"|(?P<auth>(?i:authorization)['\"]?\s*[:=]\s*)"
    r"(?P<authval>'(?:[^'\\\r\n]|\\.)*'|\"(?:[^\"\\\r\n]|\\.)*\"|[^\s'\",;}]+(?:[ ]+[^\s'\",;}]+)?)"
    # query-string tokens (unsubscribe / confirm links, OAuth-style access tokens)
    r"|(?P<query>[?&;](?:access_)?token=)[^&\s\"'<>#\\]+"
    # signed link tokens and JWTs: base64url JSON ("eyJ") followed by a signature part
    r"|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{16,}(?:\.[A-Za-z0-9_-]+)?"
)


def _encodings(value: str) -> set[str]:
    return {value, quote(value, safe=""), quote_plus(value), base64.b64encode(value.encode()).decode()}


def configured_secrets(settings: Settings) -> set[str]:
    """Every secret value the settings hold, in the encodings it may be logged in."""
    found: set[str] = set()
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            found |= _encodings(value.get_secret_value())
    token = settings.twilio_auth_token
    if settings.twilio_account_sid and token is not None:
        basic = f"{settings.twilio_account_sid}:{token.get_secret_value()}"
        found.add(base64.b64encode(basic.encode()).decode())
    password = urlsplit(settings.database_url).password if "@" in settings.database_url else None
    if password:
        found |= {password} | _encodings(unquote(password))
    for url in settings.webhook_urls:  # Slack/Teams incoming-webhook URLs carry a token in the path
        parts = urlsplit(url)
        if len(parts.path) > 8 or parts.query:
            found.add(url)
    return {s for s in found if len(s) >= MIN_SECRET_LENGTH}


class Redactor:
    """Finds and masks secrets in text with one compiled pattern."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literals = sorted(set(secrets), key=len, reverse=True)  # longest first: an encoding wins over a part
        alternatives = [f"(?P<lit>{'|'.join(map(re.escape, literals))})"] if literals else []
        self.pattern = re.compile("|".join([*alternatives, _GENERIC]))

    def hit(self, text: str) -> bool:
        return self.pattern.search(text) is not None

    def redact(self, text: str) -> str:
        return self.pattern.sub(self._replace, text)

    @staticmethod
    def _replace(match: re.Match[str]) -> str:
        if match.group("key"):
            return match.group("key") + MASK
        if match.group("auth"):
            value = match.group("authval")
            quote_char = value[0] if value[0] in "'\"" else ""
            words = value.strip("'\"").split(None, 1)
            scheme = words[0] + " " if len(words) == 2 and words[0].isalpha() else ""
            return f"{match.group('auth')}{quote_char}{scheme}{MASK}{quote_char}"
        if match.group("query"):
            return match.group("query") + MASK
        return MASK


class RedactSecrets(logging.Filter):
    """Mask secrets in every record a handler emits (message, arguments, exception and stack text).

    Built from the given settings, or from `get_settings()` when none are given (dictConfig's ``()``)."""

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        if settings is None:
            from broadcaster.settings import get_settings

            settings = get_settings()
        self.redactor = Redactor(configured_secrets(settings))

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self.redactor
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: drop them rather than print them raw
            record.msg, record.args = redactor.redact(str(record.msg)) + " [arguments dropped]", None
            return True
        if redactor.hit(message):
            self._redact_message(record, message)
        if record.exc_info and not record.exc_text:
            record.exc_text = _FALLBACK_FORMATTER.formatException(record.exc_info)
        if record.exc_text and redactor.hit(record.exc_text):
            record.exc_text = redactor.redact(record.exc_text)
        if record.stack_info and redactor.hit(record.stack_info):
            record.stack_info = redactor.redact(record.stack_info)
        return True

    def _redact_message(self, record: logging.LogRecord, message: str) -> None:
        """Redact the arguments in place when that suffices (formatters like uvicorn's access formatter
        read `record.args`), else replace the message with its redacted text."""
        redactor, args = self.redactor, record.args
        if isinstance(record.msg, str) and not redactor.hit(record.msg) and isinstance(args, tuple | dict):
            clean: Any
            if isinstance(args, dict):
                clean = {k: redactor.redact(v) if isinstance(v, str) else v for k, v in args.items()}
            else:
                clean = tuple(redactor.redact(a) if isinstance(a, str) else a for a in args)
            try:
                text = record.msg % clean
                if redactor.redact(text) == text:  # nothing left (masks themselves are left alone)
                    record.args = clean
                    return
            except (TypeError, ValueError, KeyError):
                pass
        record.msg, record.args = redactor.redact(message), None


def install(settings: Settings, handlers: Iterable[logging.Handler] = ()) -> RedactSecrets:
    """Put one `RedactSecrets` for `settings` on the root handlers, `handlers` and the last-resort handler
    (replacing an earlier one), and hold `NOISY_LOGGERS` at WARNING unless LOG_PROVIDER_HTTP is on."""
    redact = RedactSecrets(settings)
    targets = [*logging.getLogger().handlers, *handlers]
    if logging.lastResort is not None:
        targets.append(logging.lastResort)
    for handler in targets:
        for old in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
            handler.removeFilter(old)
        handler.addFilter(redact)
    quiet = logging.NOTSET if settings.log_provider_http else logging.WARNING
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    return redact


def setup_logging(settings: Settings) -> RedactSecrets:
    """Configure logging for `serve`, `worker` and the CLI: LOG_LEVEL on a stderr handler, secrets redacted."""
    logging.basicConfig(level=settings.log_level.upper(), format=FORMAT)
    return install(settings)


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's logging config with `RedactSecrets` on its handlers and the root handler (so API worker
    processes started by ``--workers N`` log the same way)."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": "broadcaster.logs.RedactSecrets"}}  # from get_settings()
    config["formatters"]["broadcaster"] = {"format": FORMAT}
    config["handlers"]["broadcaster"] = {
        "class": "logging.StreamHandler",
        "formatter": "broadcaster",
        "stream": "ext://sys.stderr",
    }
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    config["root"] = {"handlers": ["broadcaster"], "level": settings.log_level.upper()}
    quiet = "NOTSET" if settings.log_provider_http else "WARNING"
    config["loggers"].update({name: {"level": quiet} for name in NOISY_LOGGERS})
    return config
