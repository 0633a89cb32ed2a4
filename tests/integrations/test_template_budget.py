"""The render budget of alert-rule templates: each attack is a 422 naming the rule's field at upload, and at run
time (a rule stored before the limits) the alert is handled with the rule's fallback text and an audit entry,
and the service keeps answering. Ordinary templates render exactly as before."""

from __future__ import annotations

import copy
import json
import re

import pytest
from sqlalchemy import select, update
from tests.core.helpers import assert_error, row_counts

from . import payloads
from .conftest import BASE_MAP, bearer

AM = "/v1/inbound/alertmanager/prometheus"
GRAFANA = "/v1/inbound/grafana/grafana"
LOOPS, LONG, RANGE, PAD, NUMBER, DEEP = (
    "loops more than 100000 times",
    "builds text longer than 100000 characters",
    "asks for a range of more than 10000 items",
    "pads text to more than 100000 characters",
    "computes a number larger than 4096 bits",
    "nests macro or loop calls more than 50 deep",
)
SLOW = "took longer than 100 ms"
#: what the sandbox cannot see coming is stopped by the rendering process's own limits (time or memory)
STOPPED = f"{SLOW}|used more than 256 MB"

# each: (template, the reason it is refused: a regular expression)
ATTACKS: dict[str, tuple[str, str]] = {
    "nested range loops, no output": (
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        LOOPS,
    ),
    "nested loops over the alert list, no output": (
        "{% for a in alerts %}" * 12 + "{% endfor %}" * 12,
        f"{LOOPS}|{SLOW}",
    ),
    "loop with a filter that keeps nothing": (
        "{% for i in range(10000) %}{% for j in range(10000) if false %}{% endfor %}{% endfor %}",
        LOOPS,
    ),
    "'x' * 100000000": ("{{ 'x' * 100000000 }}", LONG),
    "'x' * 9 ** 9": ("{{ 'x' * 9 ** 9 }}", LONG),
    "list repetition": ("{{ (range(10000)|list * 100000)|length }}", "builds a list longer than 100000 items"),
    "9 ** (9 ** 9)": ("{{ 9 ** (9 ** 9) }}", NUMBER),
    "9**9**9**9**9": ("{{ 9**9**9**9**9 }}", NUMBER),
    "int product growth": (
        "{% set ns = namespace(n=3) %}{% for i in range(64) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
        NUMBER,
    ),
    "~ doubling in a loop": (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
        "{{ ns.s|length }}",
        LONG,
    ),
    "+ doubling in a loop": (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
        LONG,
    ),
    "set block of a long loop": (
        "{% set s %}{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}{% endset %}{{ s|length }}",
        LONG,
    ),
    "'{:>100000000}'.format('x')": ("{{ '{:>100000000}'.format('x') }}", PAD),
    "'{:>{}}'.format('x', 10 ** 8)": ("{{ '{:>{}}'.format('x', 10 ** 8) }}", PAD),
    "'{0}' * 10000 .format(long)": ("{{ ('{0}' * 10000).format('x' * 90000) }}", LONG),
    "'%100000000s' % 'x'": ("{{ '%100000000s' % 'x' }}", PAD),
    "'%*s' % (10 ** 8, 'x')": ("{{ '%*s' % (10 ** 8, 'x') }}", LONG),
    "'%s' * 10000 % long": ("{{ ('%s' * 10000) % (('x' * 90000,) * 10000) }}", LONG),
    "format filter width": ("{{ '%100000000s'|format('x') }}", PAD),
    "str.center": ("{{ 'x'.center(100000000) }}", PAD),
    "str.ljust": ("{{ 'x'.ljust(100000000) }}", PAD),
    "str.rjust": ("{{ 'x'.rjust(100000000, '-') }}", PAD),
    "str.zfill": ("{{ '1'.zfill(100000000) }}", PAD),
    "str.expandtabs": ("{{ 'a\\tb'.expandtabs(100000000) }}", LONG),
    "str.replace": ("{{ ('x' * 1000).replace('x', 'y' * 1000) }}", LONG),
    "str.join": ("{{ ('x' * 1000).join(range(10000)|map('string')) }}", LONG),
    "Markup method": ("{{ ('x'|safe).center(100000000) }}", PAD),
    "int.to_bytes": ("{{ (1).to_bytes(100000000, 'big') }}", LONG),
    "indent filter": ("{{ 'a\\nb'|indent(100000000) }}", LONG),
    "wordwrap filter": ("{{ 'a b c d'|wordwrap(1, wrapstring='x' * 60000) }}", LONG),
    "center filter": ("{{ 'x'|center(100000000) }}", PAD),
    "join over range(100000)": ("{{ range(100000)|join(',') }}", RANGE),
    "join of long pieces": ("{{ range(10000)|join('x' * 1000) }}", LONG),
    "replace filter": ("{{ ('x' * 1000)|replace('x', 'y' * 1000) }}", LONG),
    "list filter": ("{{ range(10 ** 9)|list|length }}", RANGE),
    "batch filter": ("{{ range(10)|batch(100000000, 'x')|list }}", "asks for batches of more than 10000 items"),
    "slice filter": ("{{ range(10)|slice(100000000)|list }}", "asks for slices of more than 10000 items"),
    "sum of lists": ("{{ ([range(10000)|list] * 1000)|sum(start=[])|length }}", "builds a list longer than"),
    "tojson indent": ("{{ alerts|tojson(100000000) }}", PAD),
    "recursive macro": ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", DEEP),
    "exponential macro": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
        f"{LOOPS}|{SLOW}",
    ),
    "recursive block": ("{% block a %}{{ self.a() }}{% endblock %}", DEEP),
    "recursive loop": ("{% for x in [[1]] recursive %}{{ loop([x, x]) }}{% endfor %}", DEEP),
    "range(10**9)": ("{% for i in range(10 ** 9) %}{% endfor %}", RANGE),
    "a list nested into itself, printed": (
        "{% set a = [labels, labels] %}" + "{% set a = [a, a] %}" * 40 + "{{ a }}",
        STOPPED,
    ),
}
#: the hard stop takes KILL_AFTER_SECONDS: run it once per backend, not in every parametrisation
SLOW_ATTACKS = {"a list nested into itself, printed"}


