"""Where keyed memories are saved: numbered, immutable archives under a root (a directory or a bucket).

A key's saves are ``<root>/<key>/v000001.tar.gz``, ``v000002.tar.gz``, …; a save creates
the next number *only if absent* (a hard link on a directory, ``If-None-Match: *`` on a
bucket), so of two processes saving version N of one key exactly one succeeds and the
other learns it lost. Nothing is ever overwritten, so a reader never sees a torn archive.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..errors import InvalidInput, StorageError

__all__ = ["MAX_VERSION", "ArchiveRoot", "archive_name", "open_archive_root"]

_VERSION = re.compile(r"v(\d{6,})\.tar\.gz")
MAX_VERSION = 2**63 - 1
"""The largest version a store can track (its records hold 64-bit integers)."""


def archive_name(version: int) -> str:
    """The file name of ``version`` under a key: ``v000001.tar.gz``."""
    return f"v{version:06d}.tar.gz"


_name = archive_name


class ArchiveRoot(Protocol):
    location: str

    def versions(self, key: str) -> list[int]:
        """The saved versions of ``key``, lowest first (empty: never saved)."""
        ...

    def put_new(self, key: str, version: int, archive: Path) -> bool:
        """Store ``archive`` as ``version`` of ``key`` unless that version exists; False when it did."""
        ...

    def fetch(self, key: str, version: int, dest: Path) -> None:
        """Copy ``version`` of ``key`` to the local file ``dest``."""
        ...


class DirectoryArchiveRoot:
    """Archives in a local (or mounted) directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def versions(self, key: str) -> list[int]:
        folder = self.root / key
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _VERSION.fullmatch(p.name)))

    def put_new(self, key: str, version: int, archive: Path) -> bool:
        folder = self.root / key
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
            with os.fdopen(fd, "wb") as out, archive.open("rb") as src:
                shutil.copyfileobj(src, out)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temp, folder / _name(version))  # fails if the version exists: never replaces
            except FileExistsError:
                return False
            finally:
                os.unlink(temp)
            dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            return True
        except OSError as exc:
            raise StorageError(f"cannot save to {folder}: {exc.strerror}") from exc

    def fetch(self, key: str, version: int, dest: Path) -> None:
        try:
            shutil.copyfile(self.root / key / _name(version), dest)
        except OSError as exc:
            raise StorageError(f"cannot read {self.root / key / _name(version)}: {exc.strerror}") from exc


class BucketArchiveRoot:
    """Archives in an S3-compatible bucket (configured the AWS way, like the blob store)."""

    def __init__(self, bucket: str, prefix: str) -> None:
        import boto3
        import botocore.config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.location = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        config = botocore.config.Config(s3={"addressing_style": "path"} if endpoint else {})
        self._s3: Any = boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)

    def _key(self, key: str, version: int | None = None) -> str:
        base = f"{self.prefix}/{key}/" if self.prefix else f"{key}/"
        return base if version is None else base + _name(version)

    def versions(self, key: str) -> list[int]:
        found: list[int] = []
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(key)):
                for item in page.get("Contents", []):
                    match = _VERSION.fullmatch(item["Key"].rsplit("/", 1)[-1])
                    if match:
                        found.append(int(match.group(1)))
        except Exception as exc:
            raise StorageError(f"cannot list {self.location}/{key}: {exc}") from exc
        return sorted(found)

    def put_new(self, key: str, version: int, archive: Path) -> bool:
        import botocore.exceptions

        try:
            with archive.open("rb") as body:
                self._s3.put_object(Bucket=self.bucket, Key=self._key(key, version), Body=body, IfNoneMatch="*")
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise StorageError(f"cannot save to {self.location}/{key}: {exc}") from exc
        return True

    def fetch(self, key: str, version: int, dest: Path) -> None:
        try:
            self._s3.download_file(self.bucket, self._key(key, version), str(dest))
        except Exception as exc:
            raise StorageError(f"cannot read {self.location}/{key}/{_name(version)}: {exc}") from exc


def open_archive_root(url: str) -> ArchiveRoot:
    """``s3://bucket/prefix`` or a directory path (``file://`` allowed).

    Raises:
        InvalidInput: another URL scheme.
    """
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise InvalidInput(f"memory_root {url!r} names no bucket; use s3://bucket/prefix")
        return BucketArchiveRoot(parts.netloc, parts.path)
    if parts.scheme in ("", "file"):
        return DirectoryArchiveRoot(Path(parts.path if parts.scheme else url).expanduser())
    raise InvalidInput(f"memory_root {url!r} is not supported; use a directory or s3://bucket/prefix")
