"""Render one update for one channel and locale: templates, markers, and length-aware fitting.

Fitting, for channels with a length limit (SMS segments, X weighted length, Mastodon, Bluesky graphemes,
voice, banner):
1. the full body; 2. the update's short summary; 3. the text shortened at a word boundary (never inside a
URL, phone number or e-mail address) with "..."; 4. the same without the "how to reach us" part.
Whatever it did is listed in `actions`; a text still over the limit gets an "over limit" warning.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from broadcaster import hooks
from broadcaster.bidi import strip_bidi
from broadcaster.channels.base import UNSUBSCRIBE_PLACEHOLDER, Adapter, Message
from broadcaster.channels.registry import adapter_classes, classes_for, kind_of
from broadcaster.domain import ChannelKind, UpdateKind
from broadcaster.rendering.fit import shorten
from broadcaster.rendering.templates import TemplateError, labels_for, render_template, template_exists
from broadcaster.settings import Settings, get_settings
from broadcaster.text.length import BLUESKY_MAX_GRAPHEMES, LengthRule, Measure
from broadcaster.text.speech import speakable

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from broadcaster.models import Update

CONTACT_KEYS = ("live_chat_url", "phone", "sms", "email", "portal_url", "opening_hours", "note")
KIND_TEMPLATES = {
    ChannelKind.sms: "sms.txt.j2",
    ChannelKind.voice: "voice.txt.j2",
    ChannelKind.social: "social.txt.j2",
    ChannelKind.banner: "banner.txt.j2",
    ChannelKind.webhook: "webhook.txt.j2",
}
#: channels that put an update's question (the others leave it out: social posts and banners cannot answer)
QUESTION_KINDS = frozenset({ChannelKind.sms, ChannelKind.voice, ChannelKind.email, ChannelKind.webhook})
#: Twilio <Say> languages for bare language tags
VOICE_LANGUAGES = {
    "en": "en-US",
    "fr": "fr-FR",
    "es": "es-ES",
    "de": "de-DE",
    "it": "it-IT",
    "pt": "pt-BR",
    "nl": "nl-NL",
    "ja": "ja-JP",
    "zh": "zh-CN",
}


@dataclass
class Rendered:
    """What one channel sends for one locale, and how the text was made to fit."""

    message: Message
    kind: ChannelKind
    channel: str
    adapter: str | None
    locale: str
    encoding: str | None = None
    segments: int | None = None
    length: int = 0
    max_length: int | None = None
    used_summary: bool = False
    truncated: bool = False
    actions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def voice_language(locale: str) -> str:
    """The BCP 47 language Twilio's <Say> uses for `locale` (fr -> fr-FR; fr-CA stays)."""
    if "-" in locale:
        return locale
    return VOICE_LANGUAGES.get(locale, locale)


def length_rule(kind: ChannelKind, cls: type[Adapter] | None, settings: Settings) -> LengthRule:
    """The unit and limit a channel's text must fit (settings override the adapter's defaults)."""
    unit = cls.length_unit if cls is not None else _default_unit(kind)
    if unit == "sms_segments":
        return LengthRule(unit, settings.sms_max_segments)
    if unit == "mastodon":
        return LengthRule(unit, settings.mastodon_max_characters)
    if unit == "x_weighted":
        return LengthRule(unit, (cls.limits.max_length if cls is not None else None) or 280)
    if unit == "bluesky":
        return LengthRule(unit, (cls.limits.max_length if cls is not None else None) or BLUESKY_MAX_GRAPHEMES)
    if kind is ChannelKind.voice:
        return LengthRule("chars", settings.voice_max_chars)
    if kind is ChannelKind.banner:
        return LengthRule("chars", settings.banner_text_max_chars)
    return LengthRule("chars", cls.limits.max_length if cls is not None else None)


def _default_unit(kind: ChannelKind) -> str:
    return {ChannelKind.sms: "sms_segments", ChannelKind.social: "x_weighted"}.get(kind, "chars")


def resolve_target(name: str, settings: Settings) -> tuple[ChannelKind, type[Adapter] | None]:
    """The kind and the adapter class whose rules apply to a routing-map name (the primary configured
    adapter for a kind; else the first installed one)."""
    kind = kind_of(name)
    if kind is None:
        raise TemplateError(f"unknown channel {name!r}", field="channel")
    classes = classes_for(name)
    if name in adapter_classes():
        return kind, classes[0]
    for cls in classes:
        if _configured(cls, settings):
            return kind, cls
    return kind, classes[0] if classes else None


