"""The credentials the fake providers accept in strict mode, and what `RunningFake.env()` configures."""

from __future__ import annotations

from broadcaster.fakes.state import Credentials

#: credentials the fake accepts (any non-empty value works; these are just convenient)
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "fake-twilio-token"  # noqa: S105 (not a secret: the fake's)
SENDGRID_KEY = "SG.fake-sendgrid-key"
MASTODON_TOKEN = "fake-mastodon-token"  # noqa: S105
BLUESKY_HANDLE = "broadcaster.bsky.example"
BLUESKY_PASSWORD = "fake-bluesky-app-password"  # noqa: S105

#: what `running_fake(strict=True)` checks auth against (the values `RunningFake.env()` configures)
CREDENTIALS = Credentials(
    twilio_sid=TWILIO_SID,
    twilio_token=TWILIO_TOKEN,
    sendgrid_key=SENDGRID_KEY,
    x_consumer_key="fake-consumer-key",
    x_consumer_secret="fake-consumer-secret",  # noqa: S106 (the fake's)
    x_access_token="fake-access-token",  # noqa: S106
    x_access_secret="fake-access-secret",  # noqa: S106
    mastodon_token=MASTODON_TOKEN,
    bluesky_handle=BLUESKY_HANDLE,
    bluesky_password=BLUESKY_PASSWORD,
)
