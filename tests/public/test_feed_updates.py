"""Feed entries that change after publication (a correction or retraction of them, a new incident title) get a
new <updated> (Atom) / <atom:updated> (RSS); their ids/guids and publication times stay; an entry never changes
its title or text while its <updated> stays the same."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

A = "{http://www.w3.org/2005/Atom}"


def _atom_entries(client, path: str, text_tag: str) -> dict[str, dict[str, Any]]:
    """An Atom feed's entries by id: title, text (`text_tag`), published and updated; and the feed's updated."""
    root = etree.fromstring(client.get(path).content)
    out = {"feed": {"updated": root.findtext(f"{A}updated")}}
    for e in root.iterfind(f"{A}entry"):
        out[e.findtext(f"{A}id")] = {
            "title": e.findtext(f"{A}title"),
            "text": e.findtext(f"{A}{text_tag}"),
            "published": e.findtext(f"{A}published"),
            "updated": e.findtext(f"{A}updated"),
        }
    return out


def _atom(client) -> dict[str, dict[str, Any]]:
    return _atom_entries(client, "/v1/feeds/atom.xml", "content")


def _rss(client) -> dict[str, dict[str, Any]]:
    root = etree.fromstring(client.get("/v1/feeds/rss.xml").content)
    out = {"feed": {"updated": root.findtext("channel/lastBuildDate")}}
    for item in root.iterfind("channel/item"):
        out[item.findtext("guid")] = {
            "title": item.findtext("title"),
            "text": item.findtext("description"),
            "published": item.findtext("pubDate"),
            "updated": item.findtext(f"{A}updated"),
        }
    return out


def _cap(client) -> dict[str, dict[str, Any]]:
    return _atom_entries(client, "/v1/feeds/cap.xml", "summary")


def _consistent(before: dict, after: dict) -> None:
    """The rule: an entry whose title or text changed has a new <updated>; its publication time never moves."""
    for key, old in before.items():
        if key == "feed" or key not in after:
            continue
        new = after[key]
        assert new["published"] == old["published"], key
        if (new["title"], new["text"]) != (old["title"], old["text"]):
            assert new["updated"] != old["updated"], (key, old, new)


def _key(feed: dict, update_id: int) -> str:
    """The entry of an update: its permalink (RSS/Atom) or its CAP identifier (`<host>.update.<id>`)."""
    [key] = [k for k in feed if k.endswith((f"#update-{update_id}", f".update.{update_id}"))]
    return key


@pytest.mark.parametrize("read", [_atom, _rss], ids=["atom", "rss"])
def test_a_corrected_entry_gets_a_new_updated(client, publish, read):
    first = publish("Gas leak", body="Evacuate Main St.")
    iid = first["incident_id"]
    other = publish("Water quality", body="Boil water.")
    before = read(client)
    fix = publish(incident_id=iid, body="Only Main St. 1-20.", kind="correction", corrects=first["id"])
    after = read(client)
    _consistent(before, after)
    old, new = before[_key(before, first["id"])], after[_key(after, first["id"])]
    assert new["updated"] != old["updated"] and new["published"] == old["published"]
    assert "Corrected on" in new["text"] and f"#update-{fix['id']}" in new["text"]
    assert "Evacuate Main St." in new["text"]
    # the untouched entry is unchanged, the correction has its own entry, the feed's date moved
    assert after[_key(after, other["id"])] == before[_key(before, other["id"])]
    assert _key(after, fix["id"])
    assert after["feed"]["updated"] >= before["feed"]["updated"]
    if read is _atom:
        assert after["feed"]["updated"] != before["feed"]["updated"]
        assert after[_key(after, first["id"])]["updated"] == after[_key(after, fix["id"])]["updated"]

    cancel = publish(incident_id=iid, body="Sent in error.", kind="cancel", corrects=first["id"])
    last = read(client)
    _consistent(after, last)
    assert "Retracted on" in last[_key(last, first["id"])]["text"]
    assert f"#update-{cancel['id']}" in last[_key(last, first["id"])]["text"]
    assert last[_key(last, first["id"])]["updated"] != new["updated"]


@pytest.mark.parametrize("read", [_atom, _rss], ids=["atom", "rss"])
def test_a_new_incident_title_moves_its_entries_updated(client, publish, auth, read):
    first = publish("Gas leak", body="Evacuate Main St.")
    second = publish(incident_id=first["incident_id"], body="Crews on site.", status="identified")
    other = publish("Water quality", body="Boil water.")
    before = read(client)
    resp = client.patch(
        f"/v1/incidents/{first['incident_id']}", headers=auth("write", "publish"), json={"title": "Gas leak, Main St."}
    )
    assert resp.status_code == 200, resp.text
    after = read(client)
    _consistent(before, after)
    assert set(after) == set(before)  # ids/guids stable: no entry came or went
    for update in (first, second):
        key = _key(after, update["id"])
        assert "Gas leak, Main St." in after[key]["title"]
        assert after[key]["updated"] != before[key]["updated"]
    assert after[_key(after, other["id"])] == before[_key(before, other["id"])]


def test_a_new_incident_title_is_a_new_cap_update_and_the_cap_entries_stay(client, publish, auth):
    """The CAP index lists a message log (docs/public.md "CAP 1.2"): a published message never changes, so a new
    title is one new entry (an Update), and every earlier entry stays exactly as it was."""
    first = publish("Gas leak", body="Evacuate Main St.")
    publish(incident_id=first["incident_id"], body="Crews on site.", status="identified")
    publish("Water quality", body="Boil water.")
    before = _cap(client)
    resp = client.patch(
        f"/v1/incidents/{first['incident_id']}", headers=auth("write", "publish"), json={"title": "Gas leak, Main St."}
    )
    assert resp.status_code == 200, resp.text
    after = _cap(client)
    assert all(after[key] == entry for key, entry in before.items() if key != "feed")
    [added] = set(after) - set(before)
    assert after[added]["title"].startswith("Update: ") and "Gas leak, Main St." in after[added]["title"]
    assert after["feed"]["updated"] >= before["feed"]["updated"]


def test_an_unchanged_feed_is_byte_identical(client, publish):
    publish("Gas leak", body="Evacuate Main St.")
    for kind in ("rss", "atom", "cap"):
        assert client.get(f"/v1/feeds/{kind}.xml").content == client.get(f"/v1/feeds/{kind}.xml").content