def _configured(cls: type[Adapter], settings: Settings) -> bool:
    try:
        return cls.from_settings(settings) is not None
    except Exception:
        return False


def _text_for(update: Update, locale: str) -> tuple[str, str, str, bool]:
    """(body, summary, locale used, translation found) for `locale`, falling back to the original."""
    own = update.locale or "en"
    if locale == own or locale.split("-")[0] == own:
        return update.body, update.summary or "", own, True
    translations = update.translations or {}
    for candidate in (locale, locale.split("-")[0]):
        tr = translations.get(candidate)
        if tr and tr.get("body"):
            return tr["body"], tr.get("summary") or "", candidate, True
    return update.body, update.summary or "", own, False


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else ""


def build_context(
    session: Session | None, update: Update, locale: str, settings: Settings
) -> tuple[dict[str, Any], list[str]]:
    """Template variables for `update` in `locale`, and warnings (missing translation/labels)."""
    warnings: list[str] = []
    body, summary, used_locale, found = _text_for(update, locale)
    body, summary = strip_bidi(body), strip_bidi(summary)  # see broadcaster.bidi
    if not found:
        warnings.append(f"missing translation for {locale}; the {used_locale} text is used")
    labels, labels_locale = labels_for(settings.templates_dir, used_locale, settings.default_locale)
    if labels_locale != used_locale and labels_locale != used_locale.split("-")[0]:
        warnings.append(f"no labels for {used_locale} in labels.yaml; {labels_locale} labels used")
    incident = update.incident
    category = incident.category if incident is not None else None
    contact_raw = dict(category.contact or {}) if category is not None else {}
    contact = {key: str(contact_raw.get(key) or "") for key in CONTACT_KEYS}

    kind = UpdateKind(update.kind or "normal")
    marker = ""
    if update.test:
        marker += f"[{labels['test']}] "
    corrects: dict[str, Any] | None = None
    notice = ""
    if kind is not UpdateKind.normal:
        marker += f"{labels['correction'] if kind is UpdateKind.correction else labels['cancelled']}: "
        original = None
        if update.corrects_id is not None and session is not None:
            from broadcaster.models import Update as UpdateModel

            original = session.get(UpdateModel, update.corrects_id)
        when = _when(original.published_at or original.created_at) if original is not None else ""
        corrects = {"id": update.corrects_id, "when": when}
        if when:
            key = "corrects_notice" if kind is UpdateKind.correction else "cancels_notice"
            notice = str(labels[key]).format(when=when)

    severity = incident.severity if incident is not None else "info"
    status = (update.status or (incident.status if incident is not None else None)) or "investigating"
    ctx: dict[str, Any] = {
        "org_name": settings.org_name,
        "locale": used_locale,
        "labels": labels,
        "marker": marker,
        "test": bool(update.test),
        "kind": kind.value,
        "corrects": corrects,
        "notice": notice,
        "body": body,
        "summary": summary,
        "text": body,
        "show_contact": True,
        "contact": contact,
        "links": [{"title": strip_bidi(ln.get("title", "")), "url": ln.get("url", "")} for ln in (update.links or [])],
        "status_url": settings.public_url.rstrip("/") + "/status",
        "incident": {
            "id": incident.id if incident is not None else None,
            "title": strip_bidi(incident.title) if incident is not None else "",
            "severity": severity,
            "severity_label": labels["severity"].get(severity, severity),
            "status": status,
            "category": category.slug if category is not None else "",
        },
        "update": {"id": update.id, "kind": kind.value, "corrects_id": update.corrects_id},
        "question": hooks.first(hooks.message_question, session, update, labels),
    }
    return ctx, warnings


def _ensure_question(text: str, question: dict[str, Any] | None, kind: ChannelKind) -> str:
    """A question must survive any template edit (people cannot answer what they were not asked)."""
    if not question or question["text"] in text:
        return text
    how = question["press"] if kind is ChannelKind.voice else question["reply"]
    return f"{text} {question['text']} {how}"


def _ensure_marker(text: str, marker: str) -> tuple[str, bool]:
    """Test and correction markers must survive any template edit: prepend when missing."""
    if marker and marker.strip() not in text:
        return marker + text, True
    return text, False


