"""Text a voice call can read aloud: no emoji, no URLs.

Text-to-speech reads an emoji by its name ("police car light") or not at all, and a URL character by
character ("h t t p s colon slash slash ..."), which costs a listener half a minute in an emergency. So a
voice message drops emoji (whole sequences: ZWJ families, flags, skin tones, keycaps) and replaces each
URL with a spoken phrase, the `voice_link` label of the message's language ("the link is in our text
message"; operators can change it in labels.yaml), or, without one, the bare domain ("example.org").
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import regex

from broadcaster.text.length import URL_RE

#: an emoji and whatever it joins or modifies (ZWJ only inside a sequence: Indic scripts need it elsewhere)
EMOJI = regex.compile(
    r"(?:\p{Extended_Pictographic}|\p{Regional_Indicator})"
    r"(?:[\uFE0E\uFE0F\u20E3]|\p{Emoji_Modifier}|\u200D(?:\p{Extended_Pictographic}|\p{Regional_Indicator})?)*"
    r"|[\uFE0F\u20E3]|\p{Emoji_Modifier}"
)
_TRAILING = ".,;:!?)]}'\""


def bare_domain(url: str) -> str:
    """`https://www.example.org/path?q` -> `example.org`."""
    host = urlsplit(url if "://" in url else "http://" + url).hostname or ""
    return host.removeprefix("www.")


def speakable(text: str, link_phrase: str | None = None) -> str:
    """`text` without emoji, each URL replaced by `link_phrase` (or its bare domain), spaces tidied."""

    def spoken(match: re.Match[str]) -> str:
        url = match.group(0)
        tail = ""
        while url and url[-1] in _TRAILING:
            url, tail = url[:-1], url[-1] + tail
        return (link_phrase or bare_domain(url)) + tail

    out = URL_RE.sub(spoken, text)
    if link_phrase:  # "... the link is in our text message, the link is in our text message" -> once
        phrase = re.escape(link_phrase)
        out = re.sub(rf"{phrase}(?:[\s,;]+(?:and\s+)?{phrase})+", link_phrase, out)
    out = EMOJI.sub(" ", out)
    out = re.sub(r"[ \t]+([.,;:!?])", r"\1", out)
    return " ".join(out.split())
