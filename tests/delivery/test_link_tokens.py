"""Emailed links (issue 10): confirmation by POST from the landing page, confirm links expire after 7 days,
are bound to the address and cannot undo a later unsubscribe, and subscriber ids are never reused."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select


@pytest.fixture
def secret(monkeypatch, db_url):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("SECRET_KEY", "test-secret-key-for-tokens")
    get_settings.cache_clear()


def _row(email: str):
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber

    with session_scope() as session:
        row = session.scalar(select(Subscriber).where(Subscriber.email == email))
        session.expunge(row)
        return row


def _self_subscriber(email: str) -> int:
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber

    with session_scope() as session:
        row = Subscriber(source="self", email=email, email_confirmed=False)
        session.add(row)
        session.flush()
        return row.id


def _path(url: str) -> str:
    return url.removeprefix("http://testserver")


def test_get_shows_a_button_and_only_post_confirms(client, secret):
    from broadcaster.subscribers.tokens import confirm_url

    sid = _self_subscriber("r@example.org")
    link = _path(confirm_url(sid, "r@example.org"))
    for _ in range(3):  # a mail scanner following the link, several times
        page = client.get(link)
        assert page.status_code == 200 and '<form method="post"' in page.text
    assert not _row("r@example.org").email_confirmed
    [action] = re.findall(r'action="([^"]+)"', page.text)
    assert client.post(action.replace("&amp;", "&")).status_code == 200
    assert _row("r@example.org").email_confirmed
    assert "already confirmed" in client.get(link).text


def test_confirm_links_expire_after_7_days(client, secret):
    from broadcaster.subscribers.tokens import CONFIRM_MAX_AGE, confirm_url

    assert CONFIRM_MAX_AGE == 7 * 24 * 3600
    sid = _self_subscriber("old@example.org")
    stale = _path(confirm_url(sid, "old@example.org", issued=int(time.time()) - CONFIRM_MAX_AGE - 60))
    assert client.get(stale).status_code == 400
    assert client.post(stale).status_code == 400
    fresh = _path(confirm_url(sid, "old@example.org", issued=int(time.time()) - CONFIRM_MAX_AGE + 600))
    assert client.post(fresh).status_code == 200


def test_confirm_link_is_bound_to_the_address(client, secret, auth):
    from broadcaster.subscribers.tokens import confirm_url

    sid = _self_subscriber("first@example.org")
    link = _path(confirm_url(sid, "first@example.org"))
    patched = client.patch(f"/v1/subscribers/{sid}", json={"email": "second@example.org"}, headers=auth("write"))
    assert patched.status_code == 200
    assert client.post(link).status_code == 400
    assert not _row("second@example.org").email_confirmed


def test_an_old_confirm_link_cannot_undo_a_later_unsubscribe(client, secret):
    from broadcaster.subscribers.tokens import confirm_url, unsubscribe_url

    sid = _self_subscriber("u@example.org")
    link = _path(confirm_url(sid, "u@example.org", issued=int(time.time()) - 60))
    assert client.post(link).status_code == 200
    assert client.post(_path(unsubscribe_url(sid)), data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert _row("u@example.org").email_opted_out
    replay = client.post(link)
    assert replay.status_code == 400
    assert _row("u@example.org").email_opted_out  # still unsubscribed
    # a fresh link (the person subscribes again) does bring them back
    assert client.post(_path(confirm_url(sid, "u@example.org"))).status_code == 200
    assert not _row("u@example.org").email_opted_out


def test_subscriber_ids_are_never_reused(client, secret, auth):
    """A deleted subscriber's unsubscribe link opted out the next subscriber given the same id (SQLite reused
    the highest id after a delete); ids are AUTOINCREMENT now."""
    from broadcaster.subscribers.tokens import unsubscribe_url

    w = auth("write")
    first = client.post("/v1/subscribers", json={"email": "gone@example.org", "email_confirmed": True}, headers=w)
    old_link = _path(unsubscribe_url(first.json()["id"]))
    assert client.delete(f"/v1/subscribers/{first.json()['id']}", headers=w).status_code == 204
    second = client.post("/v1/subscribers", json={"email": "next@example.org", "email_confirmed": True}, headers=w)
    assert second.json()["id"] != first.json()["id"]
    assert client.post(old_link, data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert not _row("next@example.org").email_opted_out
