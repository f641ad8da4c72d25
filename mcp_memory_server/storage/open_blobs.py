"""Choose the blob store from the settings: ``blob_url`` is the whole configuration (credentials come the AWS way)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ..config import Config
from ..errors import InvalidInput, StorageError
from .blobs import BlobStore, LocalBlobStore

__all__ = ["open_blob_store"]

_FORMS = "use s3://bucket or s3://bucket/prefix, or leave blob_url unset for the blobs/ folder in the data directory"


def open_blob_store(config: Config, data_dir: Path) -> BlobStore:
    """The store's content: ``blobs/`` in ``data_dir``, or the bucket at ``config.blob_url``.

    A bucket's local staging and read cache live in ``data_dir/blob-cache``.

    Raises:
        InvalidInput: the URL is not one of the accepted forms.
        StorageError: object-store support is not installed, or the bucket cannot be used
            (absent, credentials refused, endpoint unreachable).
    """
    url = config.blob_url
    if not url:
        return LocalBlobStore(data_dir / "blobs")
    parts = urlsplit(url)
    if parts.scheme.lower() != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise InvalidInput(f"blob_url {url!r} is not a blob store this program has; {_FORMS}")
    try:
        from .objectstore import S3BlobStore
    except ImportError as exc:
        raise StorageError("object-store support is not installed: pip install 'mcp-memory-server[s3]'") from exc
    return S3BlobStore(parts.netloc, parts.path.strip("/"), data_dir / "blob-cache")
