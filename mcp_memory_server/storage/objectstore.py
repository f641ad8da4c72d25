"""Blobs in an S3-compatible bucket: ``s3://bucket/prefix`` holds ``<prefix>/sha256/ab/cd/<hex>``.

Library: boto3, because it is the client that does put-if-absent (``If-None-Match: *``) on
both a single PUT and a multipart upload's completion, so a big payload streams in parts
and is still stored once across hosts (obstore 0.12 turns any conditional put into one
in-memory PUT; s3fs pins an aiobotocore whose botocore fights boto3's), and it reads the
whole AWS configuration chain itself: ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_PROFILE`` and its config files, instance roles.

The gc guarantee is the local store's (see ``blobs.py``): writes stage their bytes in a
local folder, upload them if absent, and :meth:`PendingBlobs.confirm` re-checks each object
inside the write transaction that references it, re-uploading from the staged copy
whatever gc deleted meanwhile; gc deletes only inside a write transaction that found no
reference. S3 is strongly consistent (a HEAD after a DELETE sees it gone), so that check is
as good as the local ``is_file``.

A server that ignores ``If-None-Match`` (older MinIO or Ceph releases) overwrites the key
with the same bytes instead: still one object, only the upload is wasted.

The bucket needs s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket (without
ListBucket a missing object answers 403, not 404). Set a lifecycle rule that aborts
incomplete multipart uploads: a writer killed mid-upload leaves its parts behind.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import boto3
import botocore.config
import botocore.exceptions

from ..errors import InvalidInput, NotFound, StorageError
from .blobs import (
    _CHUNK,
    _HEX,
    _TMP_PREFIX,
    BlobInfo,
    PendingBlobs,
    ProgressFn,
    StagedBlob,
    _filled,
    _TempBlob,
    check_digest,
    fsync_dir,
    remove_orphaned_temps,
)

__all__ = ["S3BlobStore"]

logger = logging.getLogger(__name__)

_PART = 8 << 20
"""Multipart part size, and the largest payload sent as one PUT (S3's minimum part is 5 MiB)."""
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_CREDENTIAL_CODES = {
    "403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
    "InvalidClientTokenId", "AuthorizationHeaderMalformed",
}  # fmt: skip
_CONFLICT_RETRIES = 5
_MAX_PARTS = 10_000


class S3BlobStore:
    """Content-addressed blobs in ``bucket`` under ``prefix``, with staging and a read cache in ``cache_dir``.

    Arguments left ``None`` come from the AWS configuration (environment, profile, config files).

    Raises:
        InvalidInput: ``bucket`` is not a valid bucket name.
        StorageError: the bucket does not exist, the credentials are refused or missing,
            or the endpoint cannot be reached (checked once here, so a bad setting fails at start-up).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        cache_dir: Path | None = None,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        profile: str | None = None,
        part_size: int = _PART,
    ) -> None:
        if not _BUCKET.fullmatch(bucket or ""):
            raise InvalidInput(
                f"{bucket!r} is not an S3 bucket name; use 3-63 lowercase letters, digits, dots or hyphens "
                "(credentials go in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, never in the URL)"
            )
        if part_size < 5 << 20:
            raise InvalidInput(f"part_size must be at least 5 MiB (S3's smallest part), got {part_size}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._base = f"{self.prefix}/" if self.prefix else ""
        self._part = part_size
        self.root = cache_dir if cache_dir is not None else Path.home() / ".cache" / "mcp-memory-server" / bucket
        """Local folder for staged uploads (``.tmp-*``) and materialised blobs (``sha256/``)."""
        try:
            (self.root / "sha256").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the blob cache folder {self.root}: {exc.strerror}") from exc
        # AWS_ENDPOINT_URL is read by botocore too; read here as well to name it in messages
        # and to pick path-style addressing, which MinIO, Ceph and moto expect.
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        self._where = self.endpoint_url or "AWS S3"
        try:
            session = boto3.session.Session(
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                region_name=region or os.environ.get("AWS_REGION") or None,
                profile_name=profile,
            )
        except botocore.exceptions.ProfileNotFound as exc:
            raise StorageError(f"{exc}; check AWS_PROFILE and ~/.aws/config") from exc
        config = botocore.config.Config(
            region_name=session.region_name or "us-east-1",
            retries={"mode": "standard", "max_attempts": 4},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=32,
            s3={"addressing_style": "path"} if self.endpoint_url else {},
            # Checksums only where S3 requires them: several S3-compatible servers reject the
            # CRC trailers recent botocore adds by default. Integrity is the sha256 in the key.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client: Any = session.client("s3", endpoint_url=self.endpoint_url, config=config)
        try:
            self._client.head_bucket(Bucket=bucket)
        except Exception as exc:
            raise self._error(exc, "open the bucket", bucket_check=True) from exc

    def __repr__(self) -> str:
        return f"S3BlobStore(s3://{self.bucket}/{self.prefix} at {self._where})"

    # -- keys and errors ---------------------------------------------------------------------------

    def _key(self, digest: str) -> str:
        return f"{self._base}sha256/{digest[:2]}/{digest[2:4]}/{digest}"

    def _cache_path(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest[2:4] / digest

    def _error(
        self, exc: Exception, action: str, *, digest: str | None = None, bucket_check: bool = False
    ) -> Exception:
        """``exc`` from botocore in our words: NotFound for a missing object, else a StorageError that says what to fix."""
        if isinstance(exc, StorageError | NotFound | InvalidInput):
            return exc
        bucket = f"s3://{self.bucket}"
        if isinstance(exc, botocore.exceptions.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket" or (bucket_check and (code in ("404", "NotFound") or status == 404)):
                return StorageError(
                    f"the bucket {self.bucket!r} does not exist at {self._where}; create it "
                    f"(aws s3 mb {bucket}) or fix blob_url / AWS_ENDPOINT_URL"
                )
            if code in ("NoSuchKey", "404", "NotFound") and digest is not None:
                return NotFound(f"no blob with sha256 {digest}")
            if code in _CREDENTIAL_CODES or status == 403:
                return StorageError(
                    f"the object store at {self._where} refused the credentials for {bucket} ({code or status}); "
                    "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and that they may "
                    "get, put, delete and list objects in the bucket"
                )
            message = error.get("Message") or code
            return StorageError(f"the object store could not {action} in {bucket}: {message} ({code or status})")
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return StorageError(
                f"no credentials for the object store {bucket}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or AWS_PROFILE"
            )
        if isinstance(exc, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError):
            return StorageError(
                f"cannot reach the object store at {self._where} ({exc}); check AWS_ENDPOINT_URL and that it is up"
            )
        if isinstance(exc, botocore.exceptions.BotoCoreError):
            return StorageError(f"the object store could not {action} in {bucket}: {exc}")
        if isinstance(exc, OSError):
            return StorageError(f"the object store could not {action} in {bucket}: {exc.strerror or exc}")
        return exc

    def _head(self, digest: str) -> dict[str, Any] | None:
        """The object's metadata, or None when there is no such object."""
        try:
            head: dict[str, Any] = self._client.head_object(Bucket=self.bucket, Key=self._key(check_digest(digest)))
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise self._error(exc, "look up a blob", digest=digest) from exc
        except Exception as exc:
            raise self._error(exc, "look up a blob", digest=digest) from exc
        return head

    def _must_head(self, digest: str) -> dict[str, Any]:
        head = self._head(digest)
        if head is None:
            raise NotFound(f"no blob with sha256 {digest}")
        return head

    # -- writing -----------------------------------------------------------------------------------

    @property
    def temp_dir(self) -> Path:
        """Where writes stage their bytes before (and while) uploading them: inside the cache folder."""
        return self.root

    def temp(self) -> _TempBlob:
        """A writer whose bytes become a blob on ``commit()``; call ``discard()`` on failure."""
        return _TempBlob(self)

    def pending(self) -> PendingBlobs:
        """Stage the blobs of a write that will reference them; see :class:`PendingBlobs`."""
        return PendingBlobs(self)

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store a blob nothing references yet (a write that will reference it uses :meth:`pending`)."""
        if len(data) > self._part:
            return self.put_stream([data])  # in parts, from a staged file
        digest = hashlib.sha256(data).hexdigest()
        if self._head(digest) is None:
            self._put_if_absent(digest, lambda: data)
        return BlobInfo(digest, len(data))

    def put_stream(self, chunks: Iterable[bytes], progress: ProgressFn | None = None) -> BlobInfo:
        """Store the bytes of ``chunks``, spooled through a local temp (the digest names the key only at the end)."""
        return _filled(self.temp(), chunks, progress).commit()

    def put_file(self, path: Path, progress: ProgressFn | None = None) -> BlobInfo:
        with open(path, "rb") as source:
            return self.put_stream(iter(lambda: source.read(_CHUNK), b""), progress)

    def publish_staged(self, staged: StagedBlob) -> bool:
        """Upload the staged copy unless the object exists; True if it had to (see :meth:`StagedBlob.publish`)."""
        if self._head(staged.sha256) is not None:
            return False
        try:
            with open(staged.path, "rb") as source:
                if staged.size <= self._part:
                    return self._put_if_absent(staged.sha256, lambda: _rewound(source))
                return self._multipart_if_absent(staged.sha256, source, staged.size)
        except FileNotFoundError as exc:
            raise StorageError(f"the staged copy of blob {staged.sha256} is gone; retry the write") from exc

    def _put_if_absent(self, digest: str, body: Any) -> bool:
        """One PUT with ``If-None-Match: *``; False when another writer stored the same bytes first."""
        for attempt in range(_CONFLICT_RETRIES):
            try:
                self._client.put_object(Bucket=self.bucket, Key=self._key(digest), Body=body(), IfNoneMatch="*")
                return True
            except botocore.exceptions.ClientError as exc:
                outcome = self._lost_race(exc, digest, attempt)
                if outcome is not None:
                    return outcome
            except Exception as exc:
                raise self._error(exc, "store a blob") from exc
        raise StorageError(f"blob {digest} kept meeting concurrent uploads of the same bytes; retry the write")

    def _multipart_if_absent(self, digest: str, source: BinaryIO, size: int) -> bool:
        """Upload ``source`` one part at a time (one part in memory), completed only if the key is still absent."""
        key = self._key(digest)
        part_size = max(self._part, -(-size // _MAX_PARTS))  # S3 takes at most 10,000 parts
        for attempt in range(_CONFLICT_RETRIES):
            source.seek(0)
            try:
                upload = self._client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
            except Exception as exc:
                raise self._error(exc, "start an upload") from exc
            try:
                parts: list[dict[str, Any]] = []
                sent = 0
                while chunk := source.read(part_size):
                    number = len(parts) + 1
                    answer = self._client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload, PartNumber=number, Body=chunk
                    )
                    parts.append({"PartNumber": number, "ETag": answer["ETag"]})
                    sent += len(chunk)
                    del chunk  # else the next read allocates while this part is still held: two parts in memory
                if sent != size:  # the staged copy changed under us: never complete an object its name does not match
                    raise StorageError(
                        f"the staged copy of blob {digest} holds {sent} bytes, not {size}; retry the write"
                    )
                self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
                )
                return True
            except botocore.exceptions.ClientError as exc:
                self._abort(key, upload)
                outcome = self._lost_race(exc, digest, attempt)
                if outcome is not None:
                    return outcome
            except Exception as exc:
                self._abort(key, upload)
                raise self._error(exc, "upload a blob") from exc
            except BaseException:
                self._abort(key, upload)
                raise
        raise StorageError(f"blob {digest} kept meeting concurrent uploads of the same bytes; retry the write")

    def _lost_race(self, exc: botocore.exceptions.ClientError, digest: str, attempt: int) -> bool | None:
        """False for a put-if-absent that lost to the same bytes; None to retry a conflict; raises otherwise."""
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == "PreconditionFailed":
            return False  # the same bytes are there already: content addressing makes that a success
        if code == "ConditionalRequestConflict":  # another conditional write of this key is in flight
            time.sleep(0.05 * (attempt + 1))
            return False if self._head(digest) is not None else None
        raise self._error(exc, "store a blob") from exc

    def _abort(self, key: str, upload: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
        except Exception:  # best effort: a lifecycle rule reaps what is left
            logger.warning(
                "could not abort multipart upload %s of %s; its parts stay until a lifecycle rule", upload, key
            )

    # -- reading -----------------------------------------------------------------------------------

    def exists(self, digest: str) -> bool:
        return self._head(digest) is not None

    def size(self, digest: str) -> int:
        return int(self._must_head(digest)["ContentLength"])

    def modified_at(self, digest: str) -> float:
        """When the object was stored (seconds since the epoch); gc spares blobs younger than its grace.

        Raises:
            NotFound: no such blob.
        """
        return float(self._must_head(digest)["LastModified"].timestamp())

    def read(self, digest: str, offset: int = 0, length: int | None = None) -> bytes:
        """``length`` bytes (all, if None) from ``offset``, fetched as one ranged GET; past the end reads ``b""``."""
        check_digest(digest)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInput(f"offset must be a non-negative integer, got {offset!r}")
        if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 0):
            raise InvalidInput(f"length must be a non-negative integer or None, got {length!r}")
        if length == 0:
            self._must_head(digest)
            return b""
        data: bytes = self._get(digest, offset, None if length is None else offset + length - 1, whole=True)
        return data

    def _get(self, digest: str, first: int, last: int | None, *, whole: bool) -> Any:
        """The body of bytes ``first..last`` (read, if ``whole``; else the streaming body and its length)."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(digest)}
        if first or last is not None:
            args["Range"] = f"bytes={first}-{'' if last is None else last}"
        try:
            answer = self._client.get_object(**args)
            if not whole:
                return answer["Body"], int(answer["ContentLength"])
            with answer["Body"] as body:
                return body.read()
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":  # the object exists; offset is past it
                return b"" if whole else (io.BytesIO(b""), 0)
            raise self._error(exc, "read a blob", digest=digest) from exc
        except Exception as exc:
            raise self._error(exc, "read a blob", digest=digest) from exc

    def open(self, digest: str) -> BinaryIO:
        """A buffered, seekable reader that streams the object (one GET, re-issued from the new offset on a seek).

        Raises:
            NotFound: no such blob (at once, not on the first read).
        """
        return io.BufferedReader(_ObjectReader(self, check_digest(digest)), buffer_size=_CHUNK)

    def local_path(self, digest: str) -> Path:
        """The blob as a local read-only file: downloaded once into the cache folder, sha256 checked.

        The download goes to a temp that is renamed into place only after its digest
        matched, so a reader never sees a partial or wrong file.

        Raises:
            NotFound: no such blob in the bucket (a cached copy is not served for a deleted object).
            StorageError: the object's bytes do not hash to its name.
        """
        self._must_head(digest)
        final = self._cache_path(digest)
        if final.is_file():
            return final
        temp = self.root / f"{_TMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}"
        try:
            body, _ = self._get(digest, 0, None, whole=False)
            hasher = hashlib.sha256()
            with body, open(temp, "xb") as out:
                for chunk in iter(lambda: body.read(_CHUNK), b""):
                    hasher.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if hasher.hexdigest() != digest:
                raise StorageError(
                    f"the object for blob {digest} in s3://{self.bucket} holds other bytes (sha256 "
                    f"{hasher.hexdigest()}); it was overwritten outside this program: restore it or delete the record"
                )
            os.chmod(temp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, final)  # a concurrent download of the same digest wrote the same bytes
            fsync_dir(final.parent)
        except OSError as exc:
            raise StorageError(f"cannot write the blob cache folder {self.root}: {exc.strerror or exc}") from exc
        except Exception as exc:
            raise self._error(exc, "read a blob", digest=digest) from exc
        finally:
            temp.unlink(missing_ok=True)
        return final

    # -- gc and totals -----------------------------------------------------------------------------

    def delete(self, digest: str) -> None:
        """Remove the object (and this host's cached copy). Only gc calls this, inside a write transaction."""
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(check_digest(digest)))
        except Exception as exc:
            raise self._error(exc, "delete a blob", digest=digest) from exc
        cached = self._cache_path(digest)
        try:
            os.chmod(cached, stat.S_IWUSR | stat.S_IRUSR)
            cached.unlink()
        except OSError:
            pass  # not cached here, or not removable now: local_path checks the bucket first, so it is never served

    def _listing(self) -> Iterator[tuple[str, int]]:
        start = f"{self._base}sha256/"
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
                for item in page.get("Contents", ()):
                    name = item["Key"].rsplit("/", 1)[-1]
                    if _HEX.fullmatch(name) and item["Key"] == self._key(name):
                        yield name, int(item["Size"])
        except Exception as exc:
            raise self._error(exc, "list blobs") from exc

    def digests(self) -> Iterator[str]:
        for digest, _ in self._listing():
            yield digest

    def total_bytes(self) -> int:
        return sum(size for _, size in self._listing())

    def remove_stale_temps(self) -> int:
        """Delete staged uploads and downloads whose writing process is gone; return how many were removed."""
        return remove_orphaned_temps(self.root.glob(f"{_TMP_PREFIX}*"), lambda name: name[len(_TMP_PREFIX) :])


def _rewound(source: BinaryIO) -> BinaryIO:
    source.seek(0)
    return source


class _ObjectReader(io.RawIOBase):
    """The bytes of one object as a raw stream: a streaming GET from the current offset, reopened after a seek."""

    def __init__(self, store: S3BlobStore, digest: str) -> None:
        self._store = store
        self._digest = digest
        self._body: Any
        self._body, self.size = store._get(digest, 0, None, whole=False)  # NotFound now, not at first read
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        target = base + offset
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        if target != self._pos:
            self._drop()
            self._pos = target
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self.size:
            return 0
        if self._body is None:
            self._body, _ = self._store._get(self._digest, self._pos, None, whole=False)
        try:
            data = self._body.read(len(buffer))
        except Exception as exc:
            raise self._store._error(exc, "read a blob", digest=self._digest) from exc
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _drop(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop()
        super().close()
