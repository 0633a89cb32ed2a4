"""One error shape for every failure: `{"error": code, "detail": ..., "field": ...}`.

Services raise `AppError` subclasses (they carry their HTTP status); handlers here turn them, FastAPI's
validation errors and malformed bodies into that shape. Nothing is ever answered with a bare 500 page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)


class AppError(Exception):
    """An error with an HTTP status, a stable machine code, a human detail and the offending field."""

    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, *, field: str | None = None, code: str | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if code:
            self.code = code
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, "field": self.field, **self.extra}


class BadRequest(AppError):
    status_code, code = 400, "bad_request"


class Unauthorized(AppError):
    status_code, code = 401, "unauthorized"


class Forbidden(AppError):
    status_code, code = 403, "forbidden"


class NotFound(AppError):
    status_code, code = 404, "not_found"


class Conflict(AppError):
    status_code, code = 409, "conflict"


class PayloadTooLarge(AppError):
    status_code, code = 413, "payload_too_large"


class Unprocessable(AppError):
    status_code, code = 422, "invalid"


class ErrorOut(BaseModel):
    """The one error shape, as the OpenAPI document shows it (422 adds `errors`, one entry per field)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="Stable machine code, e.g. `invalid`, `not_found`, `conflict`.")
    detail: str = Field(description="What is wrong, for a person.")
    field: str | None = Field(description="The offending field (dotted path, header or parameter name), if any.")


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Give every operation of an OpenAPI document a `4XX` response with the one error shape (JSON, also on
    HTML or text routes) in place of FastAPI's own 422 model, which this API never answers with."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    components["ErrorOut"] = ErrorOut.model_json_schema()
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            default_422 = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if default_422.get("$ref", "").endswith("/HTTPValidationError"):
                del responses["422"]
            responses["4XX"] = {"description": "Client error: `{error, detail, field}`.", "content": error}
    return schema


def error_response(
    status: int,
    code: str,
    detail: Any,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    out = dict(headers or {})
    if status == 401:
        out.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse({"error": code, "detail": detail, "field": field, **extra}, status_code=status, headers=out)


def field_name(loc: Iterable[Any], whole: str | None = None) -> str | None:
    """A pydantic error location as a field: `("update", "locale")` -> `"update.locale"`, an empty key shown
    as `""`; `whole` when the error is about the object as a whole (no location)."""
    return ".".join('""' if str(p) == "" else str(p) for p in loc) or whole


def _loc_to_field(loc: Any) -> str | None:
    """`("body", "update", "locale")` -> `"update.locale"`: drop only the leading location part; the body as a
    whole (missing, or not an object) is `"body"`."""
    parts = list(loc)
    if parts == ["body"]:
        return "body"
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return field_name(parts)


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    headers = getattr(exc, "headers", None)  # e.g. Retry-After of a 429
    return error_response(exc.status_code, exc.code, exc.detail, exc.field, headers=headers, **exc.extra)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if errors and errors[0].get("type") == "json_invalid":
        return error_response(400, "malformed_json", f"Request body is not valid JSON: {errors[0].get('msg')}")
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = _loc_to_field(first.get("loc", ()))
    msg = str(first.get("msg", "invalid value"))
    details = [
        {"field": _loc_to_field(e.get("loc", ())), "reason": str(e.get("msg")), "type": e.get("type")} for e in errors
    ]
    if first.get("type") == "missing" and field == "body":
        return error_response(422, "invalid", "Request body is required", "body", errors=details)
    return error_response(422, "invalid", f"{field}: {msg}" if field else msg, field, errors=details)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette's own 405 names only the first route's)."""
    routes = request.app.router.routes
    allowed = [m for m in _METHODS if any(r.matches({**request.scope, "method": m})[0] is Match.FULL for r in routes)]
    return ", ".join(allowed)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # RFC 9110: a 405 lists the methods the resource supports
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), exc.detail, headers=headers)


async def _data_error(_request: Request, exc: Exception) -> JSONResponse:
    """The database refused a value schemas let through (e.g. a NUL character on PostgreSQL): bad input."""
    log.info("database rejected a value: %s", getattr(exc, "orig", exc))
    return error_response(422, "invalid", "A value in the request cannot be stored (e.g. it contains a NUL character).")


async def _integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    """A uniqueness or reference rule failed, typically a concurrent duplicate: the request changed nothing."""
    log.info("integrity error: %s", getattr(exc, "orig", exc))
    return error_response(409, "conflict", "The request conflicts with the current state (duplicate or in use).")


async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """The database connection dropped or is refusing connections (a restart, a failover, a killed backend):
    the request changed nothing (its transaction rolled back) and can be retried; the pool reconnects."""
    log.warning("database unavailable: %s", type(getattr(exc, "orig", exc)).__name__)
    return error_response(
        503,
        "database_unavailable",
        "The database is unavailable for a moment; nothing was changed. Retry shortly.",
        headers={"Retry-After": "2"},
    )


async def _unhandled(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "An internal error occurred; it has been logged.")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error with the one shape, and document it in the app's OpenAPI document."""
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(build_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(Exception, _unhandled)
