"""Routing-map operations. Services take a session and never commit."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcaster.crud import get_by_slug
from broadcaster.errors import BadRequest, Conflict, Unprocessable, field_name
from broadcaster.models import Category, Incident
from broadcaster.publishing import approval
from broadcaster.routing.schemas import CategoryIn, CategoryPatch, RoutingMap


def list_categories(session: Session) -> list[Category]:
    return list(session.scalars(select(Category).order_by(Category.position, Category.slug)))


def get_category(session: Session, slug: str, *, field: str = "slug") -> Category:
    """The category `slug`: 404 when it is the addressed resource (`field="slug"`), else 422 naming `field`."""
    return get_by_slug(session, Category, slug, noun="category", field=field)


def _apply(cat: Category, data: CategoryIn | CategoryPatch) -> None:
    values = data.model_dump(exclude_unset=True, exclude={"slug"})
    if "contact" in values and data.contact is not None:
        cat.contact = data.contact.as_dict()
    if "channels" in values and data.channels is not None:
        cat.channels = {sev.value: list(names) for sev, names in data.channels.items()}
    if "escalation" in values:
        cat.escalation = data.escalation.stored() if data.escalation is not None else None
    for key in ("name", "description", "position", "reach"):
        if key in values and values[key] is not None:
            setattr(cat, key, values[key])


def check_new_slug(session: Session, slug: str) -> None:
    """409 `duplicate` when a category `slug` exists."""
    if session.scalar(select(Category.id).where(Category.slug == slug)) is not None:
        raise Conflict(f"Category {slug!r} already exists.", field="slug", code="duplicate")


def create_category(session: Session, data: CategoryIn) -> Category:
    check_new_slug(session, data.slug)
    cat = Category(slug=data.slug, name=data.name, contact={}, channels={})
    _apply(cat, data)
    session.add(cat)
    session.flush()
    return cat


def update_category(session: Session, slug: str, patch: CategoryPatch, actor: str) -> Category:
    """Edit a category; a change to what its pending updates bind (its escalation rules, which their questions
    inherit, or its reach) returns them to draft."""
    cat = get_category(session, slug)
    watched = approval.watch(session, category_id=cat.id)
    _apply(cat, patch)
    session.flush()
    watched.void(session, actor, cause=f"category {slug} changed in the routing map")
    return cat


def category_doc(data: CategoryIn) -> dict[str, Any]:
    """A new category as the map's JSON holds it."""
    return data.model_dump(mode="json")


def patched_doc(cat: dict[str, Any], patch: CategoryPatch) -> dict[str, Any]:
    """The category `cat` (the map's JSON) with `patch` applied, the way `update_category` applies it."""
    values = patch.model_dump(exclude_unset=True)
    out = dict(cat)
    if "contact" in values and patch.contact is not None:
        out["contact"] = patch.contact.model_dump(mode="json")
    if "channels" in values and patch.channels is not None:
        out["channels"] = {sev.value: list(names) for sev, names in patch.channels.items()}
    if "escalation" in values:
        out["escalation"] = patch.escalation.stored() if patch.escalation is not None else None
    for key in ("name", "description", "position", "reach"):
        if key in values and values[key] is not None:
            out[key] = values[key]
    return out


def with_category(doc: dict[str, Any], slug: str, cat: dict[str, Any] | None) -> dict[str, Any]:
    """The map `doc` (JSON) with the category `slug` replaced by `cat`, added when new, removed when None."""
    cats = [c for c in doc.get("categories") or [] if c["slug"] != slug]
    if cat is not None:
        cats.append(cat)
    return {**doc, "categories": cats}


def check_rules_allow_removal(doc: dict[str, Any], slug: str) -> None:
    """409 when an alert rule of the map `doc` publishes to the category `slug`."""
    rules = [r["name"] for r in doc.get("alert_rules") or [] if r.get("category") == slug]
    if rules:
        raise Conflict(
            f"Category {slug!r} is used by alert rule(s) {', '.join(rules)}; change them first.", field="slug"
        )


def _in_use(session: Session, cat: Category) -> int:
    return session.scalar(select(func.count()).select_from(Incident).where(Incident.category_id == cat.id)) or 0


