"""API shapes of subscriber imports."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from broadcaster.imports import service
from broadcaster.models.imports import ImportJob, ImportRowError


class RowErrorOut(BaseModel):
    """Why one row (or one of its cells) was rejected."""

    id: int = Field(description="Position in the report (the cursor of GET /v1/imports/{id}/errors).")
    row: int = Field(description="Row number in the file; the header is row 1.")
    field: str | None = Field(description="The column at fault; null when the row as a whole is.")
    reason: str

    @classmethod
    def build(cls, e: ImportRowError) -> RowErrorOut:
        return cls(id=e.id, row=e.row, field=e.field, reason=e.reason)


class ImportJobOut(BaseModel):
    """An import: its state, progress and the start of its per-row error report."""

    id: int
    state: str = Field(
        description="uploading, queued, running, done or failed (`error` says why; rows already imported stay)."
    )
    filename: str
    size_bytes: int
    total_rows: int | None = Field(description="Data rows in the file (the header not counted).")
    rows_done: int = Field(description="Rows processed so far: created + updated + rejected.")
    progress: float | None = Field(description="rows_done / total_rows, 0..1.")
    rows_per_second: float | None = Field(description="Since the job started (until it finished).")
    created: int
    updated: int
    rejected: int = Field(description="Rows rejected; each is listed in the error report (see errors_omitted).")
    errors_omitted: int = Field(description=f"Rejected rows beyond the first {service.MAX_REPORTED_ROWS:,} listed.")
    error: str | None = Field(description="Why the import as a whole failed.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    errors: list[RowErrorOut] = Field(description="The first entries of the error report, in file order.")
    errors_next_cursor: str | None = Field(
        description="More entries: GET /v1/imports/{id}/errors?cursor=<this>; null when `errors` is all of it."
    )

    @classmethod
    def build(cls, job: ImportJob, errors: list[ImportRowError], more: bool) -> ImportJobOut:
        total = job.total_rows
        return cls(
            id=job.id,
            state=job.state,
            filename=job.filename,
            size_bytes=job.size_bytes,
            total_rows=total,
            rows_done=job.rows_done,
            progress=round(min(1.0, job.rows_done / total), 4) if total else (1.0 if total == 0 else None),
            rows_per_second=service.rows_per_second(job),
            created=job.created,
            updated=job.updated,
            rejected=job.rejected,
            errors_omitted=max(0, job.rejected - service.MAX_REPORTED_ROWS),
            error=job.error,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            errors=[RowErrorOut.build(e) for e in errors],
            errors_next_cursor=str(errors[-1].id) if more and errors else None,
        )