def _db():
    from broadcaster.db import session_scope

    return session_scope()


def _audit(action: str) -> list[dict]:
    from broadcaster.models import AuditEntry

    with _db() as s:
        return [e.detail for e in s.scalars(select(AuditEntry).where(AuditEntry.action == action))]


def _map_with(rule_patch: dict | None = None, mapping_patch: dict | None = None) -> dict:
    data = copy.deepcopy(BASE_MAP)
    data["alert_rules"][0].update(rule_patch or {})
    data["webhook_mappings"][0].update(mapping_patch or {})
    return data


def _store_rule_directly(rule: str, **fields: str) -> None:
    """Change a stored rule without the upload check (a rule stored before the limits existed)."""
    from broadcaster.models.integrations import AlertRuleRow

    with _db() as s:
        row = s.scalars(select(AlertRuleRow).where(AlertRuleRow.name == rule)).one()
        s.execute(update(AlertRuleRow).where(AlertRuleRow.id == row.id).values(spec={**row.spec, **fields}))


def _store_mapping_directly(**fields) -> None:
    from broadcaster.models.integrations import AlertRuleRow

    with _db() as s:
        row = s.scalars(select(AlertRuleRow).where(AlertRuleRow.section == "webhook_mappings")).one()
        s.execute(update(AlertRuleRow).where(AlertRuleRow.id == row.id).values(spec={**row.spec, **fields}))


def _updates() -> list[tuple]:
    from broadcaster.models import Update

    with _db() as s:
        return [(u.incident_id, u.body, u.summary, u.status) for u in s.scalars(select(Update).order_by(Update.id))]


def _incidents() -> list[tuple]:
    from broadcaster.models import Incident

    with _db() as s:
        return [(i.title, list(i.affected_services)) for i in s.scalars(select(Incident).order_by(Incident.id))]


@pytest.fixture
def senders(set_map, integration) -> dict[str, str]:
    set_map()
    return {
        "prometheus": integration("prometheus", "alertmanager")["secret"],
        "grafana": integration("grafana", "grafana")["secret"],
        "uptime": integration("uptime", "webhook")["secret"],
    }


def _still_answering(client, senders) -> None:
    """Another alert, on an ordinary rule, is handled as before (the renderer and the API keep working)."""
    resp = client.post(GRAFANA, json=payloads.grafana(), headers=bearer(senders["grafana"]))
    assert resp.status_code == 200, resp.text
    (result,) = resp.json()["results"]
    assert result["action"] == "created" and result["detail"] == ""
    body = [u[1] for u in _updates() if u[0] == result["incident_id"]]
    assert body == ["This alert was triggered for zone us-1\nThis alert was triggered for zone eu-1"]