def _ensure_html_marker(html: str, marker: str) -> str:
    """The HTML e-mail keeps the TEST/correction marker too: right after `<body>` when a template dropped it."""
    label = marker.strip()
    if not label or html_lib.escape(label) in html or label in html:
        return html
    notice = f'<p style="font-weight:bold">{html_lib.escape(label)}</p>'
    body = re.search(r"<body[^>]*>", html, flags=re.IGNORECASE)
    return html[: body.end()] + notice + html[body.end() :] if body else notice + html


def render_update(
    session: Session | None,
    update: Update,
    kind_or_adapter_name: str,
    locale: str | None = None,
    *,
    recipient_vars: dict[str, str] | None = None,
    settings: Settings | None = None,
) -> Rendered:
    """Render `update` for a channel (a kind like "sms" or an adapter name like "twilio-sms") in `locale`.

    Raises `TemplateError` (a 422) naming the template and variable when a template does not render."""
    settings = settings or get_settings()
    locale = locale or update.locale or settings.default_locale
    kind, cls = resolve_target(kind_or_adapter_name, settings)
    ctx, warnings = build_context(session, update, locale, settings)
    extra = dict(recipient_vars or {})
    ctx["recipient"] = extra
    ctx.update({k: v for k, v in extra.items() if k not in ctx})
    adapter_name = cls.name if cls is not None else None
    base = {
        "locale": ctx["locale"],
        "update_id": update.id,
        "incident_id": ctx["incident"]["id"],
        "severity": ctx["incident"]["severity"],
        "test": bool(update.test),
    }
    if kind is ChannelKind.email:
        return _render_email(update, kind_or_adapter_name, adapter_name, ctx, extra, warnings, base, settings)

    template = KIND_TEMPLATES[kind]
    if adapter_name and template_exists(settings.templates_dir, f"{adapter_name}.txt.j2"):
        template = f"{adapter_name}.txt.j2"
    rule = length_rule(kind, cls, settings)

    #: short channels read as one line: paragraphs and line breaks become single spaces
    one_line = kind in (ChannelKind.sms, ChannelKind.voice, ChannelKind.social, ChannelKind.banner)
    if one_line:
        ctx["body"], ctx["summary"] = " ".join(ctx["body"].split()), " ".join(ctx["summary"].split())

    def render(text: str, show_contact: bool) -> str:
        out = render_template(settings.templates_dir, template, {**ctx, "text": text, "show_contact": show_contact})
        if kind is ChannelKind.voice:  # read aloud: no emoji, no URLs (text/speech.py)
            out = speakable(out, ctx["labels"].get("voice_link"))
        if ctx["question"] and kind in QUESTION_KINDS:
            out = _ensure_question(out.strip(), ctx["question"], kind)
        return _ensure_marker(out.strip(), ctx["marker"])[0]

    rendered = Rendered(
        message=Message(text=""), kind=kind, channel=kind_or_adapter_name, adapter=adapter_name, locale=ctx["locale"]
    )
    rendered.warnings.extend(warnings)
    text, measure = _fit(render, rule, ctx["body"], ctx["summary"], rendered)
    raw = render_template(settings.templates_dir, template, {**ctx, "text": ctx["body"], "show_contact": True}).strip()
    if _ensure_marker(raw, ctx["marker"])[1]:
        rendered.actions.append(f"added the missing marker {ctx['marker'].strip()!r} the template left out")
    rendered.encoding, rendered.segments = measure.encoding, measure.segments
    rendered.length, rendered.max_length = measure.length, measure.max_length
    data: dict[str, Any] = {}
    if kind is ChannelKind.voice:
        data["voice_language"] = voice_language(ctx["locale"])
    if kind is ChannelKind.webhook:
        data["payload"] = _webhook_payload(update, ctx, text)
    if ctx["question"] and kind in QUESTION_KINDS:
        data["question"] = _question_data(ctx["question"])
    rendered.message = Message(text=text, data=data, **base)
    return rendered


