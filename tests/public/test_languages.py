"""A reader's language on the banner and the status page: the latest update in that language when it has one;
after an untranslated correction, the earlier translated update beside it (never silently the original only);
what is shown in the original language is marked with its `lang`."""

from __future__ import annotations

import re

import pytest
from tests.core.helpers import assert_error

FR = {"fr": {"body": "Eau coupée entre la 4e et la 6e avenue jusqu’à 18 h.", "summary": "Eau coupée jusqu’à 18 h"}}


@pytest.fixture
def corrected(publish) -> dict:
    """The README's story: an update with French text, then a correction without any."""
    first = publish(
        "Water main break",
        body="Water is off between 4th and 6th Ave until 18:00. Bottled water at the town hall.",
        summary="Water off 4th-6th Ave until 18:00",
        translations=FR,
    )
    fix = publish(
        incident_id=first["incident_id"],
        body="Bottled water is at the library, not the town hall.",
        kind="correction",
        corrects=first["id"],
    )
    return {"first": first, "fix": fix, "incident_id": first["incident_id"]}


def _banner(client, **params) -> dict:
    resp = client.get("/v1/banner", params=params.get("params"), headers=params.get("headers", {}))
    assert resp.status_code == 200, resp.text
    [banner] = resp.json()["banners"]
    return banner


def test_banner_json_shows_the_earlier_french_beside_an_untranslated_correction(client, publish, corrected):
    for how in ({"params": {"lang": "fr"}}, {"params": {"lang": "fr-CA"}}, {"headers": {"Accept-Language": "fr"}}):
        banner = _banner(client, **how)
        assert banner["id"] == corrected["fix"]["id"]
        assert banner["locale"] == "en" and "library" in banner["text"]  # the correction, in its own language
        assert banner["translation_missing"] is True
        earlier = banner["earlier"]
        assert earlier is not None, how
        assert earlier["id"] == corrected["first"]["id"] and earlier["locale"] == "fr"
        assert "Eau coupée" in earlier["text"]
    # a later update without French (the README's area update): still the earlier French beside it
    later = publish(incident_id=corrected["incident_id"], body="Crews are on site.")
    banner = _banner(client, params={"lang": "fr"})
    assert banner["id"] == later["id"] and banner["locale"] == "en"
    assert banner["earlier"]["id"] == corrected["first"]["id"]
    # no language asked, or English: the latest update alone
    for how in ({}, {"params": {"lang": "en"}}):
        banner = _banner(client, **how)
        assert banner["earlier"] is None and banner["translation_missing"] is False
        assert banner["locale"] == "en"


def test_banner_json_uses_the_latest_update_when_it_has_the_language(client, publish, corrected):
    latest = publish(
        incident_id=corrected["incident_id"],
        body="Water is back on 4th Ave.",
        translations={"fr": {"body": "L’eau est revenue sur la 4e avenue.", "summary": ""}},
    )
    banner = _banner(client, params={"lang": "fr"})
    assert banner["id"] == latest["id"]
    assert (banner["locale"], banner["earlier"], banner["translation_missing"]) == ("fr", None, False)
    assert "L’eau est revenue" in banner["text"]


def test_a_retracted_update_is_not_shown_as_the_earlier_text(client, publish):
    first = publish("Gas leak", body="Evacuate Main St.", translations={"fr": {"body": "Évacuez la rue Main."}})
    publish(incident_id=first["incident_id"], body="Wrong street.", kind="cancel", corrects=first["id"])
    publish(incident_id=first["incident_id"], body="Evacuate Elm St.")
    banner = _banner(client, params={"lang": "fr"})
    assert banner["earlier"] is None and "Elm" in banner["text"]


def test_banner_html_marks_each_text_with_its_language(client, corrected):
    html = client.get("/v1/banner.html", params={"lang": "fr"}).text
    assert re.search(r'<span class="bc-text" lang="en">[^<]*library', html), html
    assert re.search(r'<span class="bc-earlier">[^<]*<span lang="fr">[^<]*Eau coupée', html), html
    plain = client.get("/v1/banner.html").text
    assert "bc-earlier" not in plain and "Eau coupée" not in plain


def test_banner_js_renders_the_earlier_text_with_its_lang(client):
    js = client.get("/v1/banner.js").text
    assert "b.earlier" in js and 'setAttribute("lang", b.earlier.locale)' in js


def test_status_page_in_french(client, corrected):
    iid, first, fix = corrected["incident_id"], corrected["first"]["id"], corrected["fix"]["id"]
    for url in (f"/status/incidents/{iid}", "/status"):
        page = client.get(url, params={"lang": "fr"})
        assert page.status_code == 200
        html = page.text
        # the translated update in French, marked fr; the correction in English, marked en, pointing to it
        assert re.search(rf'<li id="update-{first}" lang="fr">.*?Eau coupée', html, re.S), html
        fix_item = re.search(rf'<li id="update-{fix}" lang="en">(.*?)</li>', html, re.S)
        assert fix_item and "library" in fix_item.group(1)
        assert f'href="#update-{first}"' in fix_item.group(1) and "not available in your language" in fix_item.group(1)
        assert "Water is off between 4th and 6th Ave" not in html  # shown in French, not both
    html = client.get("/status", params={"lang": "fr"}).text
    assert f'href="/status/incidents/{iid}?lang=fr"' in html  # the reader stays in French
    # without lang: each update in its own language, no pointer
    html = client.get(f"/status/incidents/{iid}").text
    assert "Eau coupée" not in html and "not available in your language" not in html
    assert re.search(rf'<li id="update-{first}" lang="en">', html)


def test_status_page_lang_is_validated(client, corrected):
    iid = corrected["incident_id"]
    assert_error(client.get(f"/status/incidents/{iid}", params={"lang": "not a tag!"}), 400, field="lang")
    # a valid tag the service does not offer: the page as without it
    plain = client.get(f"/status/incidents/{iid}").text
    assert client.get(f"/status/incidents/{iid}", params={"lang": "ja"}).text == plain
    assert "Eau coupée" in client.get(f"/status/incidents/{iid}", params={"lang": "fr-CA"}).text
