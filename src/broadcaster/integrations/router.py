"""`/v1/integrations` (configure senders) and `/v1/inbound/{kind}/{name}` (where they post)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from broadcaster import audit, doors
from broadcaster.deps import RawBody, SessionDep
from broadcaster.integrations import service
from broadcaster.integrations.schemas import (
    InboundResult,
    IntegrationCreated,
    IntegrationIn,
    IntegrationKind,
    IntegrationOut,
)
from broadcaster.models.integrations import Integration
from broadcaster.security import Principal, Scope, require_scope
from broadcaster.settings import get_settings

router = APIRouter(tags=["integrations"])

Admin = Annotated[Principal, Depends(require_scope(Scope.admin))]
Reader = Annotated[Principal, Depends(require_scope(Scope.read))]


def _out(row: Integration) -> IntegrationOut:
    out = IntegrationOut.model_validate(row)
    out.signature_header, out.timestamp_header = row.hmac_header, row.hmac_timestamp_header
    out.url = f"{get_settings().public_url.rstrip('/')}/v1/inbound/{row.kind}/{row.name}"
    return out


@router.post(
    "/v1/integrations",
    response_model=IntegrationCreated,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=doors.not_a_door(
        "an integration's credentials; what its alerts do is the routing map's alert rules (door alerts.rule)"
    ),
)
def create_integration(body: IntegrationIn, session: SessionDep, who: Admin) -> IntegrationCreated:
    """Configure a sender. The token (or HMAC secret) is in the answer once: put it in the sender's config."""
    row, secret = service.create_integration(session, body)
    audit.record(
        session,
        who.actor,
        "integration.create",
        "integration",
        row.name,
        kind=row.kind,
        auth=row.auth,
        signature_header=row.hmac_header,
        timestamp_header=row.hmac_timestamp_header,
    )
    return IntegrationCreated(**_out(row).model_dump(), secret=secret)


@router.get("/v1/integrations", response_model=list[IntegrationOut])
def list_integrations(session: SessionDep, _: Reader) -> list[IntegrationOut]:
    return [_out(r) for r in service.list_integrations(session)]


@router.delete(
    "/v1/integrations/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra=doors.not_a_door("removes an integration's credentials"),
)
def delete_integration(name: str, session: SessionDep, who: Admin) -> Response:
    service.delete_integration(session, name)
    audit.record(session, who.actor, "integration.delete", "integration", name)
    return Response(status_code=204)


def _inbound(kind: IntegrationKind, name: str, request: Request, raw: bytes, session: SessionDep) -> InboundResult:
    integration = service.authenticate(session, name, kind, request.headers, raw)
    results = service.receive(session, integration, raw, kind)
    return InboundResult(integration=integration.name, results=results)


_DOC = (
    "Authenticate with `Authorization: Bearer <token>` (Basic auth with the token as password also works), or, for "
    "an HMAC integration, a hex HMAC-SHA256 of the body (of `<timestamp>:<body>` when a timestamp header is sent) "
    "in `X-Grafana-Alert-Signature` (Grafana's default), `X-Grafana-Alerting-Signature`, `X-Broadcaster-Signature`, "
    "`X-Hub-Signature-256` or the integration's `signature_header`. 401 and nothing written on bad credentials; "
    "422 naming the field when the body does not follow the sender's documented schema."
)


@router.post(
    "/v1/inbound/alertmanager/{name}",
    response_model=InboundResult,
    description=_DOC,
    openapi_extra=doors.door("alerts.rule"),
)
def inbound_alertmanager(name: str, request: Request, raw: RawBody, session: SessionDep) -> InboundResult:
    """Prometheus Alertmanager `webhook_config` receiver (payload version 4)."""
    return _inbound(IntegrationKind.alertmanager, name, request, raw, session)


@router.post(
    "/v1/inbound/grafana/{name}",
    response_model=InboundResult,
    description=_DOC,
    openapi_extra=doors.door("alerts.rule"),
)
def inbound_grafana(name: str, request: Request, raw: RawBody, session: SessionDep) -> InboundResult:
    """Grafana alerting webhook contact point."""
    return _inbound(IntegrationKind.grafana, name, request, raw, session)


@router.post(
    "/v1/inbound/webhook/{name}",
    response_model=InboundResult,
    description=_DOC,
    openapi_extra=doors.door("alerts.rule"),
)
def inbound_webhook(name: str, request: Request, raw: RawBody, session: SessionDep) -> InboundResult:
    """Any JSON webhook, read through the routing map's `webhook_mappings` entry named like the integration."""
    return _inbound(IntegrationKind.webhook, name, request, raw, session)
