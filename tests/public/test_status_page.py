"""The server-rendered status page: incidents with timelines, history, routing map, subscribe form."""

from __future__ import annotations

from html.parser import HTMLParser


class Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"), "method": a.get("method"), "fields": []})
        elif tag in ("input", "select") and self.forms:
            self.forms[-1]["fields"].append((a.get("name"), a.get("type", tag)))


def test_empty_status_page(client):
    resp = client.get("/status")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    assert "All systems operational" in resp.text


def test_current_incident_timeline_and_escaping(client, publish):
    first = publish("Outage <script>alert(1)</script>", body="Body <img src=x onerror=alert(1)>", severity="major")
    iid = first["incident_id"]
    second = publish(incident_id=iid, body="We found the cause.", status="identified")
    publish(incident_id=iid, body="Cause was elsewhere.", kind="correction", corrects=second["id"])
    page = client.get("/status").text
    assert "<script>alert(1)</script>" not in page and "<img src=x" not in page
    assert "Outage &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Body &lt;img src=x onerror=alert(1)&gt;" in page
    assert f'id="update-{second["id"]}"' in page
    assert "correction</span> of" in page
    assert "Corrected by" in page
    assert 'class="corrected"' in page
    # the incident page shows the same timeline
    detail = client.get(f"/status/incidents/{iid}")
    assert detail.status_code == 200
    assert "We found the cause." in detail.text


def test_routing_map_and_subscribe_form(client, publish, technical_category):
    publish()
    page = client.get("/status").text
    assert "How to reach us" in page
    assert '<a href="https://chat.example.org/">' in page or '<a href="https://chat.example.org">' in page
    assert '<a href="tel:+15551234567">+15551234567</a>' in page
    parser = Forms()
    parser.feed(page)
    [form] = parser.forms
    assert (form["action"], form["method"]) == ("/v1/subscribe", "post")
    names = {n for n, _ in form["fields"]}
    assert names == {"email", "phone", "categories", "locale"}
    assert ("categories", "checkbox") in form["fields"]


def test_history_retractions_and_resolution(client, publish):
    a = publish("Resolved thing")
    publish(incident_id=a["incident_id"], body="All fixed.", status="resolved")
    b = publish("Mistake")
    publish(incident_id=b["incident_id"], body="Sent in error.", kind="cancel", corrects=b["id"])
    page = client.get("/status").text
    assert "All systems operational" in page
    history = client.get("/status/history").text
    assert "Resolved thing" in history and "Mistake" in history
    assert "retraction</span> of" in history
    assert "Retracted by" in history


def test_private_and_unknown_incidents_404(client, publish):
    hidden = publish("Internal", public=False)
    assert client.get(f"/status/incidents/{hidden['incident_id']}").status_code == 404
    assert client.get("/status/incidents/424242").status_code == 404
    assert "Internal" not in client.get("/status").text


def test_status_page_updates_after_publish_and_304(client, publish):
    page = client.get("/status")
    publish("Fresh incident")
    fresh = client.get("/status", headers={"If-None-Match": page.headers["etag"]})
    assert fresh.status_code == 200
    assert "Fresh incident" in fresh.text
    assert client.get("/status", headers={"If-None-Match": fresh.headers["etag"]}).status_code == 304


def test_subscribe_form_posts_to_the_subscribe_endpoint(client, publish, monkeypatch):
    """Submit the page's own form (its field names, form-encoded) like a browser without JS would."""
    from broadcaster.settings import get_settings

    monkeypatch.setenv("SUBSCRIBE_PHONE_COUNTRIES", "US")
    get_settings.cache_clear()
    publish()
    parser = Forms()
    parser.feed(client.get("/status").text)
    [form] = parser.forms
    names = {n for n, _ in form["fields"]}
    data = {"phone": "+15557654321", "categories": "emergency", "locale": "fr"}
    assert set(data) <= names
    resp = client.post(form["action"], data=data)
    assert resp.status_code == 202, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    assert "Reply YES to the text message" in resp.text  # SMS double opt-in


def test_out_of_range_incident_ids_are_422(client):
    """An id past int64 was a 500 on SQLite (OverflowError binding it); now a 422 naming the parameter."""
    for iid in ("99999999999999999999", "0"):
        resp = client.get(f"/status/incidents/{iid}")
        assert resp.status_code == 422, resp.text
        assert resp.json()["field"] == "incident_id"
