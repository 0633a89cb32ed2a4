"""Channel listing, checks and previews. Services take a session and never commit."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from broadcaster.channels.base import Adapter, Message
from broadcaster.channels.registry import adapter_classes, build_adapter, kind_of, resolve_channel
from broadcaster.channels.schemas import AdapterOut, ChannelPreview, DraftPreviewIn, PreviewOut, RenderOut
from broadcaster.delivery import eta as eta_module
from broadcaster.delivery.audience import TEST_SKIP_REASON
from broadcaster.delivery.eta import SLOW_SECONDS, EtaOut
from broadcaster.domain import SUBSCRIBER_KINDS, Priority
from broadcaster.errors import NotFound, Unprocessable
from broadcaster.models import Category, Incident, Update
from broadcaster.rendering import Rendered, render_update
from broadcaster.settings import Settings

log = logging.getLogger(__name__)


def list_adapters(settings: Settings) -> list[AdapterOut]:
    out: list[AdapterOut] = []
    for name, cls in sorted(adapter_classes().items(), key=lambda kv: (kv[1].kind.value, kv[1].priority, kv[0])):
        adapter = build_adapter(name, settings)
        if adapter is not None:
            info = adapter.describe()
            out.append(
                AdapterOut(
                    name=name,
                    kind=cls.kind.value,
                    configured=True,
                    priority=cls.priority,
                    **{"limits": info["limits"], "config": info["config"]},
                )
            )
        else:
            limits = {
                "max_length": cls.limits.max_length,
                "batch_size": cls.limits.batch_size,
                "rate_per_second": cls.limits.rate_per_second,
            }
            out.append(
                AdapterOut(
                    name=name, kind=cls.kind.value, configured=False, priority=cls.priority, limits=limits, config={}
                )
            )
    return out


def get_adapter(name: str, settings: Settings) -> Adapter:
    if name not in adapter_classes():
        raise NotFound(f"No channel adapter named {name!r} is installed.", field="name")
    adapter = build_adapter(name, settings)
    if adapter is None:
        raise NotFound(f"Channel adapter {name!r} is not configured.", field="name", code="not_configured")
    return adapter


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
    from broadcaster.delivery.entrypoints import audience_counts

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
    wanted = list(settings.supported_locales) + list((update.audience or {}).get("locales") or [])
    for loc in dict.fromkeys(wanted):
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
    )


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


def draft_update(session: Session, data: DraftPreviewIn) -> Update:
    """Transient Incident/Update objects for an unsaved draft; nothing is added to the session."""
    from broadcaster.routing.service import get_category

    if data.incident_id is not None:
        existing = session.get(Incident, data.incident_id)
        if existing is None:
            raise Unprocessable(
                f"Incident {data.incident_id} does not exist.", field="incident_id", code="unknown_incident"
            )
        category: Category = existing.category
        incident = Incident(
            id=existing.id,
            title=existing.title,
            severity=data.severity.value if data.severity else existing.severity,
            status=existing.status,
            category_id=category.id,
            affected_services=list(existing.affected_services or []),  # who a services reach targets
        )
    else:
        assert data.category is not None and data.severity is not None
        category = get_category(session, data.category, field="category")
        incident = Incident(
            title=data.title, severity=data.severity.value, status="investigating", category_id=category.id
        )
    incident.category = category
    body = data.update
    update = Update(
        kind=body.kind.value,
        corrects_id=body.corrects,
        state="draft",
        status=body.status.value if body.status else None,
        body=body.body,
        summary=body.summary,
        locale=body.locale,
        translations={k: v.model_dump() for k, v in body.translations.items()},
        links=[{"title": ln.title, "url": str(ln.url)} for ln in body.links],
        channels=body.channels,
        audience=body.audience.model_dump(exclude_none=True) if body.audience else None,
        test=body.test,
        area=body.area.stored() if body.area else None,
    )
    if body.area is not None:
        from broadcaster.areas.service import validate_update_area

        validate_update_area(session, update.area, field="update.area")
    update.incident = incident
    update.incident_id = incident.id
    if body.question is not None:
        from broadcaster.responses.service import attach_draft_question

        attach_draft_question(update, body.question)
    return update
