"""HTTP endpoints of subscriber imports: upload (202 + a job), the job's progress and its error report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.datastructures import UploadFile

from broadcaster import doors
from broadcaster.deps import SessionDep
from broadcaster.errors import Unprocessable
from broadcaster.imports import runner, service
from broadcaster.imports.schemas import ImportJobOut, RowErrorOut
from broadcaster.models.imports import ImportJob
from broadcaster.pagination import IdPath, Page, PageParams, page_params
from broadcaster.security import Principal, Scope, require_scope

router = APIRouter(tags=["subscribers"])

Reader = Annotated[Principal, Depends(require_scope(Scope.read))]
Writer = Annotated[Principal, Depends(require_scope(Scope.write))]

#: with ?wait=true the request runs its import itself for up to this long before answering
WAIT_SECONDS = 30.0
#: error-report entries shown inline in a job
INLINE_ERRORS = 100

_CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}
_JOB_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": ImportJobOut, "description": "With `wait=true`: the import finished within the wait."},
    202: {
        "model": ImportJobOut,
        "description": "The file is stored and queued; follow `Location` (GET /v1/imports/{id}) for progress.",
        "headers": {"Location": {"schema": {"type": "string"}, "description": "The import's URL."}},
    },
}


async def _pieces(upload: UploadFile) -> AsyncIterator[bytes]:
    while piece := await upload.read(service.CHUNK_BYTES):
        yield piece


def _job_out(session: Any, job: ImportJob) -> ImportJobOut:
    errors = service.errors(session, job.id, after=None, limit=INLINE_ERRORS + 1)
    return ImportJobOut.build(job, errors[:INLINE_ERRORS], more=len(errors) > INLINE_ERRORS)


def _load(job_id: int) -> ImportJobOut:
    from broadcaster.db import session_scope

    with session_scope() as session:
        return _job_out(session, service.get(session, job_id))


@router.post(
    "/v1/subscribers/import",
    status_code=202,
    response_model=ImportJobOut,
    responses=_JOB_ANSWERS,
    openapi_extra=_CSV_BODY | doors.not_a_door("the subscriber list: who may receive, not what is sent"),
)
async def import_subscribers(
    request: Request,
    who: Writer,
    wait: Annotated[
        bool, Query(description=f"Run the import before answering (up to {WAIT_SECONDS:.0f} s): handy for small files.")
    ] = False,
) -> Response:
    """Upload a subscriber CSV (multipart field `file`, or the raw `text/csv` body), up to MAX_IMPORT_BYTES.

    Columns: phone, email, name, locale, categories, tags (separated by `;`, `|` or `,`), test_group. A row
    matching an existing subscriber by phone or email updates the cells it fills in; good rows are kept, bad
    rows are listed with their row number, field and reason. The file is streamed into the database and
    checked (UTF-8, header, CSV syntax: a 422 on `file` before anything is imported), then imported in the
    background: 202 with the job and `Location`; poll GET /v1/imports/{id}. With `wait=true` the answer
    comes when the import is done (200), or after 30 s with the job still running (202).
    """
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=20)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Unprocessable("upload the CSV as the multipart field 'file'", field="file")
        filename, pieces = upload.filename or "", _pieces(upload)
    else:
        filename, pieces = "", request.stream()
    job_id = await anyio.to_thread.run_sync(service.create_job, who.actor, filename)
    try:
        buffer, seq = bytearray(), 0
        async for piece in pieces:
            buffer += piece
            while len(buffer) >= service.CHUNK_BYTES:
                data, buffer = bytes(buffer[: service.CHUNK_BYTES]), buffer[service.CHUNK_BYTES :]
                await anyio.to_thread.run_sync(service.store_chunk, job_id, seq, data)
                seq += 1
        if buffer:
            await anyio.to_thread.run_sync(service.store_chunk, job_id, seq, bytes(buffer))
        await anyio.to_thread.run_sync(service.seal, job_id, who.actor)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(service.discard, job_id)
        raise
    runner.wake_local_runners()
    if wait:
        await anyio.to_thread.run_sync(runner.run_inline, job_id, WAIT_SECONDS)
    out = await anyio.to_thread.run_sync(_load, job_id)
    return Response(
        out.model_dump_json(),
        status_code=200 if wait and out.state in ("done", "failed") else 202,
        media_type="application/json",
        headers={"Location": f"/v1/imports/{job_id}"},
    )


@router.get("/v1/imports", response_model=Page[ImportJobOut])
def list_imports(
    session: SessionDep, _: Reader, page: Annotated[PageParams, Depends(page_params)]
) -> Page[ImportJobOut]:
    """Imports, newest first (each with the start of its error report)."""
    from sqlalchemy import select

    stmt = select(ImportJob).order_by(ImportJob.id.desc()).limit(page.limit + 1)
    if page.cursor is not None:
        stmt = stmt.where(ImportJob.id < page.cursor)
    rows = list(session.scalars(stmt))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(items=[_job_out(session, r) for r in rows], next_cursor=str(rows[-1].id) if more else None)


@router.get("/v1/imports/{import_id}", response_model=ImportJobOut)
def get_import(import_id: IdPath, session: SessionDep, _: Reader) -> ImportJobOut:
    """State, progress (rows done of total, rows/s) and the first entries of the per-row error report."""
    return _job_out(session, service.get(session, import_id))


@router.get("/v1/imports/{import_id}/errors", response_model=Page[RowErrorOut])
def import_errors(
    import_id: IdPath, session: SessionDep, _: Reader, page: Annotated[PageParams, Depends(page_params)]
) -> Page[RowErrorOut]:
    """The whole per-row error report in file order (`cursor` = the last entry's id; `next_cursor` pages on)."""
    service.get(session, import_id)
    rows = service.errors(session, import_id, after=page.cursor, limit=page.limit + 1)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(items=[RowErrorOut.build(e) for e in rows], next_cursor=str(rows[-1].id) if more else None)
