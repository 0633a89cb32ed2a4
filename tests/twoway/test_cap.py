"""CAP: an update asking an open question gets responseType Execute and the question in <instruction>; the
alert validates against the OASIS CAP 1.2 XSD; closing the question leaves that alert as it was and emits an
Update (referencing it) that no longer asks."""

from __future__ import annotations

from lxml import etree
from tests.standards import cap as cap_xsd
from tests.twoway.conftest import new_update

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"


def _info(body: bytes) -> tuple[list[str], str | None]:
    info = cap_xsd.validate(body).find(f"{CAP}info")
    assert info is not None
    return [n.text or "" for n in info.findall(f"{CAP}responseType")], info.findtext(f"{CAP}instruction")


def _newest(client) -> bytes:
    index = etree.fromstring(client.get("/v1/feeds/cap.xml").content)
    href = index.find("{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}link").get("href")
    resp = client.get(href.removeprefix("http://testserver"))
    assert resp.status_code == 200, resp.text
    return resp.content


def test_cap_marks_an_update_asking_for_a_response(client, admin, emergency_category, monkeypatch):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("APPROVAL_SEVERITY", "none")
    get_settings.cache_clear()
    update = new_update(client, admin, channels=["banner"])
    assert client.post(f"/v1/updates/{update['id']}/publish", headers=admin).status_code == 200
    first = client.get(f"/v1/feeds/cap/{update['id']}.xml").content
    types, instruction = _info(first)
    assert types == ["Monitor", "Execute"]
    assert instruction is not None
    assert instruction.startswith(
        "Are you safe? If you received our message, reply 1 for I'm safe, 2 for I need help; "
    )
    assert client.post(f"/v1/updates/{update['id']}/question/close", headers=admin).status_code == 200
    assert client.get(f"/v1/feeds/cap/{update['id']}.xml").content == first  # published: never changes
    after = _newest(client)
    types, instruction = _info(after)
    assert types == ["Monitor"]
    assert "Are you safe?" not in (instruction or "")
    root, was = etree.fromstring(after), etree.fromstring(first)
    assert root.findtext(f"{CAP}msgType") == "Update"
    assert root.findtext(f"{CAP}references") == ",".join(
        was.findtext(f"{CAP}{tag}") or "" for tag in ("sender", "identifier", "sent")
    )