# --- upload ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in ATTACKS if n not in SLOW_ATTACKS])
def test_each_attack_is_refused_at_upload(client, admin, set_map, name):
    template, reason = ATTACKS[name]
    set_map()
    before_map = client.get("/v1/routing-map", headers=admin).json()
    before = row_counts()
    body = assert_error(
        client.put("/v1/routing-map", headers=admin, json=_map_with({"template": template})),
        422,
        "template_over_budget",
        "alert_rules.0.template",
    )
    assert re.search(reason, body["detail"]), body["detail"]
    assert "rule 'database-down'" in body["detail"] and "over its budget" in body["detail"]
    assert row_counts() == before
    assert client.get("/v1/routing-map", headers=admin).json() == before_map


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"title": ATTACKS["nested range loops, no output"][0]}, "alert_rules.0.title"),
        ({"summary": ATTACKS["'x' * 100000000"][0]}, "alert_rules.0.summary"),
        ({"resolved_template": ATTACKS["str.center"][0]}, "alert_rules.0.resolved_template"),
        (
            {"affected_services": ["{{ labels.service }}", ATTACKS["9 ** (9 ** 9)"][0]]},
            "alert_rules.0.affected_services.1",
        ),
        ({"template": "{% for i in range(5000) %}xxxxx{% endfor %}"}, "alert_rules.0.template"),
    ],
)
def test_every_template_field_is_checked_at_upload(client, admin, patch, field):
    body = assert_error(client.put("/v1/routing-map", headers=admin, json=_map_with(patch)), 422, field=field)
    assert "over its budget" in body["detail"]


def test_output_longer_than_the_limit_on_a_sample_is_refused(client, admin):
    resp = client.put("/v1/routing-map", headers=admin, json=_map_with({"template": "{{ 'x' * 30000 }}"}))
    body = assert_error(resp, 422, field="alert_rules.0.template")
    assert "output longer than 20000 characters" in body["detail"]


def test_webhook_mapping_templates_are_checked_at_upload(client, admin):
    data = _map_with(mapping_patch={"labels": {"check": ATTACKS["nested range loops, no output"][0]}})
    body = assert_error(
        client.put("/v1/routing-map", headers=admin, json=data), 422, field="webhook_mappings.0.labels.check"
    )
    assert LOOPS in body["detail"] and "mapping 'uptime'" in body["detail"]


def test_the_hard_stop_holds_at_upload(client, admin, set_map):
    """A value nested forty times into itself: printing it is one C-level operation the sandbox cannot count;
    the rendering process's time and memory limits stop it."""
    set_map()
    before = row_counts()
    template, reason = ATTACKS["a list nested into itself, printed"]
    resp = client.put("/v1/routing-map", headers=admin, json=_map_with({"template": template}))
    body = assert_error(resp, 422, "template_over_budget", "alert_rules.0.template")
    assert re.search(reason, body["detail"]), body["detail"]
    assert row_counts() == before
    assert client.put("/v1/routing-map", headers=admin, json=_map_with()).status_code == 200


def test_the_cli_import_is_checked_too(tmp_path, client):
    from typer.testing import CliRunner

    from broadcaster.cli import app

    plan = tmp_path / "plan.yaml"
    plan.write_text(json.dumps(_map_with({"template": ATTACKS["'x' * 100000000"][0]})))
    before = row_counts()
    result = CliRunner().invoke(app, ["routing", "import", str(plan)])
    assert result.exit_code == 1 and "alert_rules.0.template" in result.output and LONG in result.output
    assert row_counts() == before


def test_a_template_nested_too_deeply_to_compile_is_a_422(client, admin):
    resp = client.put(
        "/v1/routing-map", headers=admin, json=_map_with({"template": "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}"})
    )
    assert_error(resp, 422, field="alert_rules.0.template")


def test_the_whole_map_has_a_time_limit(client, admin, monkeypatch):
    from broadcaster.alertrules import template_check

    monkeypatch.setattr(template_check, "CHECK_SECONDS", 0.0)
    body = assert_error(client.put("/v1/routing-map", headers=admin, json=_map_with()), 422, "template_over_budget")
    assert "the routing map's templates took longer than 0 s in all" in body["detail"]


