"""Subscriber service: CRUD, CSV import with a per-row report, self-service subscribe/confirm, opt-outs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.orm import Session

from broadcaster import signing
from broadcaster.areas.service import set_subscriber_areas, subscriber_area_slugs
from broadcaster.delivery.entrypoints import notify_workers
from broadcaster.errors import Conflict, NotFound, Unprocessable
from broadcaster.models import Category, utcnow
from broadcaster.models.audience import SubscriberCategory, SubscriberTag
from broadcaster.models.delivery import Broadcast, Delivery, Subscriber
from broadcaster.models.services import Service, SubscriberService
from broadcaster.settings import get_settings
from broadcaster.subscribers import memberships, tokens
from broadcaster.subscribers.schemas import SubscribeIn, SubscriberIn, SubscriberOut, SubscriberPatch


def get(session: Session, subscriber_id: int) -> Subscriber:
    row = session.get(Subscriber, subscriber_id)
    if row is None:
        raise NotFound(f"Subscriber {subscriber_id} does not exist.", field="subscriber_id")
    return row


def unknown_categories(session: Session, slugs: list[str]) -> list[str]:
    if not slugs:
        return []
    known = set(session.scalars(select(Category.slug).where(Category.slug.in_(slugs))))
    return [s for s in slugs if s not in known]


def _check_categories(session: Session, slugs: list[str] | None) -> None:
    missing = unknown_categories(session, slugs or [])
    if missing:
        raise Unprocessable(f"unknown category {missing[0]!r}", field="categories")


def _check_services(session: Session, slugs: list[str] | None, *, public_only: bool = False) -> None:
    missing = memberships.unknown_services(session, slugs or [], public_only=public_only)
    if missing:
        raise Unprocessable(f"unknown service {missing[0]!r}", field="services")


def out(session: Session, row: Subscriber) -> SubscriberOut:
    """The API view of one subscriber (with its category, tag and service slugs)."""
    areas = subscriber_area_slugs(session, [row.id])[row.id]
    return SubscriberOut.build(row, memberships.read(session, [row.id])[row.id], areas)


def outs(session: Session, rows: list[Subscriber]) -> list[SubscriberOut]:
    """The API view of many subscribers (three queries for their choices, however many rows)."""
    choices = memberships.read(session, [r.id for r in rows])
    areas = subscriber_area_slugs(session, [r.id for r in rows])
    return [SubscriberOut.build(r, choices[r.id], areas[r.id]) for r in rows]


def _find(session: Session, phone: str | None, email: str | None) -> list[Subscriber]:
    conds = []
    if phone:
        conds.append(Subscriber.phone == phone)
    if email:
        conds.append(Subscriber.email == email.lower())
    if not conds:
        return []
    return list(session.scalars(select(Subscriber).where(or_(*conds))))


def _apply(row: Subscriber, data: dict[str, Any]) -> dict[str, list[str]]:
    """Set the subscriber's columns from `data`; returns its choices (categories, tags, services) to write
    as join rows."""
    choices: dict[str, list[str]] = {}
    for key, value in data.items():
        if key in memberships.KINDS:
            choices[key] = list(value or [])
            continue
        if key == "areas":  # join rows (set_subscriber_areas)
            continue
        if key == "email" and value:
            value = str(value).lower()
        setattr(row, key, value)
    return choices


def create(session: Session, body: SubscriberIn, source: str = "api") -> Subscriber:
    _check_categories(session, body.categories)
    _check_services(session, body.services)
    if _find(session, body.phone, body.email):
        raise Conflict(
            "A subscriber with this phone or email already exists.", field="phone" if body.phone else "email"
        )
    row = Subscriber(source=source)
    choices = _apply(row, body.model_dump())
    row.all_categories = memberships.everything(choices)
    session.add(row)
    session.flush()
    memberships.add(session, {row.id: choices})
    if body.areas:
        set_subscriber_areas(session, row.id, body.areas)
    return row


def patch(session: Session, subscriber_id: int, body: SubscriberPatch) -> Subscriber:
    row = get(session, subscriber_id)
    data = body.model_dump(exclude_unset=True)
    _check_categories(session, data.get("categories"))
    _check_services(session, data.get("services"))
    for field in ("phone", "email"):
        if data.get(field):
            other = _find(session, data[field] if field == "phone" else None, data[field] if field == "email" else None)
            if any(o.id != row.id for o in other):
                raise Conflict(f"Another subscriber has this {field}.", field=field)
    choices = _apply(row, data)
    if not row.phone and not row.email:
        raise Unprocessable("a phone or an email is required", field="phone")
    row.updated_at = utcnow()
    session.flush()
    if choices:
        memberships.replace(session, {row.id: choices})
    if data.get("areas") is not None:
        set_subscriber_areas(session, row.id, data["areas"])
    return row


def delete(session: Session, subscriber_id: int) -> None:
    session.delete(get(session, subscriber_id))
    session.flush()


def list_subscribers(
    session: Session,
    *,
    q: str | None,
    category: str | None,
    tag: str | None,
    locale: str | None,
    service: str | None = None,
    test_group: bool | None,
    limit: int,
    cursor: int | None,
) -> list[Subscriber]:
    stmt = select(Subscriber).order_by(Subscriber.id.desc()).limit(limit + 1)
    if cursor is not None:
        stmt = stmt.where(Subscriber.id < cursor)
    if q:
        # case-insensitive on both backends (PostgreSQL's LIKE is not); % and _ in the query match themselves
        escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        stmt = stmt.where(
            or_(
                Subscriber.email.like(like, escape="\\"),
                Subscriber.phone.like(like, escape="\\"),
                func.lower(Subscriber.name).like(like, escape="\\"),
            )
        )
    if category:  # subscribers who chose this category (not the all-categories ones)
        stmt = stmt.where(
            Subscriber.id.in_(
                select(SubscriberCategory.subscriber_id)
                .join(Category, Category.id == SubscriberCategory.category_id)
                .where(Category.slug == category)
            )
        )
    if tag:
        stmt = stmt.where(Subscriber.id.in_(select(SubscriberTag.subscriber_id).where(SubscriberTag.tag == tag)))
    if service:
        stmt = stmt.where(
            Subscriber.id.in_(
                select(SubscriberService.subscriber_id)
                .join(Service, Service.id == SubscriberService.service_id)
                .where(Service.slug == service)
            )
        )
    if locale:
        stmt = stmt.where(Subscriber.locale == locale)
    if test_group is not None:
        stmt = stmt.where(Subscriber.test_group.is_(test_group))
    return list(session.scalars(stmt))


# --- self-service ------------------------------------------------------------------------------------


@dataclass
class SubscribeOutcome:
    """What a public subscribe did: addresses waiting for their confirmation (nothing reveals whether an
    address was known already)."""

    email_pending: bool = False
    phone_pending: bool = False


def subscribe(session: Session, body: SubscribeIn) -> SubscribeOutcome:
    """Create a self-service subscription; both an email and a phone wait for their confirmation (double
    opt-in: a link for the email, a text to answer YES for the phone) and count in no audience before.

    Anyone can post this form, so it never changes an existing subscriber's addresses or consent: a
    known unconfirmed address only gets a fresh confirmation (at most one per
    SUBSCRIBE_CONFIRM_INTERVAL_SECONDS), a known confirmed one is left as it is (a phone that texted STOP
    must text START to come back).
    """
    _check_categories(session, body.categories)
    _check_services(session, body.services, public_only=True)
    choices = {"categories": body.categories, "services": body.services}
    everything = memberships.everything(choices)
    email = str(body.email).lower() if body.email else None
    email_row = session.scalar(select(Subscriber).where(Subscriber.email == email)) if email else None
    phone_row = session.scalar(select(Subscriber).where(Subscriber.phone == body.phone)) if body.phone else None
    outcome = SubscribeOutcome()
    if email:
        row = email_row
        if row is None:
            row = Subscriber(
                source="self", email=email, email_confirmed=False, locale=body.locale, all_categories=everything
            )
            if body.phone and phone_row is None:
                row.phone, row.phone_confirmed = body.phone, False
                phone_row = row
            session.add(row)
            session.flush()
            memberships.add(session, {row.id: choices})
        if not row.email_confirmed or row.email_opted_out:
            outcome.email_pending = True
            send_confirmation(session, row)
    if body.phone:
        if phone_row is None:
            phone_row = Subscriber(
                source="self",
                phone=body.phone,
                phone_confirmed=False,
                locale=body.locale,
                all_categories=everything,
            )
            session.add(phone_row)
            session.flush()
            memberships.add(session, {phone_row.id: choices})
        if not phone_row.phone_confirmed and not phone_row.sms_opted_out:
            outcome.phone_pending = True
            send_phone_confirmation(session, phone_row)
    return outcome


def _may_send(session: Session, row: Subscriber, column: Any) -> bool:
    """Claim the right to send one confirmation to `row` now: at most one per SUBSCRIBE_CONFIRM_INTERVAL_SECONDS
    per address, decided by one conditional UPDATE (atomic across requests and processes)."""
    now = utcnow()
    cutoff = now - timedelta(seconds=get_settings().subscribe_confirm_interval_seconds)
    result = session.execute(
        update(Subscriber)
        .where(Subscriber.id == row.id, or_(column.is_(None), column <= cutoff))
        .values({column: now})
        .execution_options(synchronize_session=False)
    )
    return int(cast(CursorResult[Any], result).rowcount or 0) == 1


def _system_message(session: Session, row: Subscriber, channel: str, to: str, **message: Any) -> int:
    broadcast = Broadcast(
        kind="system",
        channels=[channel],
        state="planning",
        message={"to": to, "subscriber_id": row.id, "locale": row.locale, **message},
    )
    session.add(broadcast)
    session.flush()
    notify_workers(session)
    return broadcast.id


def send_confirmation(session: Session, row: Subscriber) -> int | None:
    """Queue the double opt-in email carrying a signed confirmation link (None: one was sent recently)."""
    assert row.email is not None
    if not _may_send(session, row, Subscriber.email_confirm_sent_at):
        return None
    settings = get_settings()
    link = tokens.confirm_url(row.id, row.email)
    text = (
        f"Please confirm that you want alerts from {settings.org_name} at this address:\n\n{link}\n\n"
        "If you did not ask for this, ignore this message."
    )
    subject = f"Confirm your {settings.org_name} alerts subscription"
    return _system_message(session, row, "email", row.email, subject=subject, text=text)


def send_phone_confirmation(session: Session, row: Subscriber) -> int | None:
    """Queue the one confirmation text of an unconfirmed number (None: one was sent recently)."""
    assert row.phone is not None
    if not _may_send(session, row, Subscriber.phone_confirm_sent_at):
        return None
    text = (
        f"{get_settings().org_name} alerts: reply YES to get alerts by text at this number. "
        "Ignore this to get nothing. Reply STOP to opt out."
    )
    return _system_message(session, row, "sms", row.phone, text=text)


def confirm_target(session: Session, token: str) -> Subscriber | None:
    """The subscriber a confirmation link confirms, if it is valid: signed, at most 7 days old, for the
    subscriber's current address, and issued after the subscriber's latest unsubscribe."""
    payload = signing.verify("confirm", token, max_age=tokens.CONFIRM_MAX_AGE)
    if payload is None:
        return None
    sid = payload.get("s")
    if not isinstance(sid, int) or isinstance(sid, bool) or not 0 < sid < 2**63:
        return None
    row = session.get(Subscriber, sid)
    if row is None or row.email is None or row.email != payload.get("e"):
        return None
    if row.email_opted_out_at is not None and row.email_opted_out_at.timestamp() > payload["t"]:
        return None
    return row


def confirm(session: Session, token: str) -> Subscriber | None:
    row = confirm_target(session, token)
    if row is None:
        return None
    row.email_confirmed = True
    row.email_opted_out = False
    row.updated_at = utcnow()
    return row


def suppress_pending(session: Session, address: str, kinds: tuple[str, ...]) -> None:
    """Pending deliveries to an address that just opted out are not sent."""
    from broadcaster.channels.registry import kind_of

    pending = session.execute(
        select(Delivery.id, Delivery.channel).where(Delivery.status == "pending", Delivery.address == address)
    ).all()
    ids = [i for i, channel in pending if (k := kind_of(channel)) is not None and k.value in kinds]
    if ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status == "pending")
            .values(status="suppressed", error_reason="recipient opted out", updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def unsubscribe_email(session: Session, token: str) -> Subscriber | None:
    payload = signing.verify("unsubscribe", token)
    if payload is None:
        return None
    row = session.get(Subscriber, payload.get("s"))
    if row is None:
        return None
    row.email_opted_out = True
    row.email_opted_out_at = row.updated_at = utcnow()
    if row.email:
        suppress_pending(session, row.email, ("email",))
    return row


def set_sms_opt_out(session: Session, phone: str, opted_out: bool) -> Subscriber | None:
    """STOP (`opted_out`) or START/YES; the latter also confirms a number from the public form."""
    row = session.scalar(select(Subscriber).where(Subscriber.phone == phone))
    if row is None:
        return None
    row.sms_opted_out = opted_out
    if not opted_out:
        row.phone_confirmed = True
    row.updated_at = utcnow()
    if opted_out:
        suppress_pending(session, phone, ("sms", "voice"))
    return row
