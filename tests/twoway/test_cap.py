"""CAP: an update asking an open question gets responseType Execute and the question in <instruction>; the
alert still validates against the OASIS CAP 1.2 XSD; after closing, the question leaves the alert."""

from __future__ import annotations

from importlib import resources

import xmlschema
from lxml import etree
from tests.approving import confirm
from tests.twoway.conftest import new_update

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"


def _info(client, update_id: int) -> tuple[bytes, list[str], str | None]:
    resp = client.get(f"/v1/feeds/cap/{update_id}.xml")
    assert resp.status_code == 200, resp.text
    info = etree.fromstring(resp.content).find(f"{CAP}info")
    assert info is not None
    return resp.content, [n.text or "" for n in info.findall(f"{CAP}responseType")], info.findtext(f"{CAP}instruction")


def test_cap_marks_an_update_asking_for_a_response(client, admin, emergency_category, monkeypatch):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("APPROVAL_SEVERITY", "none")
    get_settings.cache_clear()
    schema = xmlschema.XMLSchema(str(resources.files("broadcaster.public").joinpath("schemas/CAP-v1.2.xsd")))
    update = new_update(client, admin, channels=["banner"])
    assert (
        client.post(f"/v1/updates/{update['id']}/publish", json=confirm(update["id"]), headers=admin).status_code == 200
    )
    body, types, instruction = _info(client, update["id"])
    schema.validate(body)
    assert types == ["Monitor", "Execute"]
    assert instruction is not None
    assert instruction.startswith(
        "Are you safe? If you received our message, reply 1 for I'm safe, 2 for I need help; "
    )
    assert client.post(f"/v1/updates/{update['id']}/question/close", headers=admin).status_code == 200
    body, types, instruction = _info(client, update["id"])
    schema.validate(body)
    assert types == ["Monitor"]
    assert "Are you safe?" not in (instruction or "")