# --- run time ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in ATTACKS if n not in SLOW_ATTACKS])
def test_each_attack_falls_back_at_run_time(client, senders, name):
    template, reason = ATTACKS[name]
    _store_rule_directly("database-down", template=template)
    three = payloads.alertmanager(instances=("db-1:9100", "db-2:9100", "db-3:9100"))
    resp = client.post(AM, json=three, headers=bearer(senders["prometheus"]))
    assert resp.status_code == 200, resp.text
    (result,) = resp.json()["results"]
    assert result["action"] == "created" and result["update_state"] == "published"
    assert re.search(f"template over budget \\(template: ({reason})", result["detail"]), result["detail"]
    # the rule's fallback text: the alert's own summary; the rule's other templates rendered as usual
    assert _incidents() == [("billing-db is down", ["billing-db"])]
    assert _updates()[0][1:3] == ("DatabaseDown: billing-db is unreachable", "billing-db down")
    (entry,) = _audit("alert.template_over_budget")
    assert entry["field"] == "template" and re.search(reason, entry["reason"])
    assert entry["fallback"] == "DatabaseDown: billing-db is unreachable"
    _still_answering(client, senders)


def test_the_hard_stop_holds_at_run_time(client, senders):
    template, reason = ATTACKS["a list nested into itself, printed"]
    _store_rule_directly("database-down", template=template)
    resp = client.post(AM, json=payloads.alertmanager(), headers=bearer(senders["prometheus"]))
    assert resp.status_code == 200, resp.text
    assert re.search(reason, resp.json()["results"][0]["detail"])
    assert _updates()[0][1] == "DatabaseDown: billing-db is unreachable"
    _still_answering(client, senders)


def test_every_field_falls_back_to_the_alerts_own_words(client, senders):
    attack = ATTACKS["nested range loops, no output"][0]
    _store_rule_directly(
        "database-down",
        title=attack,
        template=attack,
        summary=attack,
        resolved_template=attack,
        affected_services=[attack, "{{ labels.job }}"],
        min_update_minutes=0,
    )
    token = bearer(senders["prometheus"])
    assert client.post(AM, json=payloads.alertmanager(), headers=token).status_code == 200
    assert _incidents() == [("DatabaseDown", ["node"])]
    assert _updates()[0][1:3] == ("DatabaseDown: billing-db is unreachable", "DatabaseDown: billing-db is unreachable")
    resolved = client.post(AM, json=payloads.alertmanager(status="resolved"), headers=token).json()["results"][0]
    assert resolved["action"] == "resolved"
    assert _updates()[-1][1] == "Resolved: DatabaseDown"
    fields = [e["field"] for e in _audit("alert.template_over_budget")]
    assert fields == ["title", "affected_services", "template", "summary", "resolved_template"]


def test_the_runner_beside_the_worker_falls_back_too(client, senders):
    from datetime import timedelta

    from broadcaster.integrations.runner import AlertFlushRunner
    from broadcaster.models import utcnow
    from broadcaster.models.integrations import AlertGroup

    token = bearer(senders["prometheus"])
    client.post(AM, json=payloads.alertmanager(), headers=token)
    _store_rule_directly("database-down", resolved_template=ATTACKS["'x' * 100000000"][0])
    resolved = client.post(AM, json=payloads.alertmanager(status="resolved"), headers=token).json()
    assert resolved["results"][0]["action"] == "deferred"
    with _db() as s:
        s.scalars(select(AlertGroup)).one().due_at = utcnow() - timedelta(seconds=1)
    assert AlertFlushRunner().run_once() == 1
    assert _updates()[-1][1] == "Resolved: DatabaseDown"
    (entry,) = _audit("alert.template_over_budget")
    assert entry["field"] == "resolved_template" and LONG in entry["reason"]


def test_long_output_at_run_time_is_cut_as_before(client, senders):
    """A group of many alerts can legitimately render more than the limit: rendering stops there and the text is
    cut, as it always was (only the upload check, on small samples, refuses it)."""
    _store_rule_directly("database-down", template="{% for i in range(10000) %}{{ '%05d ' % i }}{% endfor %}")
    resp = client.post(AM, json=payloads.alertmanager(), headers=bearer(senders["prometheus"]))
    assert resp.json()["results"][0]["detail"] == ""
    body = _updates()[0][1]
    assert len(body) == 10_000 and body.startswith("00000 00001 ") and body.endswith("\u2026")
    assert _audit("alert.template_over_budget") == []


def test_one_notifications_templates_share_a_time_limit(client, senders, monkeypatch):
    from broadcaster.integrations import service

    monkeypatch.setattr(service, "RENDER_SECONDS", 0.0)
    resp = client.post(AM, json=payloads.alertmanager(), headers=bearer(senders["prometheus"]))
    assert "this notification's templates took longer than 0 s in all" in resp.json()["results"][0]["detail"]
    assert _incidents() == [("DatabaseDown", [])]


