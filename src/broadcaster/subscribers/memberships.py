"""A subscriber's choices as join rows: the categories they subscribe to, their tags and the services they
follow (`subscriber_categories`, `subscriber_tags`, `subscriber_services`).

The API speaks slugs; the tables hold ids (categories, services) or the tag itself. Everything here works
in bulk (one query per table for a page of subscribers or an import batch) and keeps
`Subscriber.all_categories` true exactly when a subscriber has no category and no service.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, exists, insert, not_, select, update
from sqlalchemy.orm import Session

from broadcaster.models import Category
from broadcaster.models.audience import SubscriberCategory, SubscriberTag
from broadcaster.models.delivery import Subscriber
from broadcaster.models.services import Service, SubscriberService

#: the choices a subscriber can make, as the API names them
KINDS = ("categories", "tags", "services")
#: ids per statement when deleting or reading join rows of many subscribers (well under SQLite's bind limit)
_IN_CHUNK = 5000


@dataclass
class Choices:
    """What one subscriber chose (slugs, sorted)."""

    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)


def _chunks(ids: Collection[int]) -> Iterable[list[int]]:
    items = list(ids)
    for i in range(0, len(items), _IN_CHUNK):
        yield items[i : i + _IN_CHUNK]


def category_ids(session: Session, slugs: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(slugs))
    if not wanted:
        return {}
    return {s: i for s, i in session.execute(select(Category.slug, Category.id).where(Category.slug.in_(wanted)))}


def service_ids(session: Session, slugs: Iterable[str], *, public_only: bool = False) -> dict[str, int]:
    wanted = sorted(set(slugs))
    if not wanted:
        return {}
    stmt = select(Service.slug, Service.id).where(Service.slug.in_(wanted))
    if public_only:
        stmt = stmt.where(Service.public.is_(True))
    return {s: i for s, i in session.execute(stmt)}


def unknown_services(session: Session, slugs: list[str], *, public_only: bool = False) -> list[str]:
    known = service_ids(session, slugs, public_only=public_only)
    return [s for s in slugs if s not in known]


def public_services(session: Session) -> list[Service]:
    """Services anyone may follow from the public subscribe form, in status-page order."""
    return list(
        session.scalars(select(Service).where(Service.public.is_(True)).order_by(Service.position, Service.name))
    )


def read(session: Session, subscriber_ids: Collection[int]) -> dict[int, Choices]:
    """The choices of each subscriber in `subscriber_ids` (three queries however many there are)."""
    out = {sid: Choices() for sid in subscriber_ids}
    for ids in _chunks(out):
        for sid, slug in session.execute(
            select(SubscriberCategory.subscriber_id, Category.slug)
            .join(Category, Category.id == SubscriberCategory.category_id)
            .where(SubscriberCategory.subscriber_id.in_(ids))
        ):
            out[sid].categories.append(slug)
        for sid, tag in session.execute(
            select(SubscriberTag.subscriber_id, SubscriberTag.tag).where(SubscriberTag.subscriber_id.in_(ids))
        ):
            out[sid].tags.append(tag)
        for sid, slug in session.execute(
            select(SubscriberService.subscriber_id, Service.slug)
            .join(Service, Service.id == SubscriberService.service_id)
            .where(SubscriberService.subscriber_id.in_(ids))
        ):
            out[sid].services.append(slug)
    for choices in out.values():
        choices.categories.sort()
        choices.tags.sort()
        choices.services.sort()
    return out


def _rows(
    session: Session, changes: Mapping[int, Mapping[str, list[str] | None]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The join rows of `changes` (unknown slugs are skipped: callers validate them first)."""
    cats = category_ids(session, (s for c in changes.values() for s in c.get("categories") or []))
    svcs = service_ids(session, (s for c in changes.values() for s in c.get("services") or []))
    cat_rows, tag_rows, svc_rows = [], [], []
    for sid, choice in changes.items():
        cat_rows += [
            {"subscriber_id": sid, "category_id": cats[s]} for s in set(choice.get("categories") or []) if s in cats
        ]
        tag_rows += [{"subscriber_id": sid, "tag": t} for t in set(choice.get("tags") or [])]
        svc_rows += [
            {"subscriber_id": sid, "service_id": svcs[s]} for s in set(choice.get("services") or []) if s in svcs
        ]
    return cat_rows, tag_rows, svc_rows


def _insert(session: Session, cat_rows: list[Any], tag_rows: list[Any], svc_rows: list[Any]) -> None:
    for model, rows in ((SubscriberCategory, cat_rows), (SubscriberTag, tag_rows), (SubscriberService, svc_rows)):
        if rows:
            session.execute(insert(model), rows)


def everything(choice: Mapping[str, list[str] | None]) -> bool:
    """A subscriber choosing neither a category nor a service hears about everything."""
    return not choice.get("categories") and not choice.get("services")


def add(session: Session, changes: Mapping[int, Mapping[str, list[str] | None]]) -> None:
    """Join rows of subscribers just created (they have none yet); their `all_categories` must already be
    `everything(choice)`."""
    _insert(session, *_rows(session, changes))


def replace(session: Session, changes: Mapping[int, Mapping[str, list[str] | None]]) -> None:
    """Replace, for each subscriber, the kinds present in its mapping (a kind left out is kept as it is), and
    bring `all_categories` in step."""
    tables: dict[str, Any] = {"categories": SubscriberCategory, "tags": SubscriberTag, "services": SubscriberService}
    for kind, model in tables.items():
        ids = [sid for sid, c in changes.items() if kind in c]
        for chunk in _chunks(ids):
            session.execute(
                delete(model).where(model.subscriber_id.in_(chunk)).execution_options(synchronize_session=False)
            )
    _insert(session, *_rows(session, changes))
    touched = [sid for sid, c in changes.items() if "categories" in c or "services" in c]
    for chunk in _chunks(touched):
        no_rows = and_(
            not_(exists().where(SubscriberCategory.subscriber_id == Subscriber.id)),
            not_(exists().where(SubscriberService.subscriber_id == Subscriber.id)),
        )
        session.execute(
            update(Subscriber)
            .where(Subscriber.id.in_(chunk))
            .values(all_categories=no_rows)
            .execution_options(synchronize_session=False)
        )
    if touched:
        # the rows the session holds learn the new flag on their next access
        for obj in list(session.identity_map.values()):
            if isinstance(obj, Subscriber) and obj.id in changes:
                session.expire(obj, ["all_categories"])
