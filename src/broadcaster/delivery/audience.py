"""Who an update reaches: channel choice, audience filters, and the SQL that selects recipients.

Everything here builds SQL that runs inside the database (`INSERT ... SELECT` at fan-out, `COUNT(*)` for
the preview): a million subscribers never pass through Python.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, literal, or_, select, text, union_all
from sqlalchemy.orm import Session, aliased, object_session

from broadcaster import hooks
from broadcaster.domain import SUBSCRIBER_KINDS, ChannelKind
from broadcaster.models import Category, Update
from broadcaster.models.audience import SubscriberCategory, SubscriberTag
from broadcaster.models.delivery import Broadcast, Delivery, Subscriber, update_broadcasts
from broadcaster.models.services import Service, SubscriberService

#: kinds whose recipients are subscribers (the rest get one pseudo-recipient per broadcast)
#: statuses meaning "the original broadcast reached (or is reaching) this recipient"
REACHED = ("sending", "sent", "delivered", "opened")


def channels_for(update: Update) -> list[str]:
    """The update's channel override, else the routing map's channels for the incident's severity."""
    if update.channels is not None:
        return list(dict.fromkeys(update.channels))
    incident = update.incident
    return list(dict.fromkeys((incident.category.channels or {}).get(incident.severity, [])))


def kind_of(name: str) -> ChannelKind | None:
    from broadcaster.channels.registry import kind_of as registry_kind_of

    return registry_kind_of(name)


def _ids(session: Session | None, model: Any, slugs: list[str]) -> Any:
    """Ids of the rows of `model` (Category or Service) with these slugs: literal ids give the planner the
    column statistics of each value (a subquery on slugs would be planned for an average category, and is
    only the fallback for an update outside a session)."""
    if not slugs:
        return []
    if session is None:
        return select(model.id).where(model.slug.in_(sorted(set(slugs))))
    return sorted(session.scalars(select(model.id).where(model.slug.in_(sorted(set(slugs))))))


def _some(ids: Any) -> bool:
    return not isinstance(ids, list) or bool(ids)


def _reach_ids(update: Update) -> tuple[Any, Any]:
    """(category ids, service ids) the update reaches through, each None when that branch is not used (ids
    are literal lists inside a session, else subqueries on the slugs)."""
    incident = update.incident
    session = object_session(update)
    audience = update.audience or {}
    overridden = audience.get("categories")
    category_ids = _ids(session, Category, list(overridden)) if overridden else [incident.category.id]
    service_ids = _ids(session, Service, list(incident.affected_services or []))
    reach = incident.category.reach or "either"
    by_category = _some(category_ids) and (reach != "services" or not _some(service_ids))
    by_service = _some(service_ids) and reach != "category"
    return (category_ids if by_category else None), (service_ids if by_service else None)


def reach_branches(update: Update) -> list[Any]:
    """SELECTs of subscriber ids the update reaches by category, followed service or "everything" (the
    routing map's `reach`); their union is the audience before channel, consent, tag and locale filters.

    - "category": the subscribers of the category (the update's `audience.categories` override if any);
    - "services": the followers of any of the incident's `affected_services`; when the incident names no
      known service, the category's subscribers instead (an update never silently reaches no one);
    - "either" (default): both.
    Subscribers who chose no category and no service (`all_categories`) are in every audience.
    """
    category_ids, service_ids = _reach_ids(update)
    everyone = aliased(Subscriber, name="everyone")
    branches: list[Any] = [select(everyone.id).where(everyone.all_categories)]
    if category_ids is not None:
        branches.append(
            select(SubscriberCategory.subscriber_id).where(SubscriberCategory.category_id.in_(category_ids))
        )
    if service_ids is not None:
        branches.append(select(SubscriberService.subscriber_id).where(SubscriberService.service_id.in_(service_ids)))
    return branches


def reach_exists(update: Update) -> ColumnElement[bool]:
    """The reach as `all_categories OR EXISTS (category row) OR EXISTS (service row)` for each subscriber:
    PostgreSQL plans it as a scan of `subscribers` with (hashed) subplans, or, when another condition drives
    the query (an area's ids), as one join-table index probe per candidate."""
    category_ids, service_ids = _reach_ids(update)
    parts: list[ColumnElement[bool]] = [Subscriber.all_categories.is_(True)]
    if category_ids is not None:
        sc = aliased(SubscriberCategory, name="sc")
        parts.append(
            exists().where(sc.subscriber_id == Subscriber.id, sc.category_id.in_(category_ids)).correlate(Subscriber)
        )
    if service_ids is not None:
        ss = aliased(SubscriberService, name="ss")
        parts.append(
            exists().where(ss.subscriber_id == Subscriber.id, ss.service_id.in_(service_ids)).correlate(Subscriber)
        )
    return or_(*parts)


