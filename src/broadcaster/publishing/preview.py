"""Exactly what publishing an update would send: every channel's rendered text per locale, the recipients it would
reach, how long that takes behind the queue, the warnings a comms officer must see first, and what else an approval
binds (publishing/binding.py: audience, services, areas, the question's escalation and its summary recipients)."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from broadcaster.channels.base import Adapter, Message
from broadcaster.channels.registry import kind_of, resolve_channel
from broadcaster.delivery import eta as eta_module
from broadcaster.delivery.audience import TEST_SKIP_REASON, audience_counts, audience_locales
from broadcaster.delivery.eta import SLOW_SECONDS, EtaOut
from broadcaster.domain import SUBSCRIBER_KINDS, Priority
from broadcaster.models import Update
from broadcaster.publishing.binding import binding
from broadcaster.publishing.schemas import ChannelPreview, PreviewOut, RenderOut
from broadcaster.rendering import Rendered, render_update
from broadcaster.settings import Settings

log = logging.getLogger(__name__)


def _render_out(r: Rendered) -> RenderOut:
    return RenderOut(
        locale=r.locale,
        text=r.message.text,
        subject=r.message.subject,
        html=r.message.html,
        encoding=r.encoding,
        segments=r.segments,
        length=r.length,
        max_length=r.max_length,
        used_summary=r.used_summary,
        truncated=r.truncated,
        actions=r.actions,
        warnings=r.warnings,
    )


def channel_names(update: Update) -> list[str]:
    """The update's own channel override, else the routing map's channels for the incident's severity."""
    if update.channels is not None:
        return list(update.channels)
    incident = update.incident
    return list((incident.category.channels or {}).get(incident.severity, []))


def _counts(session: Session, update: Update) -> tuple[dict[str, int], str | None]:
    try:
        return audience_counts(session, update), None
    except Exception:
        log.exception("audience_counts failed during preview")
        return {}, "recipient counts are unavailable (see the server log)"


def preview(session: Session, update: Update, settings: Settings, *, with_counts: bool = True) -> PreviewOut:
    """What every channel the update fires would send, per locale, with warnings and recipient counts
    (`with_counts=False` skips the COUNT queries: the content ETag needs only the messages)."""
    incident = update.incident
    names = channel_names(update)
    counts, count_warning = _counts(session, update) if with_counts else ({}, None)
    warnings: list[str] = [count_warning] if count_warning else []
    if not names:
        warnings.append(f"no channels: the routing map sends nothing for severity {incident.severity!r}")
    own = update.locale or settings.default_locale
    translations = dict(update.translations or {})
    for loc in _locales_read(session, update, settings, with_counts=with_counts):
        if loc != own and loc.split("-")[0] != own and loc not in translations:
            warnings.append(f"missing translation for {loc}: subscribers in {loc} get the {own} text")
    out: list[ChannelPreview] = []
    for name in names:
        kind = kind_of(name)
        if kind is None:
            warnings.append(f"unknown channel {name!r} (no adapter installed with that name)")
            continue
        # adapters are built lazily (no connection is opened until a send), so nothing to close here
        adapters = resolve_channel(name, settings)
        target = adapters[0].name if adapters else name
        rendered = render_update(session, update, target, own, settings=settings)
        extra = {
            loc: _render_out(render_update(session, update, target, loc, settings=settings))
            for loc in translations
            if loc != own
        }
        base = _render_out(rendered)
        channel_warnings = list(base.warnings)
        if not adapters:
            channel_warnings.insert(0, f"channel not configured: no {kind.value} adapter has credentials")
        if update.test and kind not in SUBSCRIBER_KINDS:
            channel_warnings.insert(0, TEST_SKIP_REASON)
        over = rendered.max_length is not None and rendered.length > rendered.max_length
        if over and not any(w.startswith("over limit") for w in channel_warnings):
            channel_warnings.append(f"over limit: {rendered.length} > {rendered.max_length}")
        recipients = counts.get(name)
        if recipients is None and adapters:
            recipients = counts.get(adapters[0].name, counts.get(kind.value))
        eta = _eta(session, update, name, int(recipients or 0), adapters[0] if adapters else None, rendered.message)
        if eta.seconds is not None and eta.seconds > SLOW_SECONDS:
            channel_warnings.append(f"slow: {eta.text} to reach everyone")
        out.append(
            ChannelPreview(
                **{**base.model_dump(), "warnings": channel_warnings},
                channel=name,
                adapter=adapters[0].name if adapters else rendered.adapter,
                kind=kind.value,
                configured=bool(adapters),
                failover=[a.name for a in adapters[1:]],
                recipients=int(recipients or 0),
                eta=eta,
                translations=extra,
            )
        )
    return PreviewOut(
        update_id=update.id,
        incident_id=incident.id,
        category=incident.category.slug,
        severity=incident.severity,
        test=bool(update.test),
        channels=out,
        warnings=warnings,
        binding=binding(session, update),
    )


def _locales_read(session: Session, update: Update, settings: Settings, *, with_counts: bool) -> list[str]:
    """The languages a missing translation is warned about: those the subscribers in the audience read (no
    warning when everyone reads the update's own language); without the count queries, every supported one."""
    wanted = list(settings.supported_locales) + list((update.audience or {}).get("locales") or [])
    if with_counts:
        try:
            wanted = sorted(audience_locales(session, update))
        except Exception:  # a warning list never fails a preview
            log.exception("audience_locales failed during preview")
    return list(dict.fromkeys(wanted))


def _eta(
    session: Session, update: Update, name: str, recipients: int, adapter: Adapter | None, message: Message
) -> EtaOut:
    """How long this channel takes to reach everyone, behind what is already queued in its lane or above."""
    priority = Priority.for_send(update.incident.severity, test=bool(update.test))
    try:
        ahead = eta_module.queued_ahead(session, name, int(priority))
    except Exception:  # an estimate never fails a preview
        log.exception("queued_ahead failed during preview")
        ahead = 0
    return eta_module.estimate(name, eta_module.label_of(name, adapter), recipients, adapter, message, ahead)
