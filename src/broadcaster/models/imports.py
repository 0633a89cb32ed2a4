"""Subscriber import jobs (owned by `broadcaster.imports`): the uploaded CSV in chunks, the job's progress and
its per-row error report.

A job is `uploading` while the request streams the file in, `queued` once the file is stored and readable,
`running` while a runner holds its lease, then `done` or `failed`. Progress (`rows_done` and the counters) is
committed in the same transaction as each batch of upserts, so a runner that takes over a job whose runner
died resumes exactly after the last committed batch.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.models.base import Base, BigId, UTCDateTime, utcnow


class ImportJob(Base):
    __tablename__ = "import_jobs"
    __table_args__ = (Index("ix_import_jobs_state", "state", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: uploading | queued | running | done | failed
    state: Mapped[str] = mapped_column(String(16), default="uploading")
    actor: Mapped[str] = mapped_column(String(200), default="")
    filename: Mapped[str] = mapped_column(String(255), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    #: data rows in the file (known once the upload is checked)
    total_rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    #: why the whole job failed (row errors are in import_row_errors)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ImportChunk(Base):
    """The uploaded file in order, 1 MiB at a time (in the database, so any worker on any machine can run the
    job); deleted when the job ends."""

    __tablename__ = "import_chunks"

    job_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ImportRowError(Base):
    """One rejected cell or row: the file's row number (the header is row 1), the field and the reason."""

    __tablename__ = "import_row_errors"
    __table_args__ = (Index("ix_import_row_errors_job", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"))
    row: Mapped[int] = mapped_column(Integer)
    field: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
