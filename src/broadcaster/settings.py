"""Settings from the environment and `.env` (pydantic-settings). Every field is documented in `.env.example`."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from broadcaster import clock

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: where a built wheel carries the checkout's top-level data folders (setup.py copies them)
BUNDLED_ROOT = Path(__file__).resolve().parent / "bundled"


def bundled(name: str) -> Path:
    """A data folder or file kept at the top of the checkout (templates, migrations, examples/crisis-plan.yaml):
    the installed package's copy in a wheel install, else the checkout's own."""
    installed = BUNDLED_ROOT / name
    return installed if installed.exists() else PROJECT_ROOT / name


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """All configuration. Secrets are `SecretStr` so they never print in logs or reprs."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- core -------------------------------------------------------------------------------------
    # Database: a SQLite file by default; postgresql://user:pass@host/db switches to PostgreSQL (psycopg 3)
    database_url: str = "sqlite:///./var/broadcaster.db"
    # Address `broadcaster serve` binds to
    api_host: str = "127.0.0.1"
    # Port `broadcaster serve` listens on
    api_port: int = 8000
    # Public base URL of this service, used in links, banners, feeds and provider callbacks
    public_url: str = "http://127.0.0.1:8000"
    # Secret for signing (unsubscribe links, tokens); set a long random value in production
    secret_key: SecretStr | None = None
    # Log level: DEBUG, INFO, WARNING or ERROR
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Let provider SDKs and HTTP clients log requests (headers, bodies) at LOG_LEVEL; off holds them at WARNING.
    # Secrets are redacted from logs either way
    log_provider_http: bool = False
    # Largest accepted request body in bytes; bigger requests get 413
    max_body_bytes: int = 256 * 1024
    # Largest subscriber CSV accepted by POST /v1/subscribers/import in bytes (streamed to the database, imported
    # in the background); the default 50 MB holds about 1M rows
    max_import_bytes: int = Field(50 * 1024 * 1024, ge=1)
    # Largest GeoJSON FeatureCollection accepted by POST /v1/areas/import in bytes (named areas for targeting)
    max_area_import_bytes: int = Field(20 * 1024 * 1024, ge=1)
    # Nominatim-compatible geocoder (e.g. http://nominatim.internal) used at CSV import for an `address` column
    # when a row's lat/lon are empty; empty: off (the address column is then ignored)
    geocoder_url: str | None = None
    # Timeout of one geocoder request in seconds
    geocoder_timeout_seconds: float = Field(5.0, gt=0)
    # Organisation name shown on the status page, banner and messages
    org_name: str = "Example Org"
    # Time zone (IANA name, e.g. Europe/Paris) in which maintenance notices also give their times (always in UTC too)
    site_timezone: str = "UTC"
    # Locale of updates that do not name one
    default_locale: str = "en"
    # Comma-separated locales offered to subscribers and the status page
    supported_locales: CsvList = Field(default_factory=lambda: ["en", "fr", "es", "de"])
    # Folder of message templates (Jinja2); default: the checkout's templates/, or the installed package's copy
    templates_dir: Path = bundled("templates")
    # Optional crisis-plan YAML loaded into the routing map when the service starts (a change that loosens safety
    # is stored as a proposal that a second person approves)
    routing_map_file: Path | None = None

    # --- worker / delivery --------------------------------------------------------------------------
    # Run the delivery worker inside `broadcaster serve` (turn off and run `broadcaster worker` to scale out)
    worker_in_process: bool = True
    # Deliveries a worker claims per batch
    worker_batch_size: int = 500
    # Seconds a claim is leased (a heartbeat renews it); a dead worker's rows are sent again after this
    worker_lease_seconds: int = 60
    # Seconds before a timed-out send is looked up at the provider (resent only when not found there)
    worker_lookup_delay_seconds: float = Field(2.0, ge=0)
    # Provider calls (chunks) a worker keeps in flight at once; a kill -9 can resend at most this x chunk size
    worker_concurrency: int = 100
    # Seconds an idle worker waits before looking for work again (PostgreSQL also wakes it with NOTIFY)
    worker_poll_seconds: float = 1.0
    # Seconds between publishing (or approving) a live update and the first provider call: the console shows a
    # countdown with a Stop button meanwhile (POST /v1/broadcasts/{id}/stop); test sends skip it; 0: no hold
    send_hold_seconds: float = Field(10.0, ge=0, le=3600)
    # Attempts per delivery before a transient failure is recorded as failed
    retry_max_attempts: int = 8
    # First retry backoff in seconds; doubles per attempt, with full jitter
    retry_base_seconds: float = 2.0
    # Longest backoff between two attempts, in seconds
    retry_max_seconds: float = 600.0
    # Transient failures on one adapter before a delivery fails over to the next adapter of its kind
    worker_failover_after: int = 2
    # Seconds between heartbeat comments on GET /v1/broadcasts/{id}/events (keeps proxies from closing it)
    broadcast_events_heartbeat_seconds: float = Field(15.0, gt=0)
    # Port of the standalone worker's Prometheus metrics endpoint (0 = off)
    worker_metrics_port: int = 0
    # Quiet hours for escalations of non-critical updates, local time "HH:MM-HH:MM" (e.g. 22:00-07:00; empty =
    # none): re-sends and escalation summaries due inside them wait until they end; critical updates ignore them
    quiet_hours: str = ""
    # Time zone (IANA name) of QUIET_HOURS
    quiet_hours_timezone: str = "UTC"
    # Seconds between the escalation runner's looks for due escalation steps
    escalation_poll_seconds: float = Field(5.0, gt=0)
    # Enable the in-memory test adapters memory, memory-backup (sms) and memory-email (never in production)
    memory_adapter_enabled: bool = False
    # JSON-lines file the memory adapters append every send to (lets tests watch worker processes)
    memory_adapter_log: Path | None = None
    # Incident severity from which an update needs a second person's approval: info, minor, major, critical or none
    approval_severity: Literal["info", "minor", "major", "critical", "none"] = "critical"
    # An update that would reach more recipients than this on one channel needs approval too (0: off)
    approval_audience_threshold: int = Field(10000, ge=0)
    # After an incident's severity drops below APPROVAL_SEVERITY, its updates still need approval for this
    # long: seconds or an ISO 8601 duration (PT1H); 0 turns the rule off
    approval_downgrade_window: timedelta = timedelta(hours=1)
    # A person newly given the approver or admin role, or a new key with the publish or admin scope, cannot
    # approve for this long (every admin is told meanwhile): seconds or an ISO 8601 duration (PT1H); 0: off
    approver_grant_delay: timedelta = timedelta(hours=1)
    # Minutes an approval request of a critical incident waits before it escalates: every admin is asked too, and
    # the approvers are reminded (0: never escalate)
    approval_escalate_minutes: float = Field(10.0, ge=0)
    # Seconds between the approval-notice runner's looks for new approval requests and escalations
    approval_notify_poll_seconds: float = Field(5.0, gt=0)

    # --- Twilio (SMS + voice) -------------------------------------------------------------------------
    # Twilio account SID (AC...); SMS and voice are off until it, TWILIO_AUTH_TOKEN and a sender are set
    twilio_account_sid: str | None = None
    # Twilio auth token; also verifies the signature of Twilio's webhooks
    twilio_auth_token: SecretStr | None = None
    # Sender number for SMS and voice (E.164), unless TWILIO_MESSAGING_SERVICE_SID is set for SMS
    twilio_from_number: str | None = None
    # Twilio Messaging Service SID (MG...) to send SMS from a sender pool
    twilio_messaging_service_sid: str | None = None
    # Override Twilio's API base URL (a proxy or the local fake provider server)
    twilio_base_url: str | None = None
    # SMS segments sent per second at most (your Twilio sender's throughput, which counts segments)
    twilio_sms_rate_per_second: float = 100.0
    # Voice calls started per second at most
    twilio_voice_rate_per_second: float = 1.0
    # Most SMS segments one message may use; longer texts use the summary or are shortened
    sms_max_segments: int = 3
    # Caller id for voice calls (E.164); defaults to TWILIO_FROM_NUMBER
    twilio_voice_from: str | None = None
    # Twilio voice for <Say> (e.g. "alice", "Polly.Joanna"); empty uses Twilio's default voice
    twilio_voice: str = "alice"
    # Status callback URL given to Twilio (delivery and idempotency keys are appended as query);
    # default PUBLIC_URL/v1/webhooks/twilio/status
    twilio_status_callback_url: str | None = None

    # --- SendGrid (email) -------------------------------------------------------------------------------
    # SendGrid API key; email is off until it and SENDGRID_FROM_EMAIL are set
    sendgrid_api_key: SecretStr | None = None
    # Sender address of alert emails (a verified SendGrid sender)
    sendgrid_from_email: str | None = None
    # Sender name of alert emails
    sendgrid_from_name: str = "Alerts"
    # Override SendGrid's API base URL (a proxy or the local fake provider server)
    sendgrid_base_url: str | None = None
    # Public key of SendGrid's signed Event Webhook (verifies delivery events)
    sendgrid_event_public_key: str | None = None
    # SendGrid API requests per second at most
    sendgrid_rate_per_second: float = 10.0
    # Personalizations per SendGrid mail/send request (SendGrid accepts at most 1000)
    sendgrid_batch_size: int = 1000

    # --- X (tweepy) --------------------------------------------------------------------------------------
    # X (Twitter) API consumer key; posting to X is off until all four X credentials are set
    x_consumer_key: str | None = None
    # X API consumer secret
    x_consumer_secret: SecretStr | None = None
    # X access token of the account that posts
    x_access_token: str | None = None
    # X access token secret
    x_access_token_secret: SecretStr | None = None
    # Override X's API base URL (a proxy or the local fake provider server)
    x_base_url: str | None = None

    # --- Mastodon (optional extra) ---------------------------------------------------------------------
    # Mastodon instance URL (e.g. https://mastodon.social); Mastodon is off until this and the token are set
    mastodon_base_url: str | None = None
    # Mastodon access token with the write:statuses scope
    mastodon_access_token: SecretStr | None = None
    # Maximum status length of your Mastodon instance (500 unless the instance raised it)
    mastodon_max_characters: int = 500
    # Visibility of posted statuses: public, unlisted, private or direct
    mastodon_visibility: str = "public"

    # --- Bluesky (optional extra) ----------------------------------------------------------------------
    # Bluesky (AT Protocol) server URL: https://bsky.social, or your own PDS
    bluesky_base_url: str = "https://bsky.social"
    # Bluesky handle (e.g. alerts.example.org); Bluesky is off until this and the app password are set
    bluesky_handle: str | None = None
    # Bluesky app password (Settings > Privacy and security > App passwords), not the account password
    bluesky_app_password: SecretStr | None = None

    # --- outbound webhooks -----------------------------------------------------------------------------
    # Comma-separated URLs that receive every published update as an outbound webhook
    webhook_urls: CsvList = Field(default_factory=list)
    # Secret for the HMAC-SHA256 signature header of outbound webhooks
    webhook_secret: SecretStr | None = None
    # Payload shape of outbound webhooks: json (Broadcaster's own), slack (Slack incoming webhook)
    # or teams (MessageCard)
    webhook_format: str = "json"

    # --- channels and rendering (all adapters) -----------------------------------------------------------
    # Seconds before a provider call times out (counted as a transient failure)
    provider_timeout_seconds: float = 10.0
    # Open HTTP connections per adapter (aiohttp connection pool size)
    provider_max_connections: int = 100
    # Maximum characters of the banner's short text (longer texts use the summary or are shortened)
    banner_text_max_chars: int = 200
    # Maximum characters a voice call reads out (Twilio rejects TwiML over 4,000 characters)
    voice_max_chars: int = 1500

    # --- public surfaces (banner, status page, feeds) ------------------------------------------------
    # Seconds browsers and CDNs may cache the banner, status page and feeds (Cache-Control max-age)
    banner_max_age: int = 10
    # Seconds a cache may keep serving a stale banner while it revalidates (stale-while-revalidate)
    banner_stale_while_revalidate: int = 30
    # Default seconds between banner.js refreshes (a page can override it with data-refresh)
    banner_refresh_seconds: int = 60
    # SQLite only: seconds between checks for content published by another process
    banner_check_seconds: float = 2.0
    # CAP 1.2 <sender> of the alert feed: an address-like id without spaces, commas, '<' or '&'
    cap_sender: str = "broadcaster@example.org"
    # CAP profile on top of CAP 1.2: empty (plain CAP 1.2), ipaws (adds the USA IPAWS v1.0 profile's
    # <code>IPAWSv1.0</code>, SAME <eventCode>, <expires>, EAS-ORG and CMAMtext parameters and SAME geocodes) or
    # google (Google Public Alerts: <expires>, and a shape in every <area>, CAP_JURISDICTION_CIRCLE when none)
    cap_profile: Literal["", "ipaws", "google"] = ""
    # google profile: your jurisdiction as a CAP circle "lat,lon radius_km" (e.g. 40.71,-74.0 25), used for a
    # message without an area of its own and for a named area whose outline is unknown; required with google
    cap_jurisdiction_circle: str = ""
    # ipaws profile: the SAME event code of every message (3 letters, e.g. CEM civil emergency message)
    cap_ipaws_event_code: str = Field("CEM", pattern=r"^[A-Z]{3}$")
    # ipaws profile: the EAS-ORG parameter (EAS, CIV, WXR or PEP)
    cap_ipaws_eas_org: Literal["EAS", "CIV", "WXR", "PEP"] = "CIV"
    # ipaws profile: comma-separated 6-digit SAME (FIPS) codes of your jurisdiction, put in every <area>
    cap_ipaws_geocodes: CsvList = Field(default_factory=list)
    # ipaws and google profiles: hours after <sent> a message expires (<expires>, which both profiles require)
    cap_expires_hours: int = Field(24, ge=1, le=720)

    # --- inbound alerts (Alertmanager, Grafana, generic webhooks) ---------------------------------------
    # At most one public update per alert-driven incident this often, in minutes (flapping limit); a change
    # inside the window goes out when it ends. A rule's min_update_minutes overrides it
    alert_min_update_minutes: float = Field(10.0, ge=0)

    # --- static publishing (public pages as files) ---------------------------------------------------------
    # Where to write the banner, status page and feeds on every change: empty (off), a local directory path, or
    # s3://bucket/prefix (S3-compatible storage through boto3)
    static_target: str = ""
    # Public base URL the static copy is served from (e.g. https://status-static.example.org); banner.js reads the
    # banner there first and falls back to this service
    static_public_url: str = ""
    # S3 endpoint for S3-compatible storage (MinIO, Cloudflare R2, ...); empty: AWS
    static_s3_endpoint_url: str = ""
    # S3 region
    static_s3_region: str = "us-east-1"
    # S3 access key id; empty: boto3's default credential chain (environment, profile, instance role)
    static_s3_access_key_id: str = ""
    # S3 secret access key
    static_s3_secret_access_key: SecretStr | None = None
    # Longest wait between two attempts of a failed static publish, in seconds (backoff doubles from 1 s)
    static_retry_max_seconds: float = Field(300.0, gt=0)

    # --- public self-service subscribe (abuse limits) --------------------------------------------------
    # Comma-separated proxies (IPs or CIDRs) whose X-Forwarded-For is trusted for the client's IP; empty:
    # the TCP peer is the client
    trusted_proxies: CsvList = Field(default_factory=list)
    # Subscribe requests one client IP may make (`limits` notation, several separated by ';')
    subscribe_rate_limit: str = "5/minute;20/hour"
    # Phone signups per number prefix (the first SUBSCRIBE_PHONE_PREFIX_DIGITS digits), from any IP
    subscribe_phone_prefix_rate_limit: str = "10/hour"
    # Digits of a number (country code included) that form its prefix for SUBSCRIBE_PHONE_PREFIX_RATE_LIMIT
    subscribe_phone_prefix_digits: int = Field(7, ge=1, le=15)
    # Storage of the subscribe rate limits (a `limits` storage URI): memory:// counts per process (fine for the
    # embedded single process); redis://host:6379 shares them between API processes (needs the redis extra)
    rate_limit_storage_uri: str = "memory://"
    # Per-IP rate limits (subscribe form, password sign-in) count an IPv6 client by its network of this many
    # bits (1-128): 64 is what one home line or one server usually gets, so rotating addresses inside it
    # does not escape the limit; 128 counts each address alone. IPv4 addresses count one by one
    rate_limit_ipv6_prefix: int = Field(64, ge=1, le=128)
    # Comma-separated countries (ISO 3166 codes, e.g. US,CA) whose numbers may sign up on the public form;
    # * allows any country; empty: the country of TWILIO_FROM_NUMBER (no phone signups when that is unset)
    subscribe_phone_countries: CsvList = Field(default_factory=list)
    # Seconds between two confirmation messages to one address or number
    subscribe_confirm_interval_seconds: int = Field(3600, ge=0)
    # Human check on the public subscribe form: empty (off), pow (built-in proof of work), siteverify
    # (hCaptcha/Turnstile-compatible: posts the token to SUBSCRIBE_VERIFIER_URL), or module:function
    subscribe_verifier: str = ""
    # Secret sent with siteverify checks (the hCaptcha or Turnstile secret key)
    subscribe_verifier_secret: SecretStr | None = None
    # siteverify endpoint, e.g. https://api.hcaptcha.com/siteverify or
    # https://challenges.cloudflare.com/turnstile/v0/siteverify
    subscribe_verifier_url: str = ""
    # Leading zero bits the built-in proof of work asks for (each bit doubles the client's work)
    subscribe_pow_difficulty: int = Field(18, ge=1, le=32)
    # Comma-separated extra origins (e.g. https://www.example.org) whose pages may post the public forms;
    # this service's own origin is always allowed
    form_allowed_origins: CsvList = Field(default_factory=list)
    # CSP frame-ancestors of the HTML pages (status page, subscribe and unsubscribe pages)
    frame_ancestors: str = "'none'"
    # CSP frame-ancestors of the embeddable banner (/v1/banner.html), e.g. https://www.example.org
    banner_frame_ancestors: str = "*"

    # --- console: people and sign-in ----------------------------------------------------------------------
    # Minutes a console session stays signed in without activity
    console_session_idle_minutes: int = Field(30, ge=1)
    # Hours a console session lasts at most, active or not (then the person signs in again)
    console_session_max_hours: float = Field(12, gt=0)
    # Password sign-in attempts per account (`limits` notation, several separated by ';'); counted in
    # RATE_LIMIT_STORAGE_URI
    login_rate_limit_account: str = "5/minute;20/hour"
    # Password sign-in attempts per client IP (`limits` notation)
    login_rate_limit_ip: str = "20/minute;200/hour"
    # OpenID Connect issuer URL (its /.well-known/openid-configuration is read); SSO is off while empty
    oidc_issuer: str = ""
    # OpenID Connect client id registered at the provider (redirect URI: PUBLIC_URL/console/oidc/callback)
    oidc_client_id: str = ""
    # OpenID Connect client secret
    oidc_client_secret: SecretStr | None = None
    # Name shown on the sign-in button ("Sign in with <name>")
    oidc_provider_name: str = "SSO"
    # Claim (in the ID token or userinfo) that lists the person's groups
    oidc_roles_claim: str = "groups"
    # Comma-separated group:role pairs, e.g. comms-editors:editor,comms-approvers:approver,it-admins:admin;
    # roles are set from the claim at each SSO sign-in
    oidc_role_map: CsvList = Field(default_factory=list)
    # Create an account on the first SSO sign-in of someone with no account (off: only people who have one)
    oidc_auto_create: bool = True
    # Link a new SSO identity to the existing account with its email when the ID token says
    # email_verified: true (off: refused and audited; the first SSO sign-in of a person created beforehand
    # needs it). Turn on only if OIDC_ISSUER verifies every address and its users cannot choose their own:
    # otherwise anyone there can claim an admin's email and become that admin
    oidc_link_by_email: bool = False

    _split = field_validator(
        "supported_locales",
        "webhook_urls",
        "trusted_proxies",
        "subscribe_phone_countries",
        "form_allowed_origins",
        "oidc_role_map",
        "cap_ipaws_geocodes",
        mode="before",
    )(_split_csv)

    @field_validator("cap_ipaws_geocodes")
    @classmethod
    def _same_geocodes(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not (len(v) == 6 and v.isdigit())]
        if bad:
            raise ValueError(f"SAME geocodes are 6 digits (e.g. 036061): {', '.join(bad)}")
        return value

    @field_validator("cap_jurisdiction_circle")
    @classmethod
    def _cap_circle(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            return value
        match = re.fullmatch(r"(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?) (\d+(?:\.\d+)?)", value)
        if not match or abs(float(match[1])) > 90 or abs(float(match[2])) > 180 or float(match[3]) <= 0:
            raise ValueError(
                f"a CAP circle is 'lat,lon radius_km' with a radius above 0 (e.g. 40.71,-74.0 25): {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _google_needs_a_circle(self) -> Settings:
        if self.cap_profile == "google" and not self.cap_jurisdiction_circle:
            raise ValueError(
                "CAP_PROFILE=google needs CAP_JURISDICTION_CIRCLE ('lat,lon radius_km'): Google Public Alerts "
                "rejects an alert whose area has no shape"
            )
        return self

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        clock.parse_quiet_hours(value)
        return value.strip()

    @field_validator("quiet_hours_timezone")
    @classmethod
    def _quiet_zone(cls, value: str) -> str:
        clock.zone(value)
        return value

    @field_validator("site_timezone")
    @classmethod
    def _site_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value.strip() or "UTC")
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Paris)") from exc
        return value.strip() or "UTC"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("approval_downgrade_window", "approver_grant_delay", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        """`3600` is seconds (pydantic alone reads only ISO 8601 durations such as `PT1H` from a string)."""
        if isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
            return float(value)
        return value

    @field_validator("approval_downgrade_window", "approver_grant_delay")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests call `get_settings.cache_clear()`)."""
    return Settings()
