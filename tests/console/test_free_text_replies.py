"""Replies that chose no option but say the person is in danger or asks for help ("not safe", "ayuda") are
shown with the people who need help on the responses page, marked "a person should read this"; the others stay
at the bottom as not understood (responses.service.free_text_replies, responses.distress)."""

from __future__ import annotations

from tests.console.test_responses_page import answer, asked  # noqa: F401  (fixture reused)
from tests.delivery.conftest import add_subscribers, memory, publish  # noqa: F401  (fixtures reused)


def test_the_unrecognised_replies_are_split(asked) -> None:  # noqa: F811
    from broadcaster.db import session_scope
    from broadcaster.responses.service import free_text_replies

    answer("+15550000001", "not safe")
    answer("+15550000002", "maybe later")
    answer("+15550000003", "no estoy bien")
    answer("+15550000003", "1")  # answered since
    with session_scope() as session:
        flagged, others = free_text_replies(session, asked)
    assert [r.body for r in flagged] == ["no estoy bien", "not safe"]
    assert [r.body for r in others] == ["maybe later"]
    assert flagged[1].phone == "+15550000001" and flagged[1].terms == ["not safe"] and flagged[1].needs_a_person
    assert flagged[0].current_answer == "1" and flagged[1].current_answer is None


def test_the_api_lists_them_for_a_person_to_read(client, admin, asked) -> None:  # noqa: F811
    answer("+15550000001", "pas en sécurité")
    answer("+15550000002", "maybe later")
    resp = client.get(f"/v1/updates/{asked}/responses/needs-a-person", headers=admin)
    assert resp.status_code == 200, resp.text
    [row] = resp.json()
    assert row["body"] == "pas en sécurité" and row["needs_a_person"] is True
    assert row["terms"] == ["pas en securite"] and row["phone"] == "+15550000001"
    assert client.get(f"/v1/updates/{asked}/responses/needs-a-person").status_code == 401
    assert client.get("/v1/updates/424242/responses/needs-a-person", headers=admin).status_code == 404


def test_the_page_shows_them_with_the_people_who_need_help(signed_in, asked) -> None:  # noqa: F811
    answer("+15550000001", "not safe")
    answer("+15550000002", "maybe later")
    answer("+15550000003", "ayuda")
    html = signed_in("editor").get(f"/console/updates/{asked}/responses").text
    help_rows = html.split('id="free-text-rows">', 1)[1].split("</tbody>", 1)[0]
    assert "<q>not safe</q>" in help_rows and "<q>ayuda</q>" in help_rows
    assert help_rows.count("A person should read this") == 2
    assert 'href="tel:+15550000001"' in help_rows and 'href="tel:+15550000003"' in help_rows
    assert "maybe later" not in help_rows
    bottom = html.split('id="unrecognised-title"', 1)[1]
    assert "<q>maybe later</q>" in bottom and "not safe" not in bottom and "ayuda" not in bottom
    # the people table comes before the not-understood list
    assert html.index('id="free-text-rows"') < html.index('id="unrecognised-title"')
