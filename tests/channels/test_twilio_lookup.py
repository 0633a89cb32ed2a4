"""Twilio `lookup` after a timed-out send, through the real SDK against the fake's Messages and Calls lists;
and the fake's list endpoints, random faults and counting helpers that the contention tests rely on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from twilio.rest import Client

from broadcaster.channels.base import LookupStatus, Message, Recipient
from broadcaster.channels.twilio import TwilioSms, TwilioVoice, _TwilioHttp
from broadcaster.fakes.counting import duplicates, max_in_window, rate_profile, sends, sms_segments
from broadcaster.fakes.credentials import TWILIO_SID, TWILIO_TOKEN
from broadcaster.fakes.state import RecordedRequest
from broadcaster.fakes.testing import running_fake_process

TO = "+15550001234"


def _since() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=1)


async def test_sms_lookup_finds_the_accepted_message(fake, make_settings):
    adapter = TwilioSms.from_settings(make_settings())
    message = Message(text="Boil water: north district ⚠")
    try:
        since = _since()
        assert (await adapter.lookup(message, Recipient("d1", TO), since)).status is LookupStatus.not_found
        [sent] = await adapter.send(message, [Recipient("d1", TO)])
        await adapter.send(Message(text="another text"), [Recipient("d2", TO)])
        await adapter.send(message, [Recipient("d3", "+15550009999")])
        found = await adapter.lookup(message, Recipient("d1", TO), since)
        other_text = await adapter.lookup(Message(text="not sent"), Recipient("d1", TO), since)
        later = await adapter.lookup(message, Recipient("d1", TO), datetime.now(UTC) + timedelta(seconds=2))
    finally:
        await adapter.aclose()
    assert found.status is LookupStatus.found and found.provider_message_id == sent.provider_message_id
    assert other_text.status is LookupStatus.not_found
    assert later.status is LookupStatus.not_found  # sent before `since`: not this attempt's message
    lists = [r for r in fake.requests("twilio") if r.method == "GET"]
    assert lists and all(r.query_params["To"] == [TO] and r.query_params["From"] == ["+15005550006"] for r in lists)


async def test_sms_lookup_finds_an_accepted_then_hung_send(fake, make_settings):
    """The send timed out on our side, but Twilio had accepted it: the lookup must say found."""
    adapter = TwilioSms.from_settings(make_settings(provider_timeout_seconds=0.3))
    message = Message(text="Evacuate zone B now")
    fake.inject_random("twilio", 1.0, timeout_fraction=1.0, accept_fraction=1.0, hang_seconds=1.0)
    try:
        since = _since()
        [result] = await adapter.send(message, [Recipient("d1", TO)])
        fake.inject_random("twilio", 0)
        found = await adapter.lookup(message, Recipient("d1", TO), since)
    finally:
        await adapter.aclose()
    assert not result.ok and result.outcome_unknown
    assert found.status is LookupStatus.found
    [post] = [r for r in fake.requests("twilio") if r.method == "POST"]
    assert post.hang == "after_accept" and post.accepted


async def test_sms_lookup_after_a_hang_before_accept_is_not_found(fake, make_settings):
    adapter = TwilioSms.from_settings(make_settings(provider_timeout_seconds=0.3))
    message = Message(text="Evacuate zone C now")
    fake.inject_random("twilio", 1.0, timeout_fraction=1.0, accept_fraction=0.0, hang_seconds=1.0)
    try:
        since = _since()
        [result] = await adapter.send(message, [Recipient("d1", TO)])
        fake.inject_random("twilio", 0)
        missing = await adapter.lookup(message, Recipient("d1", TO), since)
    finally:
        await adapter.aclose()
    assert result.outcome_unknown
    assert missing.status is LookupStatus.not_found
    await asyncio.sleep(0.8)  # the fake finishes the hang and answers 504 to nobody
    [post] = [r for r in fake.requests("twilio") if r.method == "POST"]
    assert post.hang == "before_accept" and not post.accepted and post.status == 504


async def test_sms_lookup_pages_through_many_messages(fake, make_settings):
    adapter = TwilioSms.from_settings(make_settings())
    message = Message(text="first of many")
    try:
        since = _since()
        await adapter.send(message, [Recipient("d0", TO)])
        await adapter.send(Message(text="filler"), [Recipient(f"d{i}", TO) for i in range(1, 120)])
        found = await adapter.lookup(message, Recipient("d0", TO), since)
    finally:
        await adapter.aclose()
    assert found.status is LookupStatus.found
    assert len([r for r in fake.requests("twilio") if r.method == "GET"]) == 3  # 50 + 50 + 20, newest first


async def test_lookup_api_error_is_unknown(fake, make_settings):
    adapter = TwilioSms.from_settings(make_settings())
    fake.inject("twilio", 503, path="/Messages.json")
    try:
        result = await adapter.lookup(Message(text="x"), Recipient("d1", TO), _since())
    finally:
        await adapter.aclose()
    assert result.status is LookupStatus.unknown and "503" in result.detail


async def test_voice_lookup_by_calls_list(fake, make_settings):
    adapter = TwilioVoice.from_settings(make_settings(twilio_voice_from="+15005550007"))
    message = Message(text="Evacuate now")
    try:
        since = _since()
        assert (await adapter.lookup(message, Recipient("d1", TO), since)).status is LookupStatus.not_found
        [sent] = await adapter.send(message, [Recipient("d1", TO)])
        found = await adapter.lookup(message, Recipient("d1", TO), since)
        elsewhere = await adapter.lookup(message, Recipient("d2", "+15550007777"), since)
    finally:
        await adapter.aclose()
    assert found.status is LookupStatus.found and found.provider_message_id == sent.provider_message_id
    assert elsewhere.status is LookupStatus.not_found


async def test_messages_list_filters_and_pages_like_twilio(fake):
    """The SDK's own list/stream calls: To/From filters, DateSent by day, paging, newest first."""
    http = _TwilioHttp(fake.url, 5, 10)
    client = Client(TWILIO_SID, TWILIO_TOKEN, http_client=http)
    try:
        for i in range(7):
            await client.messages.create_async(to=TO, from_="+15005550006", body=f"m{i}")
        await client.messages.create_async(to="+15550005555", from_="+15005550006", body="other")
        today = datetime.now(UTC)
        listed = await client.messages.list_async(to=TO, page_size=3)
        after_today = await client.messages.list_async(to=TO, date_sent_after=today)
        before_yesterday = await client.messages.list_async(to=TO, date_sent_before=today - timedelta(days=1))
        page = await client.messages.page_async(to=TO, page_size=5)
        second = await page.next_page_async()
    finally:
        await http.close()
    assert [m.body for m in listed] == [f"m{i}" for i in reversed(range(7))]
    assert all(m.to == TO and m.sid.startswith("SM") and m.date_created is not None for m in listed)
    assert len(after_today) == 7 and before_yesterday == []
    assert len(list(page)) == 5 and second is not None and [m.body for m in second] == ["m1", "m0"]


