"""Where static files go: a local directory (atomic renames) or S3-compatible storage (boto3).

Both keep a manifest of what they hold (path -> hash): unchanged files are not rewritten, and files no longer
published (an incident made private, say) are removed, after the new index is in place."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from broadcaster.settings import Settings
from broadcaster.staticsite.files import File, cache_control

MANIFEST = ".broadcaster-manifest.json"


class Target(Protocol):
    name: str

    def write(self, files: list[File]) -> int:
        """Write `files` in order (each atomically); remove what the last run wrote and this one did not.
        Returns how many files were (re)written."""


def _changed(files: list[File], manifest: dict[str, str]) -> list[File]:
    return [f for f in files if manifest.get(f.path) != f.sha]


class DirectoryTarget:
    """A folder any web server or CDN origin serves: each file is written to a temporary file beside it, then
    renamed over the old one (readers see the old or the new file, never half of one)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.name = str(self.root)

    def _manifest(self) -> dict[str, str]:
        try:
            data = json.loads((self.root / MANIFEST).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _put(self, rel: str, body: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def write(self, files: list[File]) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        old = self._manifest()
        # in the given order: pages before their indexes (a file deleted by hand is written again)
        changed = [f for f in files if old.get(f.path) != f.sha or not (self.root / f.path).exists()]
        for f in changed:
            self._put(f.path, f.body)
        new = {f.path: f.sha for f in files}
        for rel in set(old) - set(new):
            (self.root / rel).unlink(missing_ok=True)
        self._put(MANIFEST, json.dumps(new, sort_keys=True).encode())
        return len(changed)


class S3Target:
    """An S3 bucket (AWS S3, Cloudflare R2, MinIO, ...) under a key prefix, through boto3. Each object carries its
    Content-Type and Cache-Control; an S3 PUT replaces an object atomically."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket, self.prefix, self.client = bucket, prefix.strip("/"), client
        self.name = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _manifest(self) -> dict[str, str]:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(MANIFEST))
        except self.client.exceptions.NoSuchKey:
            return {}
        data = json.loads(obj["Body"].read())
        return data if isinstance(data, dict) else {}

    def write(self, files: list[File]) -> int:
        old = self._manifest()
        changed = _changed(files, old)
        control = cache_control()
        for f in changed:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(f.path), Body=f.body, ContentType=f.content_type, CacheControl=control
            )
        new = {f.path: f.sha for f in files}
        for rel in sorted(set(old) - set(new)):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(rel))
        self.client.put_object(
            Bucket=self.bucket,
            Key=self._key(MANIFEST),
            Body=json.dumps(new, sort_keys=True).encode(),
            ContentType="application/json",
            CacheControl="no-store",
        )
        return len(changed)


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client from the STATIC_S3_* settings (boto3's own credential chain when no key is set)."""
    import boto3
    from botocore.config import Config

    kwargs: dict[str, Any] = {
        "region_name": settings.static_s3_region,
        "config": Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=20),
    }
    if settings.static_s3_endpoint_url:
        kwargs["endpoint_url"] = settings.static_s3_endpoint_url
    if settings.static_s3_access_key_id:
        kwargs["aws_access_key_id"] = settings.static_s3_access_key_id
        secret = settings.static_s3_secret_access_key
        kwargs["aws_secret_access_key"] = secret.get_secret_value() if secret else None
    return boto3.client("s3", **kwargs)


def make_target(settings: Settings) -> Target | None:
    """The configured target (STATIC_TARGET), or None when static publishing is off."""
    raw = settings.static_target.strip()
    if not raw:
        return None
    if raw.startswith("s3://"):
        bucket, _, prefix = raw[5:].partition("/")
        return S3Target(bucket, prefix, s3_client(settings))
    return DirectoryTarget(raw)
