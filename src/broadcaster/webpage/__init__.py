"""What every public web page shares: the public stylesheet, the favicon, the resident pages (answer, confirm,
unsubscribe, refusals) and the signed form token of their buttons.

Platform layer (docs/architecture.md): the public status pages (`broadcaster.public`), the resident pages of
`responses` and `subscribers`, and the origin check in `broadcaster.middleware` all use it.

Form token: a resident page's button posts back to the signed link it came from. Browsers send `Origin: null`
when the page's referrer policy is `no-referrer` (set by some mail clients' web views and privacy settings), so
the origin check cannot tell that post from one made by a sandboxed page elsewhere. The page therefore carries
`form_token`, signed with `SECRET_KEY` for the link it was served for; a post with `Origin: null` is accepted
on the signed-link paths only with a valid one (`null_origin_ok`). Posts from a named foreign origin are still
refused by the middleware, and posts without `Origin` (mail providers' one-click unsubscribe) are unchanged.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from broadcaster.settings import get_settings
from broadcaster.signing import sign, verify

#: the POST paths whose forms are served by signed links (the token in the query) and carry `form_token`
SIGNED_FORM_PATHS = frozenset({"/v1/answer", "/v1/subscribe/confirm", "/v1/unsubscribe"})
FORM_FIELD = "form_token"
#: how long an opened page's button keeps working (a resident may leave the tab open)
FORM_MAX_AGE = 7 * 24 * 3600
#: resident pages keep their signed link (query string) to this origin: the same origin still gets `Origin`
REFERRER_POLICY = "same-origin"


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """The public stylesheet (inlined in every public page's <style>)."""
    return files("broadcaster.webpage").joinpath("public.css").read_text(encoding="utf-8")


@lru_cache(maxsize=2)
def favicon(name: str) -> bytes:
    """`favicon.svg` or `favicon.ico`, shipped in the package."""
    if name not in ("favicon.svg", "favicon.ico"):
        raise ValueError(name)
    return files("broadcaster.webpage").joinpath(name).read_bytes()


FAVICON_TYPES = {"favicon.svg": "image/svg+xml", "favicon.ico": "image/x-icon"}


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("broadcaster.webpage", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass
class Para:
    """One paragraph of a resident page (`cls` e.g. "question", `lang` when not the page's language)."""

    text: str
    cls: str = ""
    lang: str = ""


@dataclass
class Form:
    """The page's one button: posts `hidden` to `action`."""

    action: str
    button: str
    hidden: list[tuple[str, str]] = field(default_factory=list)


def resident_page(
    title: str,
    paragraphs: list[Para | str],
    *,
    form: Form | None = None,
    after: list[str] | None = None,
    problem: bool = False,
    lang: str | None = None,
) -> str:
    """A resident page in the public stylesheet: heading, paragraphs (a `problem` box for refusals), one button."""
    settings = get_settings()
    paras = [p if isinstance(p, Para) else Para(p) for p in paragraphs]
    return (
        _env()
        .get_template("resident.html")
        .render(
            title=title,
            paragraphs=paras,
            form=form,
            after=after or [],
            problem=problem,
            org_name=settings.org_name,
            lang=lang or settings.default_locale,
            stylesheet=stylesheet(),
        )
    )


def page_headers() -> dict[str, str]:
    """Headers of a resident page: never cached (it carries a signed link), referrer kept to this origin."""
    return {"Cache-Control": "no-store", "Referrer-Policy": REFERRER_POLICY}


# --- form token -------------------------------------------------------------------------------------------


def _link_digest(link_token: str) -> str:
    return hashlib.sha256(link_token.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def form_token(link_token: str) -> str:
    """The `form_token` of a page served for the signed link `link_token`."""
    return sign("form", {"l": _link_digest(link_token), "t": int(time.time())})


def form_token_valid(link_token: str, value: str) -> bool:
    payload = verify("form", value, max_age=FORM_MAX_AGE) if value else None
    return payload is not None and payload.get("l") == _link_digest(link_token)


def null_origin_ok(headers: Any, link_token: str, value: str) -> bool:
    """False only for a post with `Origin: null` whose form token is missing or not for this link."""
    origin = headers.get("origin")
    if origin is None or origin.strip().lower() != "null":
        return True
    return form_token_valid(link_token, value)
