"""CSV import of subscribers' locations (`lat`, `lon`), named areas (`areas`) and, with GEOCODER_URL set, an
`address` geocoded through a tiny local Nominatim-compatible server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from tests.areas.conftest import square

PLACES = {"1 Main St, Springfield": ("40.25", "-73.5"), "2 Elm St, Springfield": ("45.0", "-73.5")}


@pytest.fixture
def geocoder(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A fake Nominatim answering `/search?format=json&q=` from PLACES; yields the queries it received."""
    from broadcaster.settings import get_settings

    queries: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlparse(self.path)
            params = parse_qs(url.query)
            q = params.get("q", [""])[0]
            queries.append(q)
            assert url.path == "/search" and params.get("format") == ["json"]
            hit = PLACES.get(q)
            body = json.dumps([{"lat": hit[0], "lon": hit[1], "display_name": q}] if hit else []).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("GEOCODER_URL", f"http://127.0.0.1:{server.server_address[1]}/")
    get_settings.cache_clear()
    try:
        yield queries
    finally:
        server.shutdown()
        server.server_close()
        get_settings.cache_clear()


def _import_areas(client, admin) -> None:
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"slug": "south", "name": "South"},
                "geometry": {"type": "Polygon", "coordinates": [square(-74.0, 40.0, -73.0, 40.5)]},
            },
            {
                "type": "Feature",
                "properties": {"slug": "north", "name": "North"},
                "geometry": {"type": "Polygon", "coordinates": [square(-74.0, 44.5, -73.0, 45.5)]},
            },
        ],
    }
    assert client.post("/v1/areas/import", headers=admin, json=fc).status_code == 200


def _subs(client, admin) -> dict[str, dict]:
    return {s["name"]: s for s in client.get("/v1/subscribers", headers=admin).json()["items"]}


def test_csv_lat_lon_and_areas(client, admin):
    _import_areas(client, admin)
    csv_text = (
        "phone,name,lat,lon,areas,address\n"
        "+15552000001,Ann,40.25,-73.5,,1 Main St\n"  # address ignored: no geocoder configured
        "+15552000002,Bob,,,north;south,\n"
        "+15552000003,Cid,abc,-73.5,,\n"  # rejected: lat not a number
        "+15552000004,Dee,40.25,,,\n"  # rejected: lat without lon
        "+15552000005,Eve,,,nowhere,\n"  # rejected: unknown area
        "+15552000006,Fay,91,0,,\n"  # rejected: latitude out of range
    )
    resp = client.post("/v1/subscribers/import?wait=true", content=csv_text, headers=admin)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert (report["created"], report["updated"], report["rejected"]) == (2, 0, 4)
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(4, "lat"), (5, "lon"), (6, "areas"), (7, "lat")]
    subs = _subs(client, admin)
    assert (subs["Ann"]["lat"], subs["Ann"]["lon"], subs["Ann"]["areas"]) == (40.25, -73.5, [])
    assert (subs["Bob"]["lat"], subs["Bob"]["areas"]) == (None, ["north", "south"])
    # a second import updates only what the row fills in: Bob's areas replaced, Ann's location kept
    again = "phone,name,lat,lon,areas\n+15552000002,Bob,,,south\n+15552000001,Ann,,,\n"
    resp = client.post("/v1/subscribers/import?wait=true", content=again, headers=admin)
    assert (resp.json()["created"], resp.json()["updated"], resp.json()["rejected"]) == (0, 2, 0)
    subs = _subs(client, admin)
    assert subs["Bob"]["areas"] == ["south"]
    assert (subs["Ann"]["lat"], subs["Ann"]["lon"]) == (40.25, -73.5)
    count = client.get("/v1/areas/south/subscribers/count", headers=admin).json()
    assert count == {"slug": "south", "subscribers": 2, "placed": 1, "located": 1}


def test_csv_address_is_geocoded_when_configured(client, admin, geocoder):
    _import_areas(client, admin)
    csv_text = (
        "phone,name,lat,lon,address\n"
        '+15552000001,Ann,,,"1 Main St, Springfield"\n'
        '+15552000002,Bob,,,"2 Elm St, Springfield"\n'
        '+15552000003,Cid,,,"1 Main St, Springfield"\n'  # same address: asked once
        '+15552000004,Dee,,,"Nowhere Lane"\n'  # not found: imported without a location
        '+15552000005,Eve,41.0,-73.2,"2 Elm St, Springfield"\n'  # lat/lon given: not geocoded
    )
    resp = client.post("/v1/subscribers/import?wait=true", content=csv_text, headers=admin)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["created"], resp.json()["rejected"]) == (5, 0)
    assert sorted(geocoder) == ["1 Main St, Springfield", "2 Elm St, Springfield", "Nowhere Lane"]
    subs = _subs(client, admin)
    located = {name: (s["lat"], s["lon"]) for name, s in subs.items()}
    assert located == {
        "Ann": (40.25, -73.5),
        "Bob": (45.0, -73.5),
        "Cid": (40.25, -73.5),
        "Dee": (None, None),
        "Eve": (41.0, -73.2),
    }
    south = client.get("/v1/areas/south/subscribers/count", headers=admin).json()
    north = client.get("/v1/areas/north/subscribers/count", headers=admin).json()
    assert (south["located"], north["located"]) == (2, 1)