def test_a_webhook_mapping_over_budget_is_a_422_naming_its_field(client, senders):
    _store_mapping_directly(labels={"check": ATTACKS["'x' * 100000000"][0]})
    url = "/v1/inbound/webhook/uptime"
    body = {"monitor": {"id": 1, "name": "API"}, "state": "down", "message": "API is down"}
    before = row_counts()
    resp = assert_error(client.post(url, json=body, headers=bearer(senders["uptime"])), 422, field="labels.check")
    assert LONG in resp["detail"]
    assert row_counts() == before


# --- ordinary templates ------------------------------------------------------------------------------------------

ORDINARY = [
    "{{ labels.alertname }}",
    "{{ annotations.summary or annotations.description or labels.alertname }}",
    "{{ annotations.summary }} ({{ alerts | length }} instance{{ 's' if alerts | length != 1 }})",
    "{% for a in alerts %}{{ a.annotations.summary }}\n{% endfor %}",
    "{% for a in firing %}{{ loop.index }}/{{ loop.length }} {{ a.labels.instance|default('?') }}{% endfor %}",
    "[{{ labels.severity|upper }}] {{ labels.service ~ ' on ' ~ labels.instance }}",
    "{{ '%s is %s' % (labels.service, status) }} {{ '{}: {:>8}'.format(labels.job, status) }}",
    "{{ alerts|map(attribute='labels.instance')|join(', ') }} "
    "{{ alerts|selectattr('status', 'eq', 'firing')|list|length }}",
    "{{ labels.service|center(30) }}|{{ annotations.summary|wordwrap(20) }}|{{ 'a\\nb'|indent(2, true) }}",
    "{{ annotations.summary|replace('unreachable', 'down')|truncate(20) }} {{ labels|dictsort|first }}",
    "{{ range(3)|sum }} {{ [1, 2, 3]|batch(2)|list }} {{ [1, 2, 3]|slice(2)|list }} {{ 2 ** 10 }} {{ 7 // 2 }}",
    "{% macro line(a) %}- {{ a.labels.instance }}{% endmacro %}{% for a in alerts %}{{ line(a) }}\n{% endfor %}",
    "{% set n = namespace(c=0) %}{% for a in alerts if a.status == 'firing' %}{% set n.c = n.c + 1 %}{% endfor %}"
    "{{ n.c }}",
    "{% set text %}{{ status|title }}: {{ labels.alertname }}{% endset %}{{ text }}",
    "{{ alerts[0].labels|tojson }} {{ 'x'.ljust(3, '.') }}{{ '7'.zfill(3) }} {{ external_url }}",
    "{{ missing }}|{{ labels.nope|default('none') }}|{{ 3 * 'ab' }}|{{ [0] * 3 }}",
]


@pytest.mark.parametrize("template", ORDINARY)
def test_ordinary_templates_render_exactly_as_before(template):
    """Jinja2's own sandbox (what rendered alert templates before the budget) and the budgeted renderer give the
    same text on every sample notification."""
    from jinja2 import Undefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from broadcaster.alertrules.template_check import sample_contexts
    from broadcaster.alertrules.templating import render_many

    before = ImmutableSandboxedEnvironment(autoescape=False, undefined=Undefined, trim_blocks=True, lstrip_blocks=True)
    for _, context in sample_contexts():
        expected = before.from_string(template).render(**context).strip()[:20_000]
        assert render_many([template], context) == [expected]


def test_without_a_renderer_alerts_still_go_out_with_the_fallback_text(client, senders, admin, monkeypatch):
    """Fail closed: a renderer that cannot start renders nothing (no template runs in the API process); the
    alert goes out in its own words, and a map cannot be uploaded unchecked."""
    import sys

    from broadcaster.alertrules import sandbox_process

    monkeypatch.setattr(sandbox_process, "_POOL", sandbox_process.RenderPool())
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    resp = client.post(AM, json=payloads.alertmanager(), headers=bearer(senders["prometheus"]))
    assert resp.status_code == 200, resp.text
    assert "the template renderer could not start" in resp.json()["results"][0]["detail"]
    assert _incidents() == [("DatabaseDown", [])]
    assert _updates()[0][1:3] == ("DatabaseDown: billing-db is unreachable", "DatabaseDown: billing-db is unreachable")
    body = assert_error(client.put("/v1/routing-map", headers=admin, json=_map_with()), 422, "template_over_budget")
    assert "could not start" in body["detail"]
