"""Streaming CSV parse of an uploaded import: the stored chunks read back one at a time, decoded and parsed
row by row, and each row turned into a validated `SubscriberIn` or a list of errors."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, select

from broadcaster.errors import Unprocessable, field_name
from broadcaster.models.imports import ImportChunk
from broadcaster.subscribers.schemas import SubscriberIn

COLUMNS = (
    "phone",
    "email",
    "name",
    "locale",
    "categories",
    "tags",
    "services",
    "test_group",
    "lat",
    "lon",
    "areas",
    "address",
)


class ChunkStream(io.RawIOBase):
    """The stored file as a byte stream: one chunk in memory at a time, each read in its own short query."""

    def __init__(self, engine: Engine, job_id: int) -> None:
        self.engine, self.job_id = engine, job_id
        self.seq = 0
        self.buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, out: Any) -> int:
        while not self.buffer:
            with self.engine.connect() as conn:
                data = conn.scalar(
                    select(ImportChunk.data).where(ImportChunk.job_id == self.job_id, ImportChunk.seq == self.seq)
                )
            if data is None:
                return 0
            self.seq += 1
            self.buffer = memoryview(bytes(data))
        n = min(len(out), len(self.buffer))
        out[:n] = self.buffer[:n]
        self.buffer = self.buffer[n:]
        return n


class CsvProblem(Unprocessable):
    """The file as a whole cannot be imported (not UTF-8, no usable header, unreadable CSV): a 422 on `file`."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="file")


@dataclass
class Row:
    """One data row: its number in the file (the header is row 1), the cells, and the parse result."""

    number: int
    cells: dict[str, str]
    body: SubscriberIn | None = None
    errors: list[tuple[str | None, str]] = field(default_factory=list)


def records(engine: Engine, job_id: int) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of every data row, after checking the header; raises `CsvProblem`."""
    text = io.TextIOWrapper(io.BufferedReader(ChunkStream(engine, job_id), 1 << 20), "utf-8-sig", newline="")
    reader = csv.reader(text)  # newline="": quoted fields may hold line breaks
    number = 1
    try:
        header = next(reader, None)
        if header is None:
            raise CsvProblem("the CSV is empty")
        names = [h.strip().lower() for h in header]
        if not {"phone", "email"} & set(names):
            raise CsvProblem("the CSV needs a header row with a 'phone' and/or 'email' column")
        unknown = [h for h in names if h not in COLUMNS]
        if unknown:
            raise CsvProblem(f"unknown CSV column {unknown[0]!r}; known: {', '.join(COLUMNS)}")
        yield 1, names
        for cells in reader:
            number += 1
            if cells:  # blank lines are skipped, as csv.DictReader did
                yield number, cells
    except UnicodeDecodeError as exc:
        raise CsvProblem(f"the CSV must be UTF-8 encoded (row {number + 1})") from exc
    except csv.Error as exc:
        raise CsvProblem(f"the CSV cannot be read (line {reader.line_num}): {exc}") from exc


def check(engine: Engine, job_id: int) -> int:
    """Read the whole stored file once; the number of data rows, or `CsvProblem` before anything is written."""
    rows = -1
    for _ in records(engine, job_id):
        rows += 1
    return rows


def _split(value: str) -> list[str]:
    for sep in ";|":
        value = value.replace(sep, ",")
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_row(number: int, header: list[str], cells: list[str], default_locale: str) -> Row:
    """Validate one row (the rules of `POST /v1/subscribers`); categories are checked by the caller."""
    if len(cells) > len(header):
        return Row(number, {}, errors=[(None, "too many columns")])
    record = {name: cells[i].strip() if i < len(cells) else "" for i, name in enumerate(header)}
    row = Row(number, record)
    data: dict[str, Any] = {
        "phone": record.get("phone") or None,
        "email": record.get("email") or None,
        "name": record.get("name", ""),
        "locale": record.get("locale") or default_locale,
        "categories": _split(record.get("categories", "")),
        "tags": _split(record.get("tags", "")),
        "services": _split(record.get("services", "")),
        "test_group": record.get("test_group", "").lower() in ("1", "true", "yes", "y"),
        "areas": _split(record.get("areas", "")),
    }
    for key in ("lat", "lon"):  # location: both or neither (an `address` may be geocoded instead)
        if record.get(key):
            try:
                data[key] = float(record[key])
            except ValueError:
                row.errors = [(key, "must be a number (WGS 84 degrees)")]
                return row
    try:
        row.body = SubscriberIn(**data)
    except ValidationError as exc:
        row.errors = [(field_name(e["loc"]), str(e["msg"])) for e in exc.errors()]
    return row
