"""Issue 21: the console's incident timeline marks an update a published correction or retraction replaced
("Corrected by update #n", text struck through); drafts of a correction mark nothing."""

from __future__ import annotations

import re


def _card(page: str, update_id: int) -> str:
    match = re.search(rf'<li class="([^"]*)" id="update-{update_id}".*?</li>', page, re.S)
    assert match, update_id
    return match.group(0)


def test_corrected_original_is_marked(client, admin, emergency_category, signed_in):
    inc = client.post(
        "/v1/incidents",
        headers=admin,
        json={"title": "Flood", "category": "emergency", "severity": "minor", "update": {"body": "River at 3 m."}},
    ).json()
    original = inc["updates"][0]["id"]
    assert client.post(f"/v1/updates/{original}/publish", headers=admin).status_code == 200
    draft = client.post(
        f"/v1/incidents/{inc['id']}/updates",
        headers=admin,
        json={"body": "River at 2 m.", "kind": "correction", "corrects": original},
    ).json()["id"]
    editor = signed_in("editor")
    card = _card(editor.get(f"/console/incidents/{inc['id']}").text, original)
    assert "superseded" not in card and "Corrected" not in card  # a draft correction replaces nothing yet

    assert client.post(f"/v1/updates/{draft}/publish", headers=admin).status_code == 200
    page = editor.get(f"/console/incidents/{inc['id']}").text
    card = _card(page, original)
    assert 'class="card superseded"' in card
    assert f'<span class="tag">Corrected</span> by <a href="#update-{draft}">update #{draft}</a>' in card
    assert "superseded" not in _card(page, draft)  # the correction itself is current

    retraction = client.post(
        f"/v1/incidents/{inc['id']}/updates",
        headers=admin,
        json={"body": "Ignore.", "kind": "cancel", "corrects": draft},
    ).json()["id"]
    assert client.post(f"/v1/updates/{retraction}/publish", headers=admin).status_code == 200
    card = _card(editor.get(f"/console/incidents/{inc['id']}").text, draft)
    assert f'<span class="tag">Retracted</span> by <a href="#update-{retraction}">update #{retraction}</a>' in card
    css = editor.get("/console/static/console.css").text
    assert ".superseded .body" in css and "line-through" in css
