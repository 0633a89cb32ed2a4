"""The routing-map diff and the loosening rule (pure functions, routing/mapdiff.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from broadcaster.routing.mapdiff import (
    FieldChange,
    ItemChange,
    diff_maps,
    escalation_loosens,
    loosening,
    render,
    summary,
)

RULE: dict[str, Any] = {
    "name": "disk-full",
    "integrations": ["prometheus"],
    "match": {"alertname": "DiskFull", "team": "ops"},
    "match_re": {},
    "category": "outage",
    "severity": "major",
    "severity_label": None,
    "severity_map": {},
    "title": "{{ labels.alertname }}",
    "template": "Disk full",
    "publish": "auto",
    "two_person_rule": "required",
    "channels": None,
}
MAP: dict[str, Any] = {
    "version": 1,
    "categories": [
        {
            "slug": "outage",
            "name": "Outage",
            "description": "",
            "contact": {"phone": "+15551234567", "email": None},
            "channels": {"critical": ["sms", "email"], "major": ["email"]},
            "position": 0,
            "reach": "either",
            "escalation": None,
        },
        {
            "slug": "billing",
            "name": "Billing",
            "description": "",
            "contact": {},
            "channels": {},
            "position": 1,
            "reach": "category",
            "escalation": None,
        },
    ],
    "alert_rules": [
        {**RULE, "name": "draft-first", "publish": "draft", "match": {"alertname": "DiskFull"}},
        RULE,
    ],
    "webhook_mappings": [],
}
STEPS = {
    "steps": [{"after_minutes": 10, "channel": "voice"}],
    "threshold": {"percent": 50, "after_minutes": 30, "group": {"emails": ["ops@example.org"], "phones": []}},
    "respect_quiet_hours": True,
}


def changed(**edits: Any) -> dict[str, Any]:
    """MAP with edits: `cat_outage={...}` / `rule_disk_full={...}` merge into that item; `alert_rules=[...]`."""
    out = copy.deepcopy(MAP)
    for key, value in edits.items():
        if key.startswith("cat_"):
            [item] = [c for c in out["categories"] if c["slug"] == key[4:]]
            item.update(value)
        elif key.startswith("rule_"):
            [item] = [r for r in out["alert_rules"] if r["name"] == key[5:].replace("_", "-")]
            item.update(value)
        else:
            out[key] = value
    return out


# --- the diff ----------------------------------------------------------------------------------------------------


def test_no_change_is_an_empty_diff_even_with_unset_values_spelled_out():
    same = copy.deepcopy(MAP)
    same["categories"][0]["contact"] = {"phone": "+15551234567"}  # email: null and absent are the same
    same["categories"].reverse()  # categories are matched by slug, not position in the list
    assert diff_maps(MAP, same) == []
    assert render([]) == "(no changes)" and summary([]) == "no changes"


def test_added_removed_changed_items_and_fields():
    after = changed(cat_outage={"contact": {"phone": "+15550000000"}, "channels": {"critical": ["sms"]}})
    after["categories"] = [c for c in after["categories"] if c["slug"] != "billing"]
    after["categories"].append({"slug": "water", "name": "Water", "contact": {}, "channels": {}})
    changes = diff_maps(MAP, after)
    assert changes == [
        ItemChange(
            "categories",
            "outage",
            "changed",
            (
                FieldChange("channels.critical", ["sms", "email"], ["sms"]),
                FieldChange("channels.major", ["email"], None),
                FieldChange("contact.phone", "+15551234567", "+15550000000"),
            ),
        ),
        ItemChange(
            "categories", "water", "added", (FieldChange("slug", None, "water"), FieldChange("name", None, "Water"))
        ),
        ItemChange("categories", "billing", "removed"),
    ]
    text = render(changes)
    assert text.splitlines() == [
        "~ categories[outage] changed",
        '    channels.critical: ["sms", "email"] -> ["sms"]',
        '    channels.major: ["email"] -> (unset)',
        '    contact.phone: "+15551234567" -> "+15550000000"',
        "+ categories[water] added",
        '    slug: "water"',
        '    name: "Water"',
        "- categories[billing] removed",
    ]
    assert summary(changes) == "categories: 1 changed, 1 added, 1 removed"


def test_nested_lists_of_objects_show_each_field():
    after = changed(cat_outage={"escalation": STEPS})
    [item] = diff_maps(MAP, after)
    assert FieldChange("escalation.steps.0.channel", None, "voice") in item.fields
    assert FieldChange("escalation.threshold.group.emails", None, ["ops@example.org"]) in item.fields


def test_rule_order_is_part_of_the_diff():
    after = changed(alert_rules=list(reversed(MAP["alert_rules"])))
    changes = diff_maps(MAP, after)
    assert changes == [
        ItemChange(
            "alert_rules",
            "(order)",
            "changed",
            (FieldChange("order", ["draft-first", "disk-full"], ["disk-full", "draft-first"]),),
        )
    ]
    assert summary(changes) == "alert_rules: order changed"


# --- loosening ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "reason"),
    [
        (
            changed(rule_disk_full={"two_person_rule": "automation_allowed"}),
            "alert_rules[disk-full]: two_person_rule: automation_allowed (its alerts publish alone, critical ones "
            "included)",
        ),
        (
            changed(rule_draft_first={"publish": "auto"}),
            "alert_rules[draft-first]: now publishes automatically (publish: auto)",
        ),
        (
            changed(alert_rules=[*MAP["alert_rules"], {**RULE, "name": "new-one"}]),
            "alert_rules[new-one]: a new rule that publishes automatically (publish: auto)",
        ),
        (
            changed(rule_disk_full={"match": {"alertname": "DiskFull"}}),
            "alert_rules[disk-full]: matches more alerts: match on team dropped or changed",
        ),
        (
            changed(rule_disk_full={"integrations": []}),
            "alert_rules[disk-full]: matches more alerts: integrations widened (all integrations)",
        ),
        (changed(rule_disk_full={"severity": "critical"}), "alert_rules[disk-full]: severity raised to critical"),
        (
            changed(rule_disk_full={"category": "billing"}),
            "alert_rules[disk-full]: publishes to category billing (was outage)",
        ),
        (
            changed(rule_disk_full={"channels": ["sms"]}),
            "alert_rules[disk-full]: reaches other channels (channels)",
        ),
        (
            changed(alert_rules=[MAP["alert_rules"][1]]),
            "alert_rules[disk-full] publishes automatically and the rule(s) before it were removed (draft-first): "
            "their alerts now reach it",
        ),
        (
            changed(alert_rules=list(reversed(MAP["alert_rules"]))),
            "alert_rules[disk-full] publishes automatically and now comes before draft-first",
        ),
        (
            changed(webhook_mappings=[{"name": "prometheus", "key": "{{ body.id }}", "labels": {"a": "b"}}]),
            "webhook_mappings[prometheus]: added, and it feeds rules that publish automatically (disk-full)",
        ),
        (
            changed(cat_outage={"channels": {"critical": ["sms", "email", "voice"], "major": ["email"]}}),
            "categories[outage].channels.critical: adds voice (more people reached)",
        ),
        (
            changed(cat_billing={"reach": "either"}),
            "categories[billing].reach: category -> either (more people reached)",
        ),
        (changed(cat_outage={"escalation": STEPS}), "categories[outage].escalation: escalation rules added"),
    ],
)
def test_what_loosens(after, reason):
    assert reason in loosening(MAP, after)


def test_a_rule_that_allows_automation_loosens_on_any_change():
    allowed = changed(rule_disk_full={"two_person_rule": "automation_allowed"})
    worded = copy.deepcopy(allowed)
    worded["alert_rules"][1]["template"] = "EVACUATE the area immediately"
    assert loosening(allowed, worded) == [
        "alert_rules[disk-full]: changed (template) while it publishes alone (automation_allowed)"
    ]


def test_contacts_and_name_loosen_only_with_a_live_incident_at_the_approval_level():
    after = changed(cat_outage={"contact": {"phone": "+15559990000"}, "name": "Call us"})
    assert loosening(MAP, after, live=()) == []
    assert loosening(MAP, after, live={"billing"}) == []
    assert loosening(MAP, after, live={"outage"}) == [
        "categories[outage]: contact.phone, name changed while an incident at or above APPROVAL_SEVERITY is live "
        "(the banner and the status page show it at once)"
    ]


@pytest.mark.parametrize(
    "after",
    [
        changed(rule_disk_full={"publish": "draft"}),
        changed(rule_disk_full={"match": {"alertname": "DiskFull", "team": "ops", "env": "prod"}}),
        changed(rule_disk_full={"severity": "minor", "template": "Disk is full"}),
        changed(rule_draft_first={"match": {}, "severity": "critical", "template": "anything"}),
        changed(alert_rules=[MAP["alert_rules"][0]]),
        changed(cat_outage={"channels": {"critical": ["sms"]}, "name": "Outages", "contact": {}}),
        changed(cat_outage={"reach": "services"}),
        changed(
            categories=[MAP["categories"][0], {"slug": "water", "name": "Water", "channels": {"critical": ["sms"]}}]
        ),
        changed(categories=[MAP["categories"][0]], alert_rules=[]),
    ],
)
def test_what_does_not_loosen(after):
    assert loosening(MAP, after) == []


def test_a_new_category_with_escalation_loosens():
    water = {"slug": "water", "name": "Water", "escalation": STEPS}
    assert loosening(MAP, changed(categories=[*MAP["categories"], water])) == [
        "categories[water].escalation: escalation rules added",
        "categories[water].escalation: new summary recipients: ops@example.org",
    ]


@pytest.mark.parametrize(
    ("after", "reasons"),
    [
        (None, []),
        (STEPS, []),
        ({**STEPS, "steps": []}, []),
        ({**STEPS, "threshold": None}, []),
        ({**STEPS, "steps": [{"after_minutes": 20, "channel": "voice"}]}, []),
        ({**STEPS, "steps": [{"after_seconds": 5, "channel": "voice"}]}, ["step 1 comes sooner (5 s, was 10 min)"]),
        ({**STEPS, "steps": [{"after_minutes": 10, "channel": "sms"}]}, ["step 1 sends on sms (was voice)"]),
        (
            {**STEPS, "steps": [*STEPS["steps"], {"after_minutes": 5, "channel": "secondary"}]},
            ["step 2 added (secondary after 5 min)"],
        ),
        (
            {**STEPS, "threshold": {**STEPS["threshold"], "percent": 90, "after_minutes": 1}},
            ["the threshold summary fires more often (below 90%)", "the threshold summary comes sooner (60 s)"],
        ),
        (
            {
                **STEPS,
                "threshold": {
                    **STEPS["threshold"],
                    "group": {
                        "emails": ["OPS@example.org", "x@evil.example"],
                        "phones": ["+15550001111"],
                        "tag": "all",
                    },
                },
            },
            [
                "new summary recipients: x@evil.example",
                "new summary phone numbers: +15550001111",
                "the summary goes to subscribers tagged all",
            ],
        ),
        ({**STEPS, "respect_quiet_hours": False}, ["quiet hours no longer respected"]),
    ],
)
def test_escalation_widening(after, reasons):
    assert escalation_loosens(STEPS, after) == reasons


def test_escalation_threshold_added_to_steps():
    assert escalation_loosens({"steps": STEPS["steps"]}, STEPS) == [
        "a threshold summary added",
        "new summary recipients: ops@example.org",
    ]
