"""Pure functions over two routing maps (as `GET /v1/routing-map` answers them, JSON values): what changed,
shown as a readable diff, and whether the change loosens safety, with the reasons.

A change loosens safety when it lets something reach people, or the public, that nobody approved before:
- alert-rule automation: a rule newly `publish: auto` or `two_person_rule: automation_allowed`; an automatic
  rule that matches more alerts (its integrations, `match` or `match_re` widened, it moved before another rule
  or a rule before it was removed), raises a severity, reaches another category or more channels; any change
  to a rule that allows automation; a webhook mapping feeding an automatic rule;
- escalation rules added or widened: more steps, another channel, shorter delays, a threshold that fires
  sooner or more often, new summary recipients (emails, phones, tag), quiet hours no longer respected;
- channels added for a severity of a category, or a category's `reach` widened (more people reached);
- the contact or the name of a category that has a live incident at or above APPROVAL_SEVERITY (the banner
  and the status page show them at once).
The routing map holds no approval settings (APPROVAL_* are environment settings). Everything else (removals,
narrowing, text of non-automatic rules, new categories without escalation) does not loosen.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from broadcaster.domain import Severity

SECTIONS = ("categories", "alert_rules", "webhook_mappings")
#: the key naming an item of each section
KEYS = {"categories": "slug", "alert_rules": "name", "webhook_mappings": "name"}
#: what `reach` each value includes (either = both)
REACH = {"category": {"category"}, "services": {"services"}, "either": {"category", "services"}}


@dataclass(frozen=True)
class FieldChange:
    """One field of an item: its dotted path, the value before and after (None: not set)."""

    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class ItemChange:
    """One category, alert rule or webhook mapping added, removed or changed (`name` "(order)": the rules'
    order changed)."""

    section: str
    name: str
    change: Literal["added", "removed", "changed"]
    fields: tuple[FieldChange, ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        return f"{self.section}[{self.name}]"


# --- the diff ------------------------------------------------------------------------------------------------


def _flat(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every leaf; lists of scalars are one value; unset (None) values are left out."""
    if isinstance(value, dict):
        for key in value:
            yield from _flat(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        for i, item in enumerate(value):
            yield from _flat(item, f"{prefix}.{i}")
    elif value is not None and value != {}:
        yield prefix, value


def flat(item: dict[str, Any] | None) -> dict[str, Any]:
    """An item as {dotted path: value}, unset values left out."""
    return dict(_flat(item or {}))


def _items(doc: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    key = KEYS[section]
    return {str(item[key]): item for item in doc.get(section) or []}


def diff_maps(before: dict[str, Any], after: dict[str, Any]) -> list[ItemChange]:
    """What changed from `before` to `after`, item by item (map order: categories, rules, mappings)."""
    out: list[ItemChange] = []
    for section in SECTIONS:
        old, new = _items(before, section), _items(after, section)
        for name, item in new.items():
            if name not in old:
                out.append(
                    ItemChange(section, name, "added", tuple(FieldChange(p, None, v) for p, v in flat(item).items()))
                )
                continue
            a, b = flat(old[name]), flat(item)
            changed = tuple(
                FieldChange(p, a.get(p), b.get(p)) for p in sorted(a.keys() | b.keys()) if a.get(p) != b.get(p)
            )
            if changed:
                out.append(ItemChange(section, name, "changed", changed))
        out.extend(ItemChange(section, name, "removed") for name in old if name not in new)
        if section == "alert_rules":
            common_old = [n for n in old if n in new]
            common_new = [n for n in new if n in old]
            if common_old != common_new:
                out.append(ItemChange(section, "(order)", "changed", (FieldChange("order", common_old, common_new),)))
    return out


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def render(changes: list[ItemChange]) -> str:
    """The diff as text: `+` added, `-` removed, `~` changed, then each field `path: before -> after`."""
    if not changes:
        return "(no changes)"
    lines: list[str] = []
    marks = {"added": "+", "removed": "-", "changed": "~"}
    for item in changes:
        lines.append(f"{marks[item.change]} {item.label} {item.change}")
        for f in item.fields:
            if item.change == "added":
                lines.append(f"    {f.path}: {_show(f.after)}")
            elif f.before is None:
                lines.append(f"    {f.path}: (unset) -> {_show(f.after)}")
            elif f.after is None:
                lines.append(f"    {f.path}: {_show(f.before)} -> (unset)")
            else:
                lines.append(f"    {f.path}: {_show(f.before)} -> {_show(f.after)}")
    return "\n".join(lines)


def summary(changes: list[ItemChange]) -> str:
    """One line: how many items of each section were added, changed, removed."""
    parts = []
    for section in SECTIONS:
        counts: dict[str, int] = {}
        for item in changes:
            if item.section == section and item.name != "(order)":
                counts[item.change] = counts.get(item.change, 0) + 1
        if any(i.section == section and i.name == "(order)" for i in changes):
            counts["reordered"] = 1
        if counts:
            words = ", ".join(f"{n} {what}" if what != "reordered" else "order changed" for what, n in counts.items())
            parts.append(f"{section}: {words}")
    return "; ".join(parts) or "no changes"


# --- loosening -----------------------------------------------------------------------------------------------


def _delay(rule: dict[str, Any]) -> float:
    """A step's or threshold's delay in seconds."""
    if rule.get("after_seconds") is not None:
        return float(rule["after_seconds"])
    return float(rule.get("after_minutes") or 0) * 60


def _describe_delay(rule: dict[str, Any]) -> str:
    seconds = _delay(rule)
    return f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:g} min"


def escalation_loosens(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """Why escalation rules `after` reach more than `before` (empty: they do not)."""
    if not after:
        return []
    out: list[str] = []
    old = before or {}
    if not before:
        out.append("escalation rules added")
    old_steps, new_steps = old.get("steps") or [], after.get("steps") or []
    for i, step in enumerate(new_steps):
        where = f"step {i + 1}"
        if i >= len(old_steps):
            if before:
                out.append(f"{where} added ({step.get('channel')} after {_describe_delay(step)})")
            continue
        if step.get("channel") != old_steps[i].get("channel"):
            out.append(f"{where} sends on {step.get('channel')} (was {old_steps[i].get('channel')})")
        if _delay(step) < _delay(old_steps[i]):
            out.append(f"{where} comes sooner ({_describe_delay(step)}, was {_describe_delay(old_steps[i])})")
    old_t, new_t = old.get("threshold"), after.get("threshold")
    if new_t:
        group, old_group = new_t.get("group") or {}, (old_t or {}).get("group") or {}
        if not old_t:
            if before:
                out.append("a threshold summary added")
        else:
            if float(new_t.get("percent") or 0) > float(old_t.get("percent") or 0):
                out.append(f"the threshold summary fires more often (below {new_t.get('percent')}%)")
            if _delay(new_t) < _delay(old_t):
                out.append(f"the threshold summary comes sooner ({_describe_delay(new_t)})")
        old_emails = {str(e).lower() for e in old_group.get("emails") or []}
        emails = [e for e in group.get("emails") or [] if str(e).lower() not in old_emails]
        phones = [p for p in group.get("phones") or [] if p not in (old_group.get("phones") or [])]
        if emails:
            out.append(f"new summary recipients: {', '.join(map(str, emails))}")
        if phones:
            out.append(f"new summary phone numbers: {', '.join(map(str, phones))}")
        if group.get("tag") and group.get("tag") != old_group.get("tag"):
            out.append(f"the summary goes to subscribers tagged {group['tag']}")
    if old.get("respect_quiet_hours", True) and after.get("respect_quiet_hours", True) is False:
        out.append("quiet hours no longer respected")
    return out


def _auto(rule: dict[str, Any] | None) -> bool:
    return bool(rule) and rule.get("publish") == "auto"  # type: ignore[union-attr]


def _automation(rule: dict[str, Any] | None) -> bool:
    return bool(rule) and rule.get("two_person_rule") == "automation_allowed"  # type: ignore[union-attr]


def _wider_match(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why `new` matches alerts `old` did not."""
    out = []
    old_integrations, new_integrations = set(old.get("integrations") or []), set(new.get("integrations") or [])
    if old_integrations and (not new_integrations or new_integrations - old_integrations):
        added = sorted(new_integrations - old_integrations)
        out.append(f"integrations widened ({', '.join(added) if new_integrations else 'all integrations'})")
    for key in ("match", "match_re"):
        before, after = old.get(key) or {}, new.get(key) or {}
        loosened = sorted(k for k, v in before.items() if after.get(k) != v)
        if loosened:
            out.append(f"{key} on {', '.join(loosened)} dropped or changed")
    return out


def _rank(value: Any) -> int:
    try:
        return Severity(value).rank
    except ValueError:
        return 0


def _higher_severity(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    if _rank(new.get("severity")) > _rank(old.get("severity")):
        out.append(f"severity raised to {new.get('severity')}")
    if (new.get("severity_label") or None) != (old.get("severity_label") or None) and new.get("severity_map"):
        out.append(f"severity read from another label ({new.get('severity_label')})")
    old_map, new_map = old.get("severity_map") or {}, new.get("severity_map") or {}
    raised = sorted(k for k, v in new_map.items() if _rank(v) > _rank(old_map.get(k, old.get("severity"))))
    if raised:
        out.append(f"severity_map raises {', '.join(raised)}")
    return out


def _rule_reasons(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Why the rule `new` (formerly `old`, None when new) loosens the alert-rule automation."""
    out: list[str] = []
    if _automation(new) and not _automation(old):
        out.append("two_person_rule: automation_allowed (its alerts publish alone, critical ones included)")
    if not _auto(new):
        return out
    if old is None:
        out.append("a new rule that publishes automatically (publish: auto)")
        return out
    if not _auto(old):
        out.append("now publishes automatically (publish: auto)")
        return out
    if _automation(new) and _automation(old):
        changed = sorted(k for k in new.keys() | old.keys() if new.get(k) != old.get(k))
        if changed:
            out.append(f"changed ({', '.join(changed)}) while it publishes alone (automation_allowed)")
        return out
    out += [f"matches more alerts: {why}" for why in _wider_match(old, new)]
    out += _higher_severity(old, new)
    if new.get("category") != old.get("category"):
        out.append(f"publishes to category {new.get('category')} (was {old.get('category')})")
    old_channels, new_channels = old.get("channels"), new.get("channels")
    if new_channels != old_channels and (
        old_channels is None or new_channels is None or set(new_channels) - set(old_channels)
    ):
        out.append("reaches other channels (channels)")
    return out


def _order_reasons(old_rules: list[dict[str, Any]], new_rules: list[dict[str, Any]]) -> list[str]:
    """An automatic rule now comes before a rule it came after (it catches that rule's alerts first), or a
    rule before an automatic rule was removed (its alerts now fall through to the automatic rule)."""
    out = []
    old_names = [r["name"] for r in old_rules]
    new_pos = {r["name"]: i for i, r in enumerate(new_rules)}
    for rule in new_rules:
        name = rule["name"]
        if not _auto(rule) or name not in old_names:
            continue
        earlier = old_names[: old_names.index(name)]
        removed = [n for n in earlier if n not in new_pos]
        overtaken = [n for n in earlier if n in new_pos and new_pos[n] > new_pos[name]]
        if overtaken:
            out.append(f"alert_rules[{name}] publishes automatically and now comes before {', '.join(overtaken)}")
        if removed:
            out.append(
                f"alert_rules[{name}] publishes automatically and the rule(s) before it were removed "
                f"({', '.join(removed)}): their alerts now reach it"
            )
    return out


def _feeds_auto(mapping: str, rules: list[dict[str, Any]]) -> list[str]:
    return [r["name"] for r in rules if _auto(r) and (not r.get("integrations") or mapping in r["integrations"])]


def loosening(before: dict[str, Any], after: dict[str, Any], live: Collection[str] = ()) -> list[str]:
    """Why the map `after` loosens safety compared with `before` (empty: it does not).

    `live`: slugs of the categories with a live incident at or above APPROVAL_SEVERITY (public, unresolved,
    with published updates): their contact and name show on the banner and the status page."""
    reasons: list[str] = []
    old_cats, new_cats = _items(before, "categories"), _items(after, "categories")
    for slug, cat in new_cats.items():
        label = f"categories[{slug}]"
        old = old_cats.get(slug)
        reasons += [
            f"{label}.escalation: {why}"
            for why in escalation_loosens((old or {}).get("escalation"), cat.get("escalation"))
        ]
        if old is None:
            continue
        old_channels, new_channels = old.get("channels") or {}, cat.get("channels") or {}
        for severity in sorted(new_channels, key=lambda s: -_rank(s)):
            added = [c for c in new_channels[severity] or [] if c not in (old_channels.get(severity) or [])]
            if added:
                reasons.append(f"{label}.channels.{severity}: adds {', '.join(added)} (more people reached)")
        old_reach, new_reach = (
            REACH.get(old.get("reach") or "either", set()),
            REACH.get(cat.get("reach") or "either", set()),
        )
        if new_reach - old_reach:
            reasons.append(f"{label}.reach: {old.get('reach')} -> {cat.get('reach')} (more people reached)")
        if slug in live:
            old_contact, new_contact = flat(old.get("contact")), flat(cat.get("contact"))
            changed = sorted(
                k for k in old_contact.keys() | new_contact.keys() if old_contact.get(k) != new_contact.get(k)
            )
            shown = [f"contact.{k}" for k in changed] + (["name"] if cat.get("name") != old.get("name") else [])
            if shown:
                reasons.append(
                    f"{label}: {', '.join(shown)} changed while an incident at or above APPROVAL_SEVERITY is live "
                    "(the banner and the status page show it at once)"
                )
    old_rules, new_rules = _items(before, "alert_rules"), _items(after, "alert_rules")
    for name, rule in new_rules.items():
        reasons += [f"alert_rules[{name}]: {why}" for why in _rule_reasons(old_rules.get(name), rule)]
    reasons += _order_reasons(list(old_rules.values()), list(new_rules.values()))
    old_maps = _items(before, "webhook_mappings")
    rules = list(new_rules.values())
    for name, mapping in _items(after, "webhook_mappings").items():
        if old_maps.get(name) != mapping and (fed := _feeds_auto(name, rules)):
            what = "added" if name not in old_maps else "changed"
            reasons.append(
                f"webhook_mappings[{name}]: {what}, and it feeds rules that publish automatically ({', '.join(fed)})"
            )
    return reasons


def automation_rules(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The alert rules of `doc` with `two_person_rule: automation_allowed`."""
    return [r for r in doc.get("alert_rules") or [] if _automation(r)]


def rule_hash(spec: dict[str, Any]) -> str:
    """A stable hash of one alert rule (its JSON)."""
    raw = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()
