"""Console pages rendered by the server: sign-in required, navigation and pages by role, view data, static files."""

from __future__ import annotations

import re

import pytest

PAGES = [
    "/console/",
    "/console/compose",
    "/console/approvals",
    "/console/subscribers",
    "/console/services",
    "/console/maintenance",
    "/console/areas",
    "/console/channels",
    "/console/routing",
    "/console/audit",
]
#: editors and approvers both open Maintenance (approvers schedule it: the API needs the publish scope)
EDITOR_PAGES = {"/console/services", "/console/maintenance", "/console/areas"}


def nav_links(html: str) -> list[str]:
    nav = html.split('<nav aria-label="Console">', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'href="([^"]+)"', nav)


def test_pages_need_a_session(client) -> None:
    for path in PAGES:
        resp = client.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
        assert resp.status_code == 303, path
        assert resp.headers["location"].startswith("/console/login?next=")


@pytest.mark.parametrize(
    ("roles", "allowed"),
    [
        (
            ("editor",),
            {"/console/", "/console/compose", "/console/subscribers", "/console/channels"} | EDITOR_PAGES,
        ),
        # approvers open the routing map to review proposed versions (only admins edit it)
        (
            ("approver",),
            {"/console/", "/console/approvals", "/console/channels", "/console/routing", "/console/maintenance"},
        ),
        (("admin",), set(PAGES)),
        (
            ("editor", "approver"),
            {
                "/console/",
                "/console/compose",
                "/console/approvals",
                "/console/subscribers",
                "/console/channels",
                "/console/routing",
            }
            | EDITOR_PAGES,
        ),
    ],
)
def test_navigation_and_pages_follow_roles(signed_in, emergency_category, roles, allowed) -> None:
    client = signed_in(*roles)
    home = client.get("/console/")
    assert home.status_code == 200
    assert set(nav_links(home.text)) == allowed
    for path in PAGES:
        resp = client.get(path)
        assert resp.status_code == (200 if path in allowed else 403), (path, resp.status_code)
        assert "script-src" not in resp.headers["content-security-policy"]  # default-src 'self' applies
        assert "<script>" not in resp.text  # no inline scripts (only JSON data blocks)


def test_static_files_are_served_and_nothing_else(client) -> None:
    css = client.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = client.get("/console/static/compose.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    for bad in ("../router.py", "..%2Frouter.py", "missing.js", "router.py"):
        assert client.get(f"/console/static/{bad}").status_code == 404


def test_incident_page_offers_correct_and_retract_and_compose_prefills(signed_in, client, admin, emergency_category):
    inc = client.post(
        "/v1/incidents",
        headers=admin,
        json={
            "title": "Flood </script><b>warning</b>",
            "category": "emergency",
            "severity": "minor",
            "update": {"body": "River levels rising. Move to higher ground.", "summary": "Rising river"},
        },
    ).json()
    update_id = inc["updates"][0]["id"]
    assert client.post(f"/v1/updates/{update_id}/publish", headers=admin).status_code == 200
    editor = signed_in("editor")
    page = editor.get(f"/console/incidents/{inc['id']}")
    assert page.status_code == 200
    assert f'href="/console/compose?corrects={update_id}&amp;kind=correction"' in page.text
    assert f'href="/console/compose?corrects={update_id}&amp;kind=cancel"' in page.text
    assert "<b>warning</b>" not in page.text  # escaped
    assert f'href="/status/incidents/{inc["id"]}"' in page.text
    form = editor.get(f"/console/compose?corrects={update_id}&kind=correction")
    assert form.status_code == 200
    assert "River levels rising. Move to higher ground.</textarea>" in form.text
    data = form.text.split('id="page-data">', 1)[1].split("</script>", 1)[0]
    assert "</" not in data  # JSON data cannot close its element
    assert '"kind": "correction"' in data and f'"corrects": {update_id}' in data
    retract = editor.get(f"/console/compose?corrects={update_id}&kind=cancel")
    assert '"kind": "cancel"' in retract.text
    assert editor.get("/console/compose?corrects=999999").status_code == 404
    approver = signed_in("approver")
    assert f"compose?corrects={update_id}" not in approver.get(f"/console/incidents/{inc['id']}").text


def test_channels_page_shows_last_check(signed_in) -> None:
    admin = signed_in("admin")
    page = admin.get("/console/channels")
    assert page.status_code == 200
    assert "Never checked." in page.text
    assert "Send a check" in page.text
    editor = signed_in("editor")
    assert "Send a check" not in editor.get("/console/channels").text


def test_incident_page_shows_a_pending_change_with_its_diff(signed_in, client, admin, auth, emergency_category) -> None:
    """A change to a live critical incident waits for a second person (issue 19): the incident page shows the diff,
    Approve and Reject to an approver who did not ask, and who asked to everyone else; the approvals page links it."""
    from tests.users.conftest import session_csrf

    inc = client.post(
        "/v1/incidents",
        headers=admin,
        json={"title": "Gas leak", "category": "emergency", "severity": "critical", "update": {"body": "Leave."}},
    ).json()
    asked = client.post(f"/v1/updates/{inc['updates'][0]['id']}/publish", headers=admin)
    approved = client.post(
        f"/v1/updates/{inc['updates'][0]['id']}/approve", headers={**auth("publish"), "If-Match": asked.headers["ETag"]}
    )
    assert approved.status_code == 200, approved.text
    requester = signed_in("editor")
    change = requester.patch(
        f"/v1/incidents/{inc['id']}",
        headers={"X-CSRF-Token": session_csrf(requester)},
        json={"title": "Gas leak <b>over</b>", "sites": ["www"]},
    )
    assert change.status_code == 202, change.text
    cid, etag = change.json()["id"], change.json()["etag"]

    approver = signed_in("approver")
    page = approver.get(f"/console/incidents/{inc['id']}").text
    assert f'id="change-{cid}"' in page and f'data-etag="{etag.replace(chr(34), "&#34;")}"' in page
    assert '<script src="/console/static/changes.js" defer></script>' in page
    assert "<del>Gas leak</del>" in page and "<ins>Gas leak &lt;b&gt;over&lt;/b&gt;</ins>" in page
    assert "<del>(every site)</del>" in page and "<ins>www</ins>" in page
    assert "Approve change" in page and "Reject change" in page
    own = requester.get(f"/console/incidents/{inc['id']}").text
    assert "another approver must approve it" in own and "Approve change" not in own
    other_editor = signed_in("editor").get(f"/console/incidents/{inc['id']}").text
    assert "Waiting for an approver" in other_editor and "Approve change" not in other_editor
    queue = approver.get("/console/approvals").text
    assert f'href="/console/incidents/{inc["id"]}#change-{cid}"' in queue and "Nothing is waiting" not in queue
    assert approver.get("/console/static/changes.js").status_code == 200

    rejected = approver.post(
        f"/v1/incidents/{inc['id']}/change-requests/{cid}/reject",
        headers={"X-CSRF-Token": session_csrf(approver)},
        json={"comment": "Not confirmed by the fire service."},
    )
    assert rejected.status_code == 200, rejected.text
    after = requester.get(f"/console/incidents/{inc['id']}").text
    assert "was rejected by" in after and "“Not confirmed by the fire service.”" in after
    assert "changes.js" not in after and "<h1>Gas leak</h1>" in after
