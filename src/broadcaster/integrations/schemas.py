"""Schemas of the integration API: who may send alerts (an integration, its kind and authentication) and what
a notification did (its groups' results). The alerts themselves and the rules: broadcaster.alertrules."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from broadcaster.domain import Input, validate_slug

#: an HTTP header name (RFC 9110 token)
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"


class IntegrationKind(StrEnum):
    alertmanager = "alertmanager"
    grafana = "grafana"
    webhook = "webhook"


class IntegrationAuth(StrEnum):
    token = "token"  # noqa: S105 (a mode name, not a secret)
    hmac = "hmac"


class IntegrationIn(Input):
    name: str = Field(..., max_length=64, examples=["prometheus"])
    kind: IntegrationKind
    auth: IntegrationAuth = IntegrationAuth.token
    secret: str | None = Field(
        None,
        min_length=16,
        max_length=200,
        description="Token or HMAC secret to use (at least 16 characters); omitted: a random one is generated.",
    )
    signature_header: str | None = Field(
        None,
        max_length=100,
        pattern=HEADER_NAME,
        examples=["X-My-Signature"],
        description=(
            "auth=hmac only: the header the sender signs in (Grafana's HMAC 'Header' field), read besides the "
            "default names (X-Grafana-Alert-Signature, X-Grafana-Alerting-Signature, X-Broadcaster-Signature, "
            "X-Hub-Signature-256)."
        ),
    )
    timestamp_header: str | None = Field(
        None,
        max_length=100,
        pattern=HEADER_NAME,
        examples=["X-Grafana-Alerting-Timestamp"],
        description=(
            "auth=hmac only: the header the sender puts its Unix time in (Grafana's HMAC 'Timestamp header' "
            "field); then every request must carry it, sign `<timestamp>:<body>` and be at most 5 minutes old."
        ),
    )

    _slug = field_validator("name")(validate_slug)


class IntegrationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    auth: str
    disabled: bool
    created_at: datetime
    last_used_at: datetime | None
    #: auth=hmac: the sender's own signature and timestamp header names, if configured
    signature_header: str | None = None
    timestamp_header: str | None = None
    url: str = Field("", description="Where the sender posts.")


class IntegrationCreated(IntegrationOut):
    secret: str = Field(description="The token or HMAC secret: shown once, store it in the sender's configuration.")


class InboundResult(BaseModel):
    """What one notification did, per group it touched."""

    integration: str
    results: list[GroupResult]


class GroupResult(BaseModel):
    group_key: str
    #: created | updated | repeat | deferred | resolved | ignored
    action: str
    incident_id: int | None = None
    update_id: int | None = None
    #: published | pending_approval | draft | None
    update_state: str | None = None
    rule: str | None = None
    detail: str = ""


InboundResult.model_rebuild()