def _fit(
    render: Callable[[str, bool], str], rule: LengthRule, body: str, summary: str, out: Rendered
) -> tuple[str, Measure]:
    full = render(body, True)
    measure = rule.measure(full)
    if measure.fits:
        return full, measure
    source = body
    limit = f"{measure.max_length} ({rule.unit})" if rule.unit != "sms_segments" else f"{rule.limit} segments"
    if summary and summary.strip() != body.strip():
        text = render(summary, True)
        out.used_summary = True
        out.actions.append(f"body over the limit of {limit}; used the short summary")
        measure = rule.measure(text)
        if measure.fits:
            return text, measure
        source = summary
    else:
        out.actions.append(f"body over the limit of {limit} and no separate summary")

    def fits_with(show_contact: bool) -> Callable[[str], bool]:
        return lambda t: rule.measure(render(t, show_contact)).fits

    for show_contact in (True, False):
        short = shorten(source, fits_with(show_contact))
        if short is not None:
            text = render(short, show_contact)
            out.truncated = True
            what = "summary" if out.used_summary else "body"
            out.actions.append(f"shortened the {what} at a word boundary ({len(short)} of {len(source)} characters)")
            if not show_contact:
                out.actions.append("left out the how-to-reach-us part")
            out.warnings.append(f"text shortened to fit {limit}; consider a shorter summary")
            return text, rule.measure(text)
    text = render(source, True)
    measure = rule.measure(text)
    out.warnings.append(f"over limit: {measure.length} > {measure.max_length} and no safe place to shorten")
    return text, measure


def _render_email(
    update: Update,
    channel: str,
    adapter_name: str | None,
    ctx: dict[str, Any],
    extra: dict[str, str],
    warnings: list[str],
    base: dict[str, Any],
    settings: Settings,
) -> Rendered:
    unsubscribe = extra.get("unsubscribe_url") or UNSUBSCRIBE_PLACEHOLDER
    ctx = {**ctx, "unsubscribe_url": unsubscribe}
    tdir = settings.templates_dir
    subject = " ".join(render_template(tdir, "email_subject.txt.j2", ctx).split())
    subject, _ = _ensure_marker(subject, ctx["marker"])
    ctx["subject"] = subject
    text = _ensure_marker(render_template(tdir, "email.txt.j2", ctx).strip() + "\n", ctx["marker"])[0]
    html = _ensure_html_marker(render_template(tdir, "email.html.j2", ctx), ctx["marker"])
    headers: dict[str, str] = {}
    if "unsubscribe_url" in extra:
        headers = {
            "List-Unsubscribe": f"<{extra['unsubscribe_url']}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    data = {"question": _question_data(ctx["question"])} if ctx["question"] else {}
    rendered = Rendered(
        message=Message(text=text, subject=subject, html=html, headers=headers, data=data, **base),
        kind=ChannelKind.email,
        channel=channel,
        adapter=adapter_name,
        locale=ctx["locale"],
        length=len(text),
        warnings=list(warnings),
    )
    if len(subject) > 78:
        rendered.warnings.append(f"subject is {len(subject)} characters; mail clients show about 78")
    return rendered


def _webhook_payload(update: Update, ctx: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "event": "update.published" if not update.test else "update.test",
        "test": bool(update.test),
        "text": text,
        "update": {
            "id": update.id,
            "kind": ctx["kind"],
            "corrects_id": update.corrects_id,
            "locale": ctx["locale"],
            "body": ctx["body"],
            "summary": ctx["summary"],
            "status": update.status,
            "published_at": update.published_at.isoformat() if update.published_at else None,
        },
        "incident": dict(ctx["incident"]),
        "links": ctx["links"],
        "contact": {k: v for k, v in ctx["contact"].items() if v},
        "status_url": ctx["status_url"],
        **({"question": _webhook_question(ctx["question"])} if ctx["question"] else {}),
    }


def _question_data(question: dict[str, Any]) -> dict[str, Any]:
    """What adapters and the worker need of the question (message.data["question"]): id and options."""
    return {
        "id": question["id"],
        "text": question["text"],
        "options": [{"key": o["key"], "label": o["label"], "press": o["press"]} for o in question["options"]],
    }


def _webhook_question(question: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": question["id"],
        "text": question["text"],
        "state": question["state"],
        "options": [
            {"key": o["key"], "label": o["label"], "needs_help": bool(o.get("needs_help"))} for o in question["options"]
        ],
        "response_url": question["response_url"],
        "response_format": {"method": "POST", "json": {"option": "<key>", "respondent": "<who answers>"}},
    }
