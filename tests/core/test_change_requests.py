"""Live incidents change only through a second person (issue 19, reproduction 4, first half; door `incident.edit`).

`PATCH /v1/incidents/{id}` of a live incident (public, unresolved, with a published update) at or above
APPROVAL_SEVERITY used to change the banner, status page, feeds and CAP at once. Now, for every public field and
whoever asks (an editor's, approver's or admin's key, a console session, a person with both), it answers 202 with
a pending change request and every public surface stays byte for byte the same; a second person approves exactly
the diff they saw and the surfaces change then. Below the level (before and after the edit) it applies at once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import select

from .helpers import assert_error
from .people import changed, surfaces

#: every public field, and a value an attacker would set (the fields the reproduction names, and the affected
#: services the status page and Statuspage-style JSON show)
FIELD_CHANGES: list[tuple[str, Any]] = [
    ("title", "EVACUATE the area immediately"),
    ("severity", "minor"),
    ("status", "resolved"),
    ("category", "technical-issue"),
    ("public", False),
    ("sites", ["elsewhere"]),
    ("affected_services", ["gas"]),
]


ATOM = "{http://www.w3.org/2005/Atom}"


def banner_titles(client) -> list[str]:
    from broadcaster.public.cache import get_cache

    get_cache().invalidate()
    return [b["title"] for b in client.get("/v1/banner").json()["banners"]]


def pending_update(client, setup_keys, iid: int) -> tuple[int, str]:
    """A second update of the incident waiting for approval: (id, its content ETag)."""
    admin, _ = setup_keys
    upd = client.post(f"/v1/incidents/{iid}/updates", headers=admin, json={"body": "Water is back on 5th Ave."})
    assert upd.status_code == 201, upd.text
    asked = client.post(f"/v1/updates/{upd.json()['id']}/publish", headers=admin)
    assert asked.status_code == 202, asked.text
    return upd.json()["id"], asked.headers["ETag"]


def audit(action: str) -> list[dict[str, Any]]:
    from broadcaster.db import session_scope
    from broadcaster.models import AuditEntry

    with session_scope() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        return [{"actor": r.actor, "before": r.before, "after": r.after, **r.detail} for r in rows]


def services(client, setup_keys) -> None:
    """The services the affected-services change names (so they are known slugs)."""
    admin, _ = setup_keys
    for slug in ("water", "gas"):
        resp = client.post("/v1/services", headers=admin, json={"slug": slug, "name": slug.title()})
        assert resp.status_code == 201, resp.text


# --- the reproduction: one person, each public field, each role ------------------------------------------------

ROLES = [
    "editor-key",
    "approver-key",
    "admin-key",
    "console-editor",
    "console-editor+approver",
    "console-admin",
    "both",
]


@pytest.mark.parametrize("role", ROLES)
def test_one_person_cannot_change_a_live_critical_incident(client, people, live, setup_keys, role):
    services(client, setup_keys)
    iid, uid = live()
    waiting, waiting_etag = pending_update(client, setup_keys, iid)
    person = people(role)
    before = surfaces(client, iid, uid)
    assert surfaces(client, iid, uid) == before  # the surfaces render the same bytes twice
    incident = client.get(f"/v1/incidents/{iid}", headers=setup_keys[0]).json()
    doers = [person, person.extra["key"]] if "key" in person.extra else [person]
    for doer in doers:
        for name, value in FIELD_CHANGES:
            resp = doer.patch(iid, {name: value})
            assert changed(before, surfaces(client, iid, uid)) == [], (role, name)
            assert resp.status_code == 202, (role, name, resp.text)
            body = resp.json()
            assert body["state"] == "pending" and body["changes"] == {name: value}, body
            assert body["requested_by"] == doer.actor and resp.headers["ETag"] == body["etag"]
            assert [(d["field"], d["after"]) for d in body["diff"]] == [(name, value)]
        # every field at once, as the attack did it
        resp = doer.patch(iid, dict(FIELD_CHANGES))
        assert resp.status_code == 202, resp.text
        assert changed(before, surfaces(client, iid, uid)) == []
    now = client.get(f"/v1/incidents/{iid}", headers=setup_keys[0]).json()
    assert {k: v for k, v in now.items() if k != "change_requests"} == {
        k: v for k, v in incident.items() if k != "change_requests"
    }
    assert [c["changes"] for c in now["change_requests"]] == [dict(FIELD_CHANGES)]  # the newest supersedes
    # a request that did not apply cancels nothing
    still = client.get(f"/v1/updates/{waiting}", headers=setup_keys[0])
    assert still.json()["state"] == "pending_approval" and still.headers["ETag"] == waiting_etag
    assert audit("update.approval_cancelled") == []
    assert audit("incident.update") == []
    decisions = [d for d in audit("gate.decision") if d["door"] == "incident.edit"]
    assert decisions and {d["decision"] for d in decisions} == {"second_person"}


def test_a_key_without_write_cannot_edit_at_all(client, people, live, setup_keys, unchanged):
    iid, uid = live()
    before = surfaces(client, iid, uid)
    person = people("publish-only-key")
    with unchanged():
        assert_error(person.patch(iid, {"title": "EVACUATE"}), 403, "forbidden")
    assert changed(before, surfaces(client, iid, uid)) == []


def test_raising_a_live_minor_incident_to_critical_and_retitling_it_needs_a_second_person(
    client, people, live, setup_keys
):
    iid, uid = live(severity="minor")
    before = surfaces(client, iid, uid)
    resp = people("editor-key").patch(iid, {"severity": "critical", "title": "EVACUATE the area immediately"})
    assert resp.status_code == 202, resp.text
    assert "raising the severity to critical" in resp.json()["reason"]
    assert changed(before, surfaces(client, iid, uid)) == []
    assert banner_titles(client) == ["Water main break"]


def test_an_edit_that_makes_a_critical_incident_live_counts(client, people, live, setup_keys):
    """Making a critical incident public again, or unresolved again, changes what the public sees: a second
    person. While nothing of it is public (hidden, resolved), an edit applies at once."""
    from broadcaster.db import session_scope
    from broadcaster.models import Incident

    editor = people("editor-key")
    hidden, _ = live(public=False)
    assert banner_titles(client) == []
    assert editor.patch(hidden, {"title": "Hidden for now"}).status_code == 200
    assert editor.patch(hidden, {"public": True}).status_code == 202
    assert banner_titles(client) == []
    resolved, _ = live(title="Resolved one")
    with session_scope() as session:
        row = session.get(Incident, resolved)
        assert row is not None
        row.set_status("resolved")
    assert editor.patch(resolved, {"title": "Resolved: water main"}).status_code == 200
    assert editor.patch(resolved, {"status": "investigating"}).status_code == 202
    assert banner_titles(client) == []


def test_a_recent_downgrade_still_counts(client, people, live, setup_keys):
    from broadcaster.db import session_scope
    from broadcaster.models import Incident, utcnow

    iid, _ = live(severity="major")
    with session_scope() as session:
        row = session.get(Incident, iid)
        assert row is not None
        row.severity_lowered_at = {"critical": (utcnow() - timedelta(minutes=5)).isoformat()}
    resp = people("editor-key").patch(iid, {"title": "EVACUATE"})
    assert resp.status_code == 202, resp.text
    assert "APPROVAL_DOWNGRADE_WINDOW" in resp.json()["reason"]


# --- below the level: at once, audited ---------------------------------------------------------------------------


def test_below_the_level_an_edit_applies_at_once_and_is_audited(client, people, live, setup_keys):
    iid, uid = live(severity="major")
    before = surfaces(client, iid, uid)
    editor = people("editor-key")
    resp = editor.patch(iid, {"title": "Water main break on 5th Ave", "severity": "minor"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["title"] == "Water main break on 5th Ave" and resp.json()["change_requests"] == []
    assert banner_titles(client) == ["Water main break on 5th Ave"]
    assert "/v1/banner" in changed(before, surfaces(client, iid, uid))
    [entry] = audit("incident.update")
    assert entry["actor"] == editor.actor and entry["after"] == {
        "title": "Water main break on 5th Ave",
        "severity": "minor",
    }
    [decision] = [d for d in audit("gate.decision") if d["door"] == "incident.edit"]
    assert decision["decision"] == "now" and "below APPROVAL_SEVERITY" in decision["reason"]


def test_approval_severity_none_turns_the_rule_off(client, people, live, monkeypatch):
    from broadcaster.settings import get_settings

    iid, _ = live()
    monkeypatch.setenv("APPROVAL_SEVERITY", "none")
    get_settings.cache_clear()
    assert people("editor-key").patch(iid, {"title": "Fixed"}).status_code == 200
    assert banner_titles(client) == ["Fixed"]


# --- a second person approves: the public pages change then ------------------------------------------------------


def test_a_second_person_approves_exactly_the_diff_and_the_public_pages_change(client, people, live, setup_keys):
    iid, uid = live()
    waiting, _ = pending_update(client, setup_keys, iid)
    before = surfaces(client, iid, uid)
    editor, approver = people("console-editor"), people("console-approver")
    asked = editor.patch(iid, {"title": "EVACUATE Harbour Street", "sites": ["www"]})
    assert asked.status_code == 202, asked.text
    cid = asked.json()["id"]
    assert asked.json()["diff"] == [
        {"field": "title", "before": "Water main break", "after": "EVACUATE Harbour Street"},
        {"field": "sites", "before": [], "after": ["www"]},
    ]
    seen = approver.client.get(f"/v1/incidents/{iid}/change-requests/{cid}", headers=approver.headers)
    assert seen.status_code == 200 and seen.headers["ETag"] == asked.headers["ETag"] == seen.json()["etag"]
    listed = client.get(f"/v1/incidents/{iid}/change-requests", headers=setup_keys[0]).json()
    assert [(c["id"], c["state"]) for c in listed] == [(cid, "pending")]

    done = approver.approve(iid, cid, seen.headers["ETag"])
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "applied" and done.json()["decided_by"] == approver.actor
    assert done.json()["etag"] is None
    incident = client.get(f"/v1/incidents/{iid}", headers=setup_keys[0]).json()
    assert incident["title"] == "EVACUATE Harbour Street" and incident["sites"] == ["www"]
    assert incident["change_requests"] == []
    after = surfaces(client, iid, uid)
    assert {"/v1/banner?site=www", "/status", "/v1/feeds/cap.xml", "/v1/feeds/atom.xml"} <= set(changed(before, after))
    # the published CAP alert stays as it was; the new title goes out as a CAP Update listed in the index
    assert after[f"/v1/feeds/cap/{uid}.xml"] == before[f"/v1/feeds/cap/{uid}.xml"]
    index = etree.fromstring(after["/v1/feeds/cap.xml"])
    newest = index.find(f"{ATOM}entry/{ATOM}link").get("href").removeprefix("http://testserver")
    update = client.get(newest).content
    assert b"<msgType>Update</msgType>" in update and b"<event>EVACUATE Harbour Street</event>" in update
    # as a PATCH would: the pending update's approval request is cancelled (its content changed)
    assert client.get(f"/v1/updates/{waiting}", headers=setup_keys[0]).json()["state"] == "draft"
    [cancelled] = audit("update.approval_cancelled")
    assert cancelled["fields"] == ["sites", "title"]
    [applied] = audit("incident.update")
    assert applied["actor"] == approver.actor and applied["requester"] == editor.actor
    assert applied["after"] == {"title": "EVACUATE Harbour Street", "sites": ["www"]}
    assert [a["change_request"] for a in audit("incident.change_approve")] == [cid]
    # applied once: a second approval finds nothing pending
    assert_error(approver.approve(iid, cid, seen.headers["ETag"]), 409, "not_pending", "change_id")


def test_the_requester_cannot_approve_their_own_change(client, people, live, setup_keys, unchanged):
    iid, _ = live()
    both = people("both")
    own_key = both.extra["key"]
    for asker, approver in ((both, own_key), (own_key, both)):  # session asks, own key approves; and back
        asked = asker.patch(iid, {"title": "EVACUATE"})
        assert asked.status_code == 202, asked.text
        with unchanged():
            body = assert_error(approver.approve(iid, asked.json()["id"], asked.headers["ETag"]), 403, "forbidden")
            assert "different person" in body["detail"]
            assert_error(approver.reject(iid, asked.json()["id"]), 403, "forbidden", "Authorization")
    admin = people("admin-key")
    asked = admin.patch(iid, {"title": "EVACUATE"})
    assert_error(admin.approve(iid, asked.json()["id"], asked.headers["ETag"]), 403, "forbidden")
    assert banner_titles(client) == ["Water main break"]


def test_approve_needs_the_current_etag(client, people, live, setup_keys, unchanged):
    iid, _ = live()
    editor, approver = people("editor-key"), people("publish-only-key")
    first = editor.patch(iid, {"title": "EVACUATE"})
    cid, etag = first.json()["id"], first.headers["ETag"]
    with unchanged():
        body = assert_error(approver.approve(iid, cid, None), 428, "precondition_required", "If-Match")
        assert "change-requests" in body["detail"]
        assert_error(approver.approve(iid, cid, "*"), 428, "precondition_required", "If-Match")
        assert_error(approver.approve(iid, cid, '"0123"'), 412, "precondition_failed", "If-Match")
        assert_error(approver.approve(iid, cid, f"W/{etag}"), 412, "precondition_failed", "If-Match")
    # a newer request supersedes the one the approver looked at
    second = editor.patch(iid, {"title": "EVACUATE NOW"})
    assert_error(approver.approve(iid, cid, etag), 409, "not_pending", "change_id")
    assert_error(approver.approve(iid, second.json()["id"], etag), 412, "precondition_failed", "If-Match")
    listed = client.get(f"/v1/incidents/{iid}/change-requests", headers=setup_keys[0]).json()
    assert [(c["id"], c["state"]) for c in listed] == [(second.json()["id"], "pending"), (cid, "superseded")]
    assert banner_titles(client) == ["Water main break"]


def test_the_incident_changing_after_the_request_is_a_412(client, people, live, setup_keys):
    """Whatever changed the incident's public fields since the request (here a change made in the database,
    outside every path that voids the request), the ETag no longer matches: nobody approves a stale diff."""
    from broadcaster.db import session_scope
    from broadcaster.models import Incident

    iid, _ = live()
    editor, approver = people("editor-key"), people("publish-only-key")
    asked = editor.patch(iid, {"title": "EVACUATE"})
    with session_scope() as session:
        row = session.get(Incident, iid)
        assert row is not None
        row.status = "identified"
    body = assert_error(approver.approve(iid, asked.json()["id"], asked.headers["ETag"]), 412, "precondition_failed")
    fresh = body["current_etag"]
    body = assert_error(approver.approve(iid, asked.json()["id"], fresh), 412, "precondition_failed", "If-Match")
    assert "changed after this change was requested" in body["detail"]
    assert banner_titles(client) == ["Water main break"]


def test_a_grant_delay_holds_for_change_requests(client, people, live, setup_keys):
    from broadcaster.db import session_scope
    from broadcaster.models import ApiKey, RoleGrant, utcnow

    iid, _ = live()
    asked = people("editor-key").patch(iid, {"title": "EVACUATE"})
    approver = people("publish-only-key")
    with session_scope() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.name == approver.actor.removeprefix("key:")))
        assert key is not None
        session.add(
            RoleGrant(
                at=utcnow(),
                granted_by="key:setup-admin",
                via="api",
                kind="key",
                target_type="api_key",
                target_id=key.id,
                target_label=key.name,
                roles=["publish"],
                delays_approval=True,
            )
        )
    body = assert_error(approver.approve(iid, asked.json()["id"], asked.headers["ETag"]), 403, "approver_grant_delay")
    assert body["may_approve_from"]
    assert banner_titles(client) == ["Water main break"]


def test_reject_keeps_the_incident_and_says_why(client, people, live, setup_keys, unchanged):
    iid, uid = live()
    before = surfaces(client, iid, uid)
    editor, approver = people("editor-key"), people("publish-only-key")
    asked = editor.patch(iid, {"severity": "minor", "title": "All clear"})
    cid = asked.json()["id"]
    with unchanged():
        assert_error(approver.reject(iid, cid, ""), 422, field="comment")
        assert_error(approver.reject(iid, cid, "   "), 422, field="comment")
    resp = approver.reject(iid, cid)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["state"], resp.json()["comment"], resp.json()["decided_by"]) == (
        "rejected",
        "Not what the crews report.",
        approver.actor,
    )
    assert changed(before, surfaces(client, iid, uid)) == []
    assert_error(approver.reject(iid, cid), 409, "not_pending")
    assert_error(approver.approve(iid, cid, asked.headers["ETag"]), 409, "not_pending")
    [entry] = audit("incident.change_reject")
    assert entry["comment"] == "Not what the crews report." and entry["requester"] == editor.actor


# --- resolving still works in one approved step ------------------------------------------------------------------


def test_resolving_by_an_approved_update_works_as_before(client, people, live, setup_keys):
    iid, uid = live()
    editor = people("editor-key")
    asked = editor.patch(iid, {"title": "EVACUATE"})  # a pending change the resolution makes stale
    admin, approver = setup_keys
    upd = client.post(f"/v1/incidents/{iid}/updates", headers=admin, json={"body": "All clear.", "status": "resolved"})
    pending = client.post(f"/v1/updates/{upd.json()['id']}/publish", headers=admin)
    assert pending.status_code == 202, pending.text
    done = client.post(
        f"/v1/updates/{upd.json()['id']}/approve", headers={**approver, "If-Match": pending.headers["ETag"]}
    )
    assert done.status_code == 200, done.text
    assert client.get(f"/v1/incidents/{iid}", headers=admin).json()["status"] == "resolved"
    assert banner_titles(client) == []
    [voided] = client.get(f"/v1/incidents/{iid}/change-requests", headers=admin).json()
    assert voided["id"] == asked.json()["id"] and voided["state"] == "voided"
    assert "moved the incident's status" in voided["comment"]


def test_resolving_by_patch_is_one_approval(client, people, live, setup_keys):
    services(client, setup_keys)
    admin, _ = setup_keys
    iid, uid = live()
    outage = client.post("/v1/services/water/state", headers=admin, json={"state": "major_outage", "reason": "Leak"})
    assert outage.status_code == 200, outage.text
    asked = people("editor-key").patch(iid, {"status": "resolved"})
    assert asked.status_code == 202, asked.text
    assert banner_titles(client) == ["Water main break"]
    done = people("publish-only-key").approve(iid, asked.json()["id"], asked.headers["ETag"])
    assert done.status_code == 200, done.text
    incident = client.get(f"/v1/incidents/{iid}", headers=admin).json()
    assert incident["status"] == "resolved" and incident["resolved_at"] is not None
    assert banner_titles(client) == []
    # as a PATCH that resolves: the affected services are back to operational
    assert {s["slug"]: s["state"] for s in client.get("/v1/services", headers=admin).json()}["water"] == "operational"


# --- bad input and credentials -------------------------------------------------------------------------------------


def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(client, people, live, setup_keys, unchanged):
    services(client, setup_keys)
    iid, _ = live()
    editor = people("editor-key")
    with unchanged():
        for body, name in (
            ({"severity": "urgent"}, "severity"),
            ({"status": "gone"}, "status"),
            ({"category": "nope"}, "category"),
            ({"title": ""}, "title"),
            ({"title": "x" * 301}, "title"),
            ({"sites": ["Not A Slug!"]}, "sites"),
            ({"affected_services": ["nope"]}, "affected_services"),
            ({"public": "maybe"}, "public"),
            ({"owner": "me"}, "owner"),
        ):
            assert_error(editor.patch(iid, body), 422, field=name)
    asked = editor.patch(iid, {"title": "EVACUATE"})
    cid = asked.json()["id"]
    approver = people("publish-only-key")
    other, _ = live(title="Other")
    with unchanged():
        assert_error(approver.approve(iid, 999_999, asked.headers["ETag"]), 404, "not_found", "change_id")
        assert_error(approver.approve(other, cid, asked.headers["ETag"]), 404, "not_found", "change_id")
        assert_error(approver.approve(999_999, cid, asked.headers["ETag"]), 404, "not_found", "incident_id")
        assert_error(approver.reject(iid, cid, {"x": 1}), 422, field="comment")
        bad = client.post(f"/v1/incidents/{iid}/change-requests/0/approve", headers=approver.headers)
        assert_error(bad, 422, field="change_id")
    assert client.get(f"/v1/incidents/{iid}/change-requests/{cid}", headers=setup_keys[0]).json()["state"] == "pending"


def test_missing_or_wrong_credentials(client, people, live, setup_keys, auth, unchanged):
    iid, _ = live()
    editor = people("editor-key")
    asked = editor.patch(iid, {"title": "EVACUATE"})
    cid, etag = asked.json()["id"], asked.headers["ETag"]
    base = f"/v1/incidents/{iid}/change-requests"
    approver = people("console-approver")
    with unchanged():
        for method, path, body in (
            ("PATCH", f"/v1/incidents/{iid}", {"title": "x"}),
            ("POST", f"{base}/{cid}/approve", None),
            ("POST", f"{base}/{cid}/reject", {"comment": "no"}),
            ("GET", base, None),
            ("GET", f"{base}/{cid}", None),
        ):
            assert_error(client.request(method, path, json=body, headers={"If-Match": etag}), 401, "unauthorized")
            wrong = {"Authorization": "Bearer bk_0_nope", "If-Match": etag}
            assert_error(client.request(method, path, json=body, headers=wrong), 401, "unauthorized")
        for path in (f"{base}/{cid}/approve", f"{base}/{cid}/reject"):  # write is not publish
            denied = assert_error(
                client.post(path, json={"comment": "no"}, headers={**editor.headers, "If-Match": etag}), 403
            )
            assert denied["required_scope"] == "publish"
        # a console session without its CSRF token
        no_csrf = approver.client.post(f"{base}/{cid}/approve", headers={"If-Match": etag})
        assert_error(no_csrf, 403, "csrf_failed")
    assert banner_titles(client) == ["Water main break"]


def test_the_openapi_document_describes_the_change_requests(client):
    spec = client.get("/openapi.json").json()
    patch = spec["paths"]["/v1/incidents/{incident_id}"]["patch"]
    assert {"200", "202"} <= set(patch["responses"]) and "ETag" in patch["responses"]["202"]["headers"]
    approve = spec["paths"]["/v1/incidents/{incident_id}/change-requests/{change_id}/approve"]["post"]
    assert {"403", "409", "412", "428"} <= set(approve["responses"])
    assert approve["x-door"] == patch["x-door"] == "incident.edit"