def delete_category(session: Session, slug: str) -> None:
    cat = get_category(session, slug)
    if used := _in_use(session, cat):
        raise Conflict(f"Category {slug!r} is used by {used} incident(s); it cannot be deleted.", field="slug")
    session.delete(cat)
    session.flush()


def export_map(session: Session) -> RoutingMap:
    cats = [
        CategoryIn.model_validate(
            {
                "slug": c.slug,
                "name": c.name,
                "description": c.description,
                "contact": c.contact,
                "channels": c.channels,
                "position": c.position,
                "reach": c.reach or "either",
                "escalation": c.escalation,
            }
        )
        for c in list_categories(session)
    ]
    from broadcaster.alertrules.rules import export_sections

    return RoutingMap(categories=cats, **export_sections(session))


def check_map(routing_map: RoutingMap) -> None:
    """Render every alert-rule and webhook-mapping template on sample notifications under the render budget: one
    over budget is a 422 naming its field."""
    from broadcaster.alertrules.template_check import check_templates

    check_templates(routing_map)


def replace_map(
    session: Session, routing_map: RoutingMap, *, prune: bool = True, actor: str = "system", check: bool = True
) -> list[Category]:
    """Make the stored map equal `routing_map`: upsert every category, remove the others (if unused). Pending
    updates whose binding changed (a category's escalation rules or reach) return to draft, audited as `actor`.

    Unless the caller did (`check=False`), every template is first checked (`check_map`), before anything is
    written."""
    if check:
        check_map(routing_map)
    watched = approval.watch(session)
    existing = {c.slug: c for c in list_categories(session)}
    for data in routing_map.categories:
        cat = existing.pop(data.slug, None)
        if cat is None:
            create_category(session, data)
        else:
            cat.contact, cat.channels = {}, {}
            cat.description, cat.position, cat.reach = "", 0, "either"
            cat.escalation = None
            _apply(cat, data)
    from broadcaster.alertrules.rules import replace_sections

    replace_sections(session, routing_map)
    if prune:
        for slug, cat in existing.items():
            if _in_use(session, cat):
                raise Conflict(
                    f"Category {slug!r} is missing from the new map but used by incidents; keep it in the map.",
                    field="categories",
                )
            session.delete(cat)
    session.flush()
    watched.void(session, actor, cause="routing map replaced")
    return list_categories(session)


def to_yaml(routing_map: RoutingMap) -> str:
    data = routing_map.model_dump(mode="json", exclude_defaults=False)
    for cat in data["categories"]:
        cat["contact"] = {k: v for k, v in cat["contact"].items() if v is not None}
    for section in ("alert_rules", "webhook_mappings"):
        if not data[section]:
            del data[section]
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


#: Upper bound on values in a routing map once YAML aliases are expanded (a "billion laughs" guard).
MAX_MAP_VALUES = 50_000


def _exceeds(raw: Any, limit: int) -> bool:
    """True when `raw` holds more than `limit` values, counting shared (aliased) nodes each time; stops early."""
    stack, seen = [raw], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_map(text: str | bytes, *, source: str = "body", json_only: bool = False) -> RoutingMap:
    """Parse a YAML (or JSON, a YAML subset) routing map; 4xx naming the field on any problem.

    `json_only` (a request sent as application/json) answers 400 `malformed_json` for invalid JSON.
    """
    raw: Any
    if json_only:
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise BadRequest(f"Request body is not valid JSON: {exc}", field=source, code="malformed_json") from exc
    else:
        try:
            raw = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError) as exc:
            raise Unprocessable(f"{source} is not valid YAML: {exc}", field=source, code="malformed_yaml") from exc
    if not isinstance(raw, dict):
        raise Unprocessable(f"{source} must be a mapping with a 'categories' list.", field=source)
    if _exceeds(raw, MAX_MAP_VALUES):
        raise Unprocessable(
            f"{source} holds more than {MAX_MAP_VALUES} values (YAML aliases expand); simplify the map.", field=source
        )
    try:
        return RoutingMap.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = field_name(err["loc"], whole=source)
        # a check across sections (a rule's category must be in the map) names its field in the message
        if not err["loc"] and (
            named := re.match(r"Value error, ((?:alert_rules|webhook_mappings)\.\d+\.\w+): ", err["msg"])
        ):
            loc = named[1]
        raise Unprocessable(f"{loc}: {err['msg']}", field=loc) from exc
