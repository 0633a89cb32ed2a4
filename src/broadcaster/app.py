"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

from broadcaster import __version__
from broadcaster.deps import no_nul_in_parameters
from broadcaster.errors import install_error_handlers
from broadcaster.middleware import BodyLimitMiddleware, IdempotencyMiddleware, PageSecurityMiddleware
from broadcaster.responses.answer_writer import SmsAnswerWriter
from broadcaster.responses.inbound_fastpath import TwilioInboundFastPath
from broadcaster.settings import get_settings

log = logging.getLogger(__name__)

DESCRIPTION = """
Broadcaster stores incidents and their updates, the routing map ("how to reach us" per need and the
channels that fire by default), and pushes each published update through SMS, voice, email, social,
webhook and banner channels.

Authenticate with `Authorization: Bearer <key>` (create one with `broadcaster keys create`).
Send `Idempotency-Key` on POST so a retrying script never acts twice. Errors always have the shape
`{"error": code, "detail": ..., "field": ...}`.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    from broadcaster.delivery.lifecycle import start_background, stop_background
    from broadcaster.public.refresher import start_public, stop_public

    settings = get_settings()
    await start_public(app)
    if settings.worker_in_process and app.state.run_worker:
        await start_background(app)
    try:
        yield
    finally:
        if settings.worker_in_process and app.state.run_worker:
            await stop_background(app)
        await stop_public(app)
        # answers still queued are applied (and answered) before the process goes
        await anyio.to_thread.run_sync(app.state.sms_answer_writer.close)


def create_app(*, run_worker: bool = True) -> FastAPI:
    """Build the API. `run_worker=False` skips the in-process worker (tests drive it directly)."""
    from broadcaster.alerts.router import router as alerts_router
    from broadcaster.areas.router import router as areas_router
    from broadcaster.auditlog.router import router as audit_router
    from broadcaster.channels.router import router as channels_router
    from broadcaster.console.router import router as console_router
    from broadcaster.delivery.router import router as delivery_router
    from broadcaster.imports.router import router as imports_router
    from broadcaster.incidents.router import router as incidents_router
    from broadcaster.integrations.router import router as integrations_router
    from broadcaster.keys.router import router as keys_router
    from broadcaster.maintenance.router import router as maintenance_router
    from broadcaster.ops import router as ops_router
    from broadcaster.public.router import router as public_router
    from broadcaster.responses.router import router as responses_router
    from broadcaster.routing.router import router as routing_router
    from broadcaster.services.router import router as services_router
    from broadcaster.sessions import LoginRequired
    from broadcaster.staticsite.router import router as static_router
    from broadcaster.subscribers.router import router as subscribers_router
    from broadcaster.users.oidc import router as oidc_router
    from broadcaster.users.pages import login_required
    from broadcaster.users.pages import router as login_router
    from broadcaster.users.router import router as users_router

    settings = get_settings()
    # /docs and /redoc load Swagger UI and ReDoc from files shipped in the fastapi-offline package (served
    # under /docs/assets), not from a CDN: the docs work on an isolated network; the spec is never sent to
    # Swagger's online validator
    app = FastAPIOffline(
        title="Broadcaster",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
        static_url="/docs/assets",
        swagger_ui_parameters={"validatorUrl": None},
        dependencies=[Depends(no_nul_in_parameters)],
    )
    app.state.run_worker = run_worker
    install_error_handlers(app)
    app.add_exception_handler(LoginRequired, login_required)
    for router in (
        incidents_router,
        alerts_router,
        integrations_router,
        static_router,
        routing_router,
        areas_router,
        services_router,
        keys_router,
        maintenance_router,
        channels_router,
        subscribers_router,
        delivery_router,
        ops_router,
        imports_router,
        public_router,
        users_router,
        login_router,
        oidc_router,
        console_router,
        audit_router,
        responses_router,
    ):
        app.include_router(router)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        streamed={
            "/v1/subscribers/import": (settings.max_import_bytes, "MAX_IMPORT_BYTES"),
            "/v1/areas/import": (settings.max_area_import_bytes, "MAX_AREA_IMPORT_BYTES"),
        },
    )
    app.add_middleware(
        PageSecurityMiddleware,
        public_url=settings.public_url,
        allowed_origins=settings.form_allowed_origins,
        frame_ancestors=settings.frame_ancestors,
    )
    # outermost: answers plain SMS answers without FastAPI's request machinery (issue 12); all else passes on
    app.state.sms_answer_writer = SmsAnswerWriter()
    app.add_middleware(TwilioInboundFastPath, writer=app.state.sms_answer_writer)
    return app
