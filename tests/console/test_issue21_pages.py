"""Issue 21's console pages, rendered on the server: Maintenance (windows, their notices and the approval of their
schedule; Schedule/Move/Cancel only for the publish scope), Areas (outline as inline SVG, subscriber count,
Import for the write scope), and the navigation (who sees which page)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.console.conftest import make_user, signed_in  # noqa: F401 (fixtures)

SQUARE = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"slug": "north-district", "name": "North district", "kind": "district"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[-74.0, 40.7], [-73.9, 40.7], [-73.9, 40.8], [-74.0, 40.8], [-74.0, 40.7]]],
            },
        }
    ],
}


def test_navigation_shows_the_new_pages_to_the_roles_that_open_them(signed_in) -> None:  # noqa: F811
    def links(client) -> set[str]:
        return set(re.findall(r'<li><a href="(/console/[a-z]+)"', client.get("/console/").text))

    editor, approver = signed_in("editor"), signed_in("approver")
    assert {"/console/services", "/console/maintenance", "/console/areas"} <= links(editor)
    assert "/console/maintenance" in links(approver)
    assert not {"/console/services", "/console/areas"} & links(approver)
    assert approver.get("/console/areas").status_code == 403
    assert approver.get("/console/maintenance").status_code == 200


def test_areas_page_draws_the_outline_and_counts(client, admin, signed_in) -> None:  # noqa: F811
    editor = signed_in("editor")
    empty = editor.get("/console/areas").text
    assert "No areas yet." in empty and 'id="import-form"' in empty
    resp = client.post(
        "/v1/areas/import",
        headers={**admin, "Content-Type": "application/geo+json"},
        content=__import__("json").dumps(SQUARE),
    )
    assert resp.status_code == 200, resp.text
    for body in (
        {"phone": "+15550000001", "lat": 40.75, "lon": -73.95},  # inside by location
        {"phone": "+15550000002", "areas": ["north-district"]},  # placed in it
        {"phone": "+15550000003", "lat": 51.5, "lon": -0.1},  # elsewhere
    ):
        assert client.post("/v1/subscribers", headers=admin, json=body).status_code == 201, body
    page = editor.get("/console/areas").text
    card = page.split('data-slug="north-district"', 1)[1].split("</li>", 1)[0]
    assert '<svg class="area-outline"' in card and re.search(r'<path d="M[\d. L]+Z"/>', card)
    assert 'role="img" aria-label="Outline of North district"' in card
    assert '<span class="count-big area-count">2</span> people to reach here' in card
    assert "1 by their address, 1 placed in it" in card
    assert "https://" not in card  # no map tiles, nothing fetched from elsewhere


def test_maintenance_page_lists_windows_notices_and_approval(client, admin, signed_in, emergency_category) -> None:  # noqa: F811
    for slug in ("water", "power"):
        assert client.post("/v1/services", headers=admin, json={"slug": slug, "name": slug.title()}).status_code == 201
    editor, approver = signed_in("editor"), signed_in("approver")
    empty = editor.get("/console/maintenance").text
    assert "No maintenance planned." in empty
    assert 'id="plan-form"' not in empty and "needs the approver role" in empty
    assert 'id="plan-form"' in approver.get("/console/maintenance").text
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0, second=0)
    body = {
        "title": "Water main repair",
        "services": ["water"],
        "category": "emergency",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=3)).isoformat(),
        "notify": {"hours_before": [24]},
    }
    resp = client.post("/v1/maintenance", headers=admin, json=body)
    assert resp.status_code == 201, resp.text
    wid = resp.json()["id"]
    page = approver.get("/console/maintenance").text
    card = page.split(f'id="window-{wid}"', 1)[1].split("</li>\n</ul>", 1)[0]
    assert "Water main repair" in card and "Scheduled" in card
    upcoming = card.split('class="notices upcoming"', 1)[1].split("</table>", 1)[0]
    assert "Reminder (24 h before)" in upcoming and "At the start" in upcoming and "At the end" in upcoming
    assert 'class="move-form pg-form"' in card and "cancel-window" in card
    assert 'class="move-form' not in editor.get("/console/maintenance").text  # editors cannot move (publish scope)
