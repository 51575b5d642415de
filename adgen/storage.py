"""Asset storage behind one small interface: a local folder by default, S3 for s3://bucket/prefix.

Keys are deterministic per creative (campaigns/<campaign>/<job>/<variant>.png), so writing the same
creative twice overwrites one object instead of leaving two. `put_new` writes only when the key is
free, atomically on both backends (a hard link locally, a conditional PUT on S3), so two processes
can race for a name and exactly one wins. boto3 is imported here and nowhere else.
"""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from adgen.settings import Settings


class StorageError(OSError):
    """The storage could not be reached or refused a request; worth another try later."""


class Storage(Protocol):
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...
    def put_new(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> bool: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def url(self, key: str, expires: int = 3600) -> str: ...


class LocalStorage:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"storage key {key!r} points outside the storage folder")
        return path

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        # Write then rename, so a reader never sees half an object.
        with self._written(path, data) as tmp:
            os.replace(tmp, path)

    def put_new(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        path = self._path(key)
        with self._written(path, data) as tmp:
            try:
                os.link(tmp, path)  # fails if the name exists, atomically
            except FileExistsError:
                return False
        return True

    @contextmanager
    def _written(self, path: Path, data: bytes):
        """A temporary file beside `path` holding `data`; removed afterwards whatever happens, so a
        failed write (a full disk) leaves nothing behind."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            yield tmp
        finally:
            Path(tmp).unlink(missing_ok=True)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def url(self, key: str, expires: int = 3600) -> str:
        return self._path(key).as_uri()


class S3Storage:
    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None):
        import boto3
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = boto3.client(
            "s3", endpoint_url=endpoint_url,
            config=Config(signature_version="s3v4", retries={"max_attempts": 5, "mode": "standard"}),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        with _storage_errors(key):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)

    def put_new(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type,
                                   IfNoneMatch="*")
        except ClientError as e:
            if e.response["Error"]["Code"] in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise StorageError(f"S3 {key}: {e}") from e
        return True

    def get(self, key: str) -> bytes:
        with _storage_errors(key):
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as e:
            if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def url(self, key: str, expires: int = 3600) -> str:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires
        )


@contextmanager
def _storage_errors(key: str):
    """botocore's errors as StorageError, so callers can tell an outage from a bug without botocore."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as e:
        raise StorageError(f"S3 {key}: {e}") from e


def open_storage(settings: Settings) -> Storage:
    url = settings.storage
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return S3Storage(bucket, prefix, endpoint_url=settings.s3_endpoint_url)
    return LocalStorage(url)
