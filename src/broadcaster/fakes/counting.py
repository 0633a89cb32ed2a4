"""Counting at the fake provider: rates in sliding windows, sends per recipient, duplicates.

What a test proves "at the provider" is computed here from `RecordedRequest`s (their receive time `at`,
their body and whether the provider accepted them), so the numbers do not depend on what the service
believes it sent:

    reqs = sends(fake.requests("twilio"), "twilio-sms")
    profile = rate_profile(reqs, weight=sms_segments)     # max per 1 s and per 10 s, in segments
    dups = duplicates(accepted(reqs))                     # recipient -> extra copies
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from broadcaster.fakes.state import RecordedRequest

#: which recorded requests are sends, per adapter name: (provider, method, path suffix)
SEND_ENDPOINTS: dict[str, tuple[str, str, str]] = {
    "twilio-sms": ("twilio", "POST", "/Messages.json"),
    "twilio-voice": ("twilio", "POST", "/Calls.json"),
    "sendgrid": ("sendgrid", "POST", "/v3/mail/send"),
}


def sends(requests: Iterable[RecordedRequest], adapter: str) -> list[RecordedRequest]:
    """The requests that tried to send through `adapter` (accepted or not), in arrival order."""
    provider, method, suffix = SEND_ENDPOINTS[adapter]
    out = [r for r in requests if r.provider == provider and r.method == method and r.path.endswith(suffix)]
    return sorted(out, key=lambda r: r.at)


def accepted(requests: Iterable[RecordedRequest]) -> list[RecordedRequest]:
    """Those the provider accepted (2xx), including accepted-then-hung ones the client saw as timeouts."""
    return [r for r in requests if r.accepted]


def recipients(request: RecordedRequest) -> list[str]:
    """Who a send request addresses: Twilio's `To`, or every SendGrid personalization's to/cc/bcc address."""
    if request.provider == "twilio":
        to = request.form_value("To")
        return [to] if to else []
    if request.provider == "sendgrid":
        mail = request.json or {}
        out = []
        for p in mail.get("personalizations") or []:
            for field in ("to", "cc", "bcc"):
                out += [str(r.get("email", "")).lower() for r in p.get(field) or []]
        return out
    return []


def per_recipient(requests: Iterable[RecordedRequest]) -> Counter[str]:
    """How many of `requests` each recipient appears in."""
    counts: Counter[str] = Counter()
    for r in requests:
        counts.update(recipients(r))
    return counts


def duplicates(requests: Iterable[RecordedRequest]) -> dict[str, int]:
    """Recipient -> extra copies (count - 1) for every recipient addressed more than once."""
    return {who: n - 1 for who, n in per_recipient(requests).items() if n > 1}


def sms_segments(request: RecordedRequest) -> float:
    """The SMS segments a Twilio Messages request costs (carriers and Twilio meter segments); 1 otherwise."""
    from broadcaster.text.sms import analyze

    body = request.form_value("Body") if request.provider == "twilio" else None
    return float(max(1, analyze(body).segments)) if body else 1.0


def max_in_window(times: Sequence[float], window: float, weights: Sequence[float] | None = None) -> float:
    """The largest total weight (count when `weights` is None) of events in any half-open window
    [t, t + window) of the timeline: a sliding window anchored at every event."""
    pairs = sorted(zip(times, weights if weights is not None else [1.0] * len(times), strict=True))
    best = total = 0.0
    left = 0
    for t, w in pairs:
        total += w
        while pairs[left][0] <= t - window:
            total -= pairs[left][1]
            left += 1
        best = max(best, total)
    return best


@dataclass(frozen=True)
class RateProfile:
    """Sends seen at the provider: totals and the busiest 1 s and 10 s windows (in `weight` units)."""

    requests: int
    units: float
    max_1s: float
    max_10s: float
    first_at: float | None
    last_at: float | None

    @property
    def seconds(self) -> float:
        return (self.last_at - self.first_at) if self.first_at is not None and self.last_at is not None else 0.0

    def __str__(self) -> str:
        return (
            f"{self.requests} requests ({self.units:g} units) over {self.seconds:.1f} s; "
            f"busiest 1 s: {self.max_1s:g}, busiest 10 s: {self.max_10s:g}"
        )


def rate_profile(
    requests: Sequence[RecordedRequest], weight: Callable[[RecordedRequest], float] | None = None
) -> RateProfile:
    """Rate at the provider by receive time; `weight` (e.g. `sms_segments`) is what one request costs."""
    times = [r.at for r in requests]
    weights = [weight(r) if weight else 1.0 for r in requests]
    return RateProfile(
        requests=len(requests),
        units=sum(weights),
        max_1s=max_in_window(times, 1.0, weights),
        max_10s=max_in_window(times, 10.0, weights),
        first_at=min(times) if times else None,
        last_at=max(times) if times else None,
    )