#: a reach of at least this share of the subscribers (PostgreSQL's `reltuples`) is "large": see
#: `large_reach`
LARGE_SHARE = 0.05
#: ... and of at least this many subscribers (below it, any plan is quick)
LARGE_MIN = 1000


def large_reach(session: Session | None, update: Update) -> bool:
    """Whether the update's reach is large on PostgreSQL: the branches' rows (index-only counts, duplicates
    included), counted up to LARGE_SHARE of the table at most, reach that share. False outside a session,
    on SQLite, or when the branch ids are not literal."""
    if session is None or session.get_bind().dialect.name != "postgresql":
        return False
    branches = reach_branches(update)
    if any(not isinstance(ids, list) for ids in _reach_ids(update) if ids is not None):
        return False
    reach = union_all(*branches)
    # answered once per transaction and reach: a preview asks for every channel's count and ETA, and planning
    # for every channel kind, each with the same branches
    cache: dict[Any, Any] = session.info.setdefault("large_reach", {})
    txn = session.get_transaction()
    if cache.get("txn") is not txn:
        cache.clear()
        cache["txn"] = txn
    key = str(reach.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}))
    if key not in cache:
        rows = session.scalar(text("SELECT reltuples FROM pg_class WHERE oid = CAST('subscribers' AS regclass)"))
        threshold = max(int(float(rows or 0) * LARGE_SHARE), LARGE_MIN)
        capped = reach.limit(threshold).subquery()
        cache[key] = int(session.scalar(select(func.count()).select_from(capped)) or 0) >= threshold
    return bool(cache[key])


def subscriber_conditions(update: Update, kind: ChannelKind) -> list[ColumnElement[bool]]:
    """WHERE clauses selecting the subscribers `update` reaches on a channel of `kind`.

    The reach takes one of two forms (tests/delivery/test_audience_plan.py checks both plans):
    - small reach (the usual case): `subscribers.id IN (<union of index lookups>)` (see `reach_branches`):
      PostgreSQL runs it as a semi-join, each branch an index(-only) scan and each subscriber fetched by
      primary key, so a 1% audience never reads the other 99%. PostgreSQL has no statistics for a UNION's
      output and guesses 200 distinct ids, so this form is only used when `large_reach` says it is small;
    - large reach (>= 5% of the table, PostgreSQL), or any reach a feature narrows (an area): `reach_exists`, so a large
      audience is one scan of `subscribers` rather than a primary-key lookup per recipient, and an area's
      ids drive the query (a join-table probe per person in the area, never the whole category hashed)."""
    conds: list[ColumnElement[bool]] = []
    if kind is ChannelKind.email:
        conds += [
            Subscriber.email.is_not(None),
            Subscriber.email_confirmed.is_(True),
            Subscriber.email_opted_out.is_(False),
        ]
    else:
        # SMS double opt-in: a number from the public form counts once it replied YES
        conds += [
            Subscriber.phone.is_not(None),
            Subscriber.phone_confirmed.is_(True),
            Subscriber.sms_opted_out.is_(False),
        ]
    if update.test:
        conds.append(Subscriber.test_group.is_(True))
    audience = update.audience or {}
    # the features' narrowing (hooks.audience_filters): only the subscribers inside the update's area
    narrowing = [c for narrow in hooks.audience_filters.functions() if (c := narrow(None, update)) is not None]
    if narrowing or large_reach(object_session(update), update):
        conds.append(reach_exists(update))
    else:
        conds.append(Subscriber.id.in_(union_all(*reach_branches(update))))
    if audience.get("tags"):
        tagged = select(SubscriberTag.subscriber_id).where(SubscriberTag.tag.in_(sorted(set(audience["tags"]))))
        conds.append(Subscriber.id.in_(tagged))
    if audience.get("locales"):
        conds.append(Subscriber.locale.in_(list(audience["locales"])))
    conds += narrowing
    return conds


def address_column(kind: ChannelKind) -> Any:
    return Subscriber.email if kind is ChannelKind.email else Subscriber.phone


