"""The console's services page: states and the 90-day bar for everyone with the editor role, the add, edit and
state forms, and the state form's API call."""

from __future__ import annotations

import re

from tests.console.conftest import make_user, signed_in  # noqa: F401 (fixtures)


def test_services_page(client, admin, signed_in) -> None:  # noqa: F811
    editor = signed_in("editor")
    empty = editor.get("/console/services")
    assert empty.status_code == 200 and "No services yet." in empty.text
    assert "POST /v1/services" not in empty.text  # plain language, no API jargon
    assert 'id="create-service"' in empty.text
    for body in ({"slug": "water", "name": "Water supply", "group": "Utilities"}, {"slug": "power", "name": "Power"}):
        assert client.post("/v1/services", headers=admin, json=body).status_code == 201
    client.post("/v1/services/water/state", headers=admin, json={"state": "partial_outage", "reason": "burst"})
    page = editor.get("/console/services")
    assert page.status_code == 200
    rows = re.findall(
        r'<li class="card service" data-slug="([a-z-]+)".*?<span class="badge svc-state[^>]*>([^<]+)</span>',
        page.text,
        re.S,
    )
    assert rows == [("power", "Operational"), ("water", "Partial outage")]
    assert page.text.count('<form class="state-form pg-form">') == 2
    assert page.text.count('<form class="edit-form pg-form">') == 2
    assert '<option value="partial_outage" selected>' in page.text
    # the status page's 90-day bar: today is the worst state of the day
    water = page.text.split('data-slug="water"', 1)[1].split("</li>\n", 1)[0]
    assert water.count('<li class="st-') == 90 and '<li class="st-partial_outage"' in water
    assert '<script src="/console/static/services.js" defer></script>' in page.text
    # what services.js sends: the session's CSRF token, JSON body with state and reason
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert csrf is not None
    resp = editor.post(
        "/v1/services/water/state",
        headers={"X-CSRF-Token": csrf.group(1)},
        json={"state": "operational", "reason": "Repaired"},
    )
    assert resp.status_code == 200, resp.text
    water = editor.get("/console/services").text.split('data-slug="water"', 1)[1]
    assert "Operational" in water.split("</h2>", 1)[1][:200]
    # an approver has no services page (and no write scope)
    approver = signed_in("approver")
    assert approver.get("/console/services").status_code == 403
    assert editor.get("/console/static/services.js").status_code == 200
