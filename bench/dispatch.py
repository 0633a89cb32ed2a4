"""Provider calls per second through the real SDK adapters against the local fake, vs raw aiohttp.

Starts `broadcaster fake-providers` in a separate process (so the fake does not share this process's
CPU), then in this one process, back to back on the same fake:

* raw: aiohttp POSTs of the same form body to the fake's Twilio Messages endpoint (the ceiling);
* twilio-sms: `TwilioSms.send` (twilio SDK, async client) to as many recipients;
* webhook: `Webhook.send` (aiohttp, HMAC-signed JSON);
* sendgrid: `SendGridEmail.send` (sendgrid SDK in threads), counted in recipients/s (1000 per request).

Prints calls/s and each adapter's ratio to raw. Usage: `.venv/bin/python bench/dispatch.py [-n 5000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import subprocess
import sys
import time
from urllib.parse import urlencode

import aiohttp

from broadcaster.channels.base import Message, Recipient
from broadcaster.channels.sendgrid import SendGridEmail
from broadcaster.channels.twilio import TwilioSms
from broadcaster.channels.webhook import Webhook
from broadcaster.fakes.testing import free_port
from broadcaster.settings import Settings

SID = "AC" + "0" * 32


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def raw(url: str, n: int, concurrency: int) -> tuple[float, float]:
    auth = "Basic " + base64.b64encode(f"{SID}:token".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
    endpoint = f"{url}/2010-04-01/Accounts/{SID}/Messages.json"
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def one(i: int) -> None:
            body = urlencode({"To": f"+1555{i:07d}", "From": "+15005550006", "Body": "hello", "StatusCallback": "x"})
            async with sem, session.post(endpoint, data=body, headers=headers) as resp:
                await resp.json()
                assert resp.status == 201

        await asyncio.gather(*(one(i) for i in range(200)))
        t0, c0 = time.perf_counter(), cpu()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - t0), (cpu() - c0) * 1000 / n


async def through(adapter, message: Message, recipients: list[Recipient]) -> tuple[float, float]:
    await adapter.send(message, recipients[:200])
    t0, c0 = time.perf_counter(), cpu()
    results = await adapter.send(message, recipients)
    elapsed = time.perf_counter() - t0
    assert all(r.ok for r in results), next(r for r in results if not r.ok)
    await adapter.aclose()
    return len(recipients) / elapsed, (cpu() - c0) * 1000 / len(recipients)


async def main(n: int, concurrency: int, url: str) -> None:
    settings = Settings(
        _env_file=None,
        twilio_base_url=url,
        twilio_account_sid=SID,
        twilio_auth_token="token",
        twilio_from_number="+15005550006",
        sendgrid_base_url=url,
        sendgrid_api_key="SG.key",
        sendgrid_from_email="a@example.org",
        webhook_urls=[f"{url}/hooks/bench"],
        webhook_secret="secret",
        provider_max_connections=concurrency,
    )
    rows = [("raw aiohttp (ceiling)", *await raw(url, n, concurrency))]
    phones = [Recipient(str(i), f"+1555{i:07d}", idempotency_key=f"k{i}") for i in range(n)]
    rows.append(("twilio-sms (twilio SDK)", *await through(TwilioSms(settings), Message(text="hello"), phones)))
    hooks = [Recipient(str(i), f"{url}/hooks/bench", idempotency_key=f"k{i}") for i in range(n)]
    rows.append(("webhook (aiohttp, signed)", *await through(Webhook(settings), Message(text="hello"), hooks)))
    mails = [Recipient(str(i), f"user{i}@example.org", idempotency_key=f"k{i}") for i in range(n * 4)]
    email = Message(text="hello", html="<p>hello</p>", subject="s")
    rows.append(("sendgrid (recipients/s)", *await through(SendGridEmail(settings), email, mails)))
    ceiling = rows[0][1]
    print(f"{'path':32} {'calls/s':>10} {'x raw':>7} {'client CPU ms/call':>19}")
    for name, rate, cpu_ms in rows:
        print(f"{name:32} {rate:10.0f} {rate / ceiling:7.2f} {cpu_ms:19.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="calls per path")
    parser.add_argument("-c", "--concurrency", type=int, default=100, help="requests in flight")
    parser.add_argument("--url", help="use an already running fake instead of starting one")
    args = parser.parse_args()
    url = args.url
    proc = None
    if url is None:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "broadcaster", "fake-providers", "--port", str(port)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env={**os.environ, "LOG_LEVEL": "WARNING"})
        time.sleep(2.0)
    try:
        asyncio.run(main(args.n, args.concurrency, url))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