def test_random_faults_mix_statuses_and_timeouts(fake):
    fake.inject_random("twilio", 0.5, [429, 503], timeout_fraction=0.2, hang_seconds=0.05, seed=7)
    path = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    statuses = []
    with httpx.Client(base_url=fake.url, auth=(TWILIO_SID, TWILIO_TOKEN), timeout=5) as http:
        for i in range(200):
            resp = http.post(path, data={"To": f"+1555000{i:04d}", "From": "+15005550006", "Body": "x"})
            statuses.append(resp.status_code)
            if resp.status_code == 429:
                assert resp.headers["retry-after"] == "1"
        fake.inject_random("twilio", 0)
        assert http.post(path, data={"To": TO, "From": "+15005550006", "Body": "x"}).status_code == 201
    failed = [s for s in statuses if s != 201]
    assert 60 <= len(failed) <= 140  # about half
    assert {429, 503} <= set(failed) <= {429, 503, 504}
    hangs = [r.hang for r in fake.requests("twilio") if r.hang]
    assert "after_accept" in hangs and "before_accept" in hangs
    # an accepted-then-hung request answered 201 (late); it is in the provider's list
    assert statuses.count(201) == len([r for r in fake.requests("twilio") if r.accepted]) - 1


def _req(at: float, to: str, body: str = "x", status: int = 201) -> RecordedRequest:
    form = f"To={to.replace('+', '%2B')}&From=%2B15005550006&Body={body}"
    return RecordedRequest(
        "twilio", "POST", f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json", "", {}, form.encode(), status, at
    )


def test_counting_windows_and_duplicates():
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0, [1, 1, 1, 5, 1]) == 7
    assert max_in_window([], 10.0) == 0
    reqs = [
        _req(0.0, "+15550000001"),
        _req(0.2, "+15550000002"),
        _req(3.0, "+15550000001"),
        _req(4, "+1555", status=500),
    ]
    assert duplicates([r for r in reqs if r.accepted]) == {"+15550000001": 1}
    assert len(sends(reqs, "twilio-sms")) == 4 and sends(reqs, "twilio-voice") == []
    long_text = "Stromausfall%20%F0%9F%98%80%20" + "x" * 100  # emoji: UCS-2, 116 units = 2 segments of 67
    assert sms_segments(_req(0, "+1", long_text)) == 2
    profile = rate_profile(reqs, sms_segments)
    assert (profile.requests, profile.max_1s, profile.max_10s) == (4, 2, 4)


@pytest.mark.slow
def test_fake_in_its_own_process(tmp_path):
    with running_fake_process() as fake:
        fake.inject_random("twilio", 1.0, [500], seed=1)
        with httpx.Client(base_url=fake.url, auth=(TWILIO_SID, TWILIO_TOKEN), timeout=5) as http:
            path = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
            assert http.post(path, data={"To": TO, "From": "+15005550006", "Body": "x"}).status_code == 500
            fake.reset()
            assert http.post(path, data={"To": TO, "From": "+15005550006", "Body": "x"}).status_code == 201
        [req] = fake.requests("twilio")
        assert req.accepted and req.form_value("To") == TO and req.at > 0 and fake.count() == 1
