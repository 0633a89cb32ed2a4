"""The console's services page: states for everyone with the editor role, and the state form's API call."""

from __future__ import annotations

import re

from tests.console.conftest import make_user, signed_in  # noqa: F401 (fixtures)


def test_services_page(client, admin, signed_in) -> None:  # noqa: F811
    editor = signed_in("editor")
    empty = editor.get("/console/services")
    assert empty.status_code == 200 and "No services defined yet" in empty.text
    for body in ({"slug": "water", "name": "Water supply", "group": "Utilities"}, {"slug": "power", "name": "Power"}):
        assert client.post("/v1/services", headers=admin, json=body).status_code == 201
    client.post("/v1/services/water/state", headers=admin, json={"state": "partial_outage", "reason": "burst"})
    page = editor.get("/console/services")
    assert page.status_code == 200
    rows = re.findall(
        r'<tr class="service" data-slug="([a-z-]+)">.*?<td class="service-state"[^>]*>([^<]+)</td>', page.text, re.S
    )
    assert rows == [("power", "Operational"), ("water", "Partial outage")]
    assert page.text.count('<form class="state-form">') == 2
    assert '<option value="partial_outage" selected>' in page.text
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
    assert "Operational" in editor.get("/console/services").text.split('data-slug="water"', 1)[1].split("</tr>", 1)[0]
    # an approver has no services page (and no write scope)
    approver = signed_in("approver")
    assert approver.get("/console/services").status_code == 403
    assert editor.get("/console/static/services.js").status_code == 200