def subscriber_select(update: Update, kind: ChannelKind) -> Any:
    """`SELECT address, subscriber_id, locale FROM subscribers WHERE ...` for `kind`."""
    return select(address_column(kind), Subscriber.id, Subscriber.locale).where(
        and_(*subscriber_conditions(update, kind))
    )


def original_broadcast_id(session: Session, update: Update) -> int | None:
    """For a correction/cancel: the broadcast of the update it corrects (latest one), else None.

    A test correction/cancel follows only a test broadcast: of a live one it goes to the test group like any
    test send (it must never reach, nor cancel, the live audience)."""
    if update.kind == "normal" or update.corrects_id is None:
        return None
    stmt = update_broadcasts(update.corrects_id).with_only_columns(Broadcast.id)
    if update.test:
        stmt = stmt.where(Broadcast.test.is_(True))
    return session.scalar(stmt.limit(1))


def corrected_broadcast(session: Session, update: Update) -> Broadcast | None:
    """For a correction/cancel: the latest broadcast of the update it corrects (live or test), else None."""
    if update.kind == "normal" or update.corrects_id is None:
        return None
    return session.scalar(update_broadcasts(update.corrects_id).limit(1))


def resolved_channels(session: Session, update: Update) -> list[str]:
    """The channels publishing `update` uses: a correction/cancel goes out on its original's channels (a test
    one too, to the test group), anything else on its override or the routing map's channels."""
    corrected = corrected_broadcast(session, update)
    return list(corrected.channels) if corrected is not None else channels_for(update)


def reached_select(original_id: int, *, test: bool = False) -> Any:
    """Distinct (channel, address) the original broadcast reached, with a subscriber id and locale.

    `test`: only subscribers still in the test group (someone may have left it since the original)."""
    stmt = select(
        Delivery.channel,
        Delivery.address,
        func.max(Delivery.subscriber_id),
        func.max(Delivery.locale),
    ).where(Delivery.broadcast_id == original_id, Delivery.status.in_(REACHED))
    if test:
        stmt = stmt.where(Delivery.subscriber_id.in_(select(Subscriber.id).where(Subscriber.test_group.is_(True))))
    return stmt.group_by(Delivery.channel, Delivery.address)


#: why a test send skips a channel without subscribers (social, webhook, banner): it has no test group
TEST_SKIP_REASON = "test send: this channel has no test group (its posts are public), so it is left out"


def pseudo_addresses(name: str) -> list[str]:
    """Recipients of a channel without subscribers: the adapter's `broadcast_addresses()` or its name."""
    from broadcaster.channels.registry import resolve_channel
    from broadcaster.settings import get_settings

    adapters = resolve_channel(name, get_settings())
    if not adapters:
        return []
    return adapters[0].broadcast_addresses() or [adapters[0].name]


def audience_counts(session: Session, update: Update) -> dict[str, int]:
    """Recipients per channel name publishing `update` would reach (COUNT queries in the database)."""
    original = original_broadcast_id(session, update)
    if original is not None:
        reached = reached_select(original, test=bool(update.test)).subquery()
        rows = session.execute(
            select(reached.c.channel, func.count()).select_from(reached).group_by(reached.c.channel)
        ).all()
        return {channel: int(n) for channel, n in rows}
    counts: dict[str, int] = {}
    for name in resolved_channels(session, update):
        kind = kind_of(name)
        if kind is None:
            continue
        if kind in SUBSCRIBER_KINDS:
            stmt = select(func.count()).select_from(Subscriber).where(*subscriber_conditions(update, kind))
            counts[name] = int(session.scalar(stmt) or 0)
        else:
            counts[name] = 0 if update.test else len(pseudo_addresses(name))
    return counts


def audience_locales(session: Session, update: Update) -> set[str]:
    """The languages of the people publishing `update` would reach on a person's channel (SMS, voice, e-mail):
    a correction's, those its original reached; empty when it reaches nobody that way."""
    original = original_broadcast_id(session, update)
    if original is not None:
        stmt = select(Delivery.locale).where(Delivery.broadcast_id == original, Delivery.status.in_(REACHED))
        return {loc for loc in session.scalars(stmt.distinct()) if loc}
    found: set[str] = set()
    kinds = {k for name in resolved_channels(session, update) if (k := kind_of(name)) in SUBSCRIBER_KINDS}
    for kind in sorted(kinds):
        stmt = select(Subscriber.locale).where(*subscriber_conditions(update, kind)).distinct()
        found |= {loc for loc in session.scalars(stmt) if loc}
    return found


def literal_str(value: str) -> Any:
    return literal(value)
