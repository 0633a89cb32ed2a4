"""RSS/Atom parse with feedparser; every CAP alert validates against the CAP 1.2 XSD."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import feedparser
import pytest
from lxml import etree
from tests.standards import cap as cap_xsd

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"


@pytest.fixture
def timeline(publish, client, auth):
    """An incident with alert, update, correction and cancel, plus a test send and a second incident."""
    first = publish("Gas leak <b>downtown</b>", summary="Gas leak downtown", severity="critical")
    iid = first["incident_id"]
    second = publish(incident_id=iid, body="Area evacuated & cordoned.", status="identified")
    fix = publish(incident_id=iid, body="Only Main St. is evacuated.", kind="correction", corrects=second["id"])
    cancel = publish(incident_id=iid, body="Sent in error.", kind="cancel", corrects=first["id"])
    test = publish("Monthly drill", test=True, severity="minor")
    other = publish(
        "Water quality", severity="info", translations={"fr": {"body": "Qualité de l'eau", "summary": "Eau"}}
    )
    return {"first": first, "second": second, "fix": fix, "cancel": cancel, "test": test, "other": other}


def _path(url: str) -> str:
    return urlsplit(url).path


def test_rss_and_atom_parse(client, timeline):
    for kind, version in (("rss", "rss20"), ("atom", "atom10")):
        resp = client.get(f"/v1/feeds/{kind}.xml")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith(f"application/{kind}+xml")
        assert resp.headers["cache-control"].startswith("public, max-age=")
        feed = feedparser.parse(resp.content)
        assert not feed.bozo, feed.bozo_exception
        assert feed.version == version
        titles = [e.title for e in feed.entries]
        # test sends are not public; newest first
        assert len(feed.entries) == 5
        assert "Monthly drill" not in " ".join(titles)
        assert titles[0] == "Water quality"
        assert "Retracted: Gas leak <b>downtown</b>" in titles  # text, escaped in the XML
        assert "Correction: Gas leak <b>downtown</b>" in titles
        assert all(_path(e.link).startswith("/status/incidents/") for e in feed.entries)
        again = client.get(f"/v1/feeds/{kind}.xml", headers={"If-None-Match": resp.headers["etag"]})
        assert again.status_code == 304


def test_feed_raw_xml_escapes_markup(client, timeline):
    raw = client.get("/v1/feeds/rss.xml").text
    assert "<b>downtown</b>" not in raw
    assert "&lt;b&gt;downtown&lt;/b&gt;" in raw


def cap_log(client) -> dict[str, bytes]:
    """Every CAP message the index lists, by identifier (each fetched from its link and checked to be served as
    application/cap+xml)."""
    index = client.get("/v1/feeds/cap.xml")
    assert index.status_code == 200
    feed = feedparser.parse(index.content)
    assert not feed.bozo, feed.bozo_exception
    out = {}
    for entry in feed.entries:
        [link] = [ln for ln in entry.links if ln.get("type") == "application/cap+xml"]
        assert _path(link.href).startswith("/v1/feeds/cap/messages/")
        resp = client.get(_path(link.href))
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/cap+xml")
        identifier = etree.fromstring(resp.content).findtext(f"{CAP}identifier")
        assert entry.id.endswith(":" + identifier)
        out[identifier] = resp.content
    return out


def _alerts(client) -> dict[int, bytes]:
    """The message each update was published with, by update id (`<host>.update.<id>`)."""
    out = {}
    for identifier, body in cap_log(client).items():
        match = re.fullmatch(r"testserver\.update\.(\d+)", identifier)
        if match:
            assert client.get(f"/v1/feeds/cap/{match[1]}.xml").content == body
            out[int(match[1])] = body
    return out


def test_every_cap_alert_validates_against_the_xsd(client, timeline):
    alerts = _alerts(client)
    assert set(alerts) == {u["id"] for u in timeline.values()}  # test sends included (status Exercise)
    for body in alerts.values():
        cap_xsd.validate(body)  # raises on any violation
        assert etree.fromstring(body).tag == f"{CAP}alert"


def _fields(body: bytes) -> dict:
    root = etree.fromstring(body)
    get = lambda tag, node=root: node.findtext(f"{CAP}{tag}")  # noqa: E731
    infos = root.findall(f"{CAP}info")
    return {
        "identifier": get("identifier"),
        "sender": get("sender"),
        "sent": get("sent"),
        "status": get("status"),
        "msgType": get("msgType"),
        "scope": get("scope"),
        "references": get("references"),
        "languages": [get("language", i) for i in infos],
        "severity": [get("severity", i) for i in infos],
        "headline": [get("headline", i) for i in infos],
        "web": [get("web", i) for i in infos],
        "instruction": [get("instruction", i) for i in infos],
    }


def test_cap_mapping(client, timeline):
    alerts = {k: _fields(v) for k, v in _alerts(client).items()}
    first, second = alerts[timeline["first"]["id"]], alerts[timeline["second"]["id"]]
    fix, cancel = alerts[timeline["fix"]["id"]], alerts[timeline["cancel"]["id"]]
    test, other = alerts[timeline["test"]["id"]], alerts[timeline["other"]["id"]]

    ref = lambda a: f"{a['sender']},{a['identifier']},{a['sent']}"  # noqa: E731
    assert (first["msgType"], first["references"], first["status"], first["scope"]) == (
        "Alert",
        None,
        "Actual",
        "Public",
    )
    assert first["severity"] == ["Extreme"]
    assert first["sender"] == "broadcaster@example.org"
    # an Update supersedes, and a Cancel cancels, every message of the incident still in force
    assert (second["msgType"], second["references"]) == ("Update", ref(first))
    assert (fix["msgType"], fix["references"]) == ("Update", f"{ref(first)} {ref(second)}")
    assert (cancel["msgType"], cancel["references"]) == ("Cancel", f"{ref(first)} {ref(second)} {ref(fix)}")
    assert (test["status"], test["msgType"], test["severity"]) == ("Exercise", "Alert", ["Moderate"])
    assert other["severity"] == ["Minor", "Minor"]
    assert other["languages"] == ["en", "fr"]
    assert other["headline"][1] == "Eau"
    assert first["web"] == [f"http://testserver/status/incidents/{timeline['first']['incident_id']}"]
    assert first["instruction"] == ["Call: +15551234567; Hours: 24/7"]
    for a in alerts.values():  # CAP 1.2 3.3.2: UTC is written -00:00, no fractions
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-00:00", a["sent"])
        assert not re.search(r"[\s,<&]", a["identifier"])


def test_the_schema_rejects_a_broken_alert(client, timeline):
    body = _alerts(client)[timeline["first"]["id"]]
    assert cap_xsd.is_valid(body)
    assert not cap_xsd.is_valid(body.replace(b"<severity>Extreme</severity>", b"<severity>Critical</severity>"))
    assert not cap_xsd.is_valid(body.replace(b"-00:00</sent>", b"Z</sent>"))
    assert not cap_xsd.is_valid(body.replace(b"-00:00</sent>", b".5-00:00</sent>"))
    assert not cap_xsd.is_valid(body.replace(b"<scope>Public</scope>", b""))


def test_cap_alert_404s(client, timeline, auth):
    assert client.get("/v1/feeds/cap/999999.xml").status_code == 404
    resp = client.post(
        f"/v1/incidents/{timeline['other']['incident_id']}/updates", headers=auth("write"), json={"body": "draft"}
    )
    draft_id = resp.json()["id"]
    resp = client.get(f"/v1/feeds/cap/{draft_id}.xml")
    assert resp.status_code == 404
    assert resp.json()["error"] == "not_found"


@pytest.mark.parametrize("update_id", ["99999999999999999999", "0"])
def test_out_of_range_cap_ids_are_422(client, update_id):
    """An id past int64 was a 500 on SQLite (OverflowError binding it); now a 422 naming the parameter."""
    resp = client.get(f"/v1/feeds/cap/{update_id}.xml")
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == "update_id"


MARKUP_BODY = "Read <img src=x onerror=alert(1)> & <b>this</b> now.\nSecond line: 1 < 2 &amp; done."


def _shown(detail: dict) -> str:
    """What a feed reader displays for a text construct: HTML is rendered (tags become elements, entities
    characters), plain text is shown as is."""
    import html as html_lib
    import re

    value = detail["value"]
    if detail["type"] in ("text/html", "application/xhtml+xml"):
        assert "<img" not in value and "<b>" not in value, value  # no element made from the body's text
        return html_lib.unescape(re.sub(r"<br\s*/?>", "\n", re.sub(r"<(?!br)[^>]+>", "", value)))
    return value


@pytest.mark.parametrize("kind", ["rss", "atom"])
def test_feed_readers_show_the_body_as_text_never_as_html(client, publish, kind):
    """The body is plain text: RSS <description> is HTML to readers, so it must be escaped into HTML and then
    into XML (it was escaped once, so `<img src=x>` became an image). Atom content stays type=text."""
    publish("Gas <b>leak</b>", MARKUP_BODY)
    feed = feedparser.parse(client.get(f"/v1/feeds/{kind}.xml").content)
    assert not feed.bozo, feed.bozo_exception
    [entry] = feed.entries
    assert entry.title == "Gas <b>leak</b>"
    details = [d for d in (entry.get("summary_detail"),) if d] + list(entry.get("content", []))
    assert details
    for detail in details:
        assert _shown(detail).split() == MARKUP_BODY.split()
