"""Blobs in an S3-compatible object store, named `<prefix>sha256/<hex>` in one bucket.

Chosen with `--blob-store s3://bucket/prefix`. Credentials, region and endpoint come from
the standard AWS variables and files (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_PROFILE`,
...), read by botocore itself; a store with an endpoint of its own (not AWS) is addressed
path-style, as SeaweedFS, MinIO and Ceph want.

A writer keeps up to one part in memory: a blob smaller than that is one PUT at commit, a
larger one a multipart upload completed at commit. Neither is visible before its commit
(an object store shows an object only once its PUT or CompleteMultipartUpload succeeds),
and an aborted writer aborts its upload. A store that cannot be reached raises
StorageError (503), never FileNotFoundError: an unreachable store is not a missing blob.
"""

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from bodega.errors import ConfigError, StorageError
from bodega.storage.blobs import check_key

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

log = logging.getLogger(__name__)

_CHUNK = 256 * 1024
# S3's smallest part (but the last) is 5 MiB; 8 MiB parts keep a 1 GiB wheel at 128 parts.
PART_BYTES = 8 * 1024 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound"}
_UNAVAILABLE = (BotoCoreError, aiohttp.ClientError, OSError, asyncio.TimeoutError)


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where the blobs live: `s3://bucket/prefix`."""

    bucket: str
    prefix: str  # "" or ending in "/"

    @classmethod
    def parse(cls, url: str) -> "S3Location":
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ConfigError(f"not an s3://bucket/prefix URL: {url!r}")
        prefix = parts.path.strip("/")
        return cls(parts.netloc, f"{prefix}/" if prefix else "")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@asynccontextmanager
async def open_s3_blobs(url: str, *, part_bytes: int = PART_BYTES) -> AsyncIterator["S3BlobStore"]:
    """A store on the bucket `url` names, its client open while the block runs."""
    location = S3Location.parse(url)
    session = get_session()
    # An endpoint of its own is an S3-compatible store, which wants path-style addressing
    # (virtual hosts would need a DNS name per bucket).
    has_endpoint = bool(
        session.get_config_variable("endpoint_url")
        or session.get_scoped_config().get("endpoint_url")
    )
    config = AioConfig(
        s3={"addressing_style": "path" if has_endpoint else "auto"},
        # SigV4 for presigned URLs too (botocore's default there is the retired SigV2).
        signature_version="s3v4",
        # The store down must fail a request in seconds (a 503), not hold it for minutes.
        connect_timeout=5,
        read_timeout=30,
        retries={"mode": "standard", "max_attempts": 3},
    )
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(session.create_client("s3", config=config))
        store = S3BlobStore(client, location, part_bytes=part_bytes)
        stack.push_async_callback(store.close)
        yield store


class S3BlobStore:
    """A BlobStore on one bucket and prefix (no LocalBlobs: its blobs are no files here)."""

    def __init__(
        self, client: "S3Client", location: S3Location, *, part_bytes: int = PART_BYTES
    ) -> None:
        self._client = client
        self.location = location
        self.part_bytes = part_bytes
        self._abandoned: set[asyncio.Task[None]] = set()  # aborts of dropped writers

    def object_name(self, key: str) -> str:
        return f"{self.location.prefix}sha256/{check_key(key)}"

    def open_writer(self, key: str) -> "S3BlobWriter":
        return S3BlobWriter(self, self.object_name(key))

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        name = self.object_name(key)
        if end is not None and end <= start:
            if await self.size(key) is None:  # nothing to read, but it must be there
                raise FileNotFoundError(f"no blob {key}")
            return
        arguments: dict[str, Any] = {"Bucket": self.location.bucket, "Key": name}
        if start > 0 or end is not None:
            arguments["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            response = await self._client.get_object(**arguments)
        except ClientError as error:
            if _code(error) in _MISSING:
                raise FileNotFoundError(f"no blob {key}") from None
            if _code(error) == "InvalidRange":  # starts at or past the end
                if await self.size(key) is None:
                    raise FileNotFoundError(f"no blob {key}") from None
                return
            raise _unavailable(error) from error
        except _UNAVAILABLE as error:
            raise _unavailable(error) from error
        # The GET answers from the object it found: a delete meanwhile does not cut it short,
        # and botocore checks that every byte the response announced came.
        body = response["Body"]
        try:
            while chunk := await body.read(_CHUNK):
                yield chunk
        except _UNAVAILABLE as error:
            raise _unavailable(error) from error
        finally:
            body.close()

    async def size(self, key: str) -> int | None:
        name = self.object_name(key)
        try:
            head = await self._client.head_object(Bucket=self.location.bucket, Key=name)
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise _unavailable(error) from error
        except _UNAVAILABLE as error:
            raise _unavailable(error) from error
        return head["ContentLength"]

    async def delete(self, key: str) -> None:
        name = self.object_name(key)
        try:
            await self._client.delete_object(Bucket=self.location.bucket, Key=name)
        except (ClientError, *_UNAVAILABLE) as error:
            raise _unavailable(error) from error

    async def keys(self) -> AsyncIterator[str]:
        prefix = f"{self.location.prefix}sha256/"
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.location.bucket, Prefix=prefix
        )
        try:
            async for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"].removeprefix(prefix)
        except (ClientError, *_UNAVAILABLE) as error:
            raise _unavailable(error) from error

    async def probe(self) -> None:
        """Whether the bucket answers (readiness); StorageError when it does not."""
        try:
            await self._client.head_bucket(Bucket=self.location.bucket)
        except (ClientError, *_UNAVAILABLE) as error:
            raise _unavailable(error) from error

    async def presigned_url(self, key: str, seconds: int) -> str:
        """A URL that GETs the blob without credentials for `seconds` (--redirect-files)."""
        url: str = await self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.location.bucket, "Key": self.object_name(key)},
            ExpiresIn=seconds,
        )
        return url

    async def close(self) -> None:
        if self._abandoned:
            await asyncio.wait(self._abandoned, timeout=5)

    def abandoned(self, upload: "_Upload") -> None:
        """A writer was dropped with a multipart upload open: abort it in the background,
        or the store keeps its parts (and bills them) until a lifecycle rule ends it."""
        if upload.upload_id is None:
            return
        try:
            task = asyncio.get_running_loop().create_task(self._abort(upload))
        except RuntimeError:  # no loop any more: the lifecycle rule is the only remedy
            log.warning("multipart upload %s of %s left open", upload.upload_id, upload.name)
            return
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)

    async def _abort(self, upload: "_Upload") -> None:
        upload_id, upload.upload_id = upload.upload_id, None
        if upload_id is None:
            return
        try:
            await self._client.abort_multipart_upload(
                Bucket=self.location.bucket, Key=upload.name, UploadId=upload_id
            )
        except (ClientError, *_UNAVAILABLE) as error:
            log.warning("could not abort the upload of %s: %s", upload.name, error)

    async def _put(self, name: str, data: bytes) -> None:
        try:
            await self._client.put_object(Bucket=self.location.bucket, Key=name, Body=data)
        except (ClientError, *_UNAVAILABLE) as error:
            raise _unavailable(error) from error

    async def _upload_part(self, upload: "_Upload", data: bytes) -> None:
        try:
            if upload.upload_id is None:
                started = await self._client.create_multipart_upload(
                    Bucket=self.location.bucket, Key=upload.name
                )
                upload.upload_id = started["UploadId"]
            number = len(upload.parts) + 1
            part = await self._client.upload_part(
                Bucket=self.location.bucket,
                Key=upload.name,
                UploadId=upload.upload_id,
                PartNumber=number,
                Body=data,
            )
        except (ClientError, *_UNAVAILABLE) as error:
            raise _unavailable(error) from error
        upload.parts.append({"ETag": part["ETag"], "PartNumber": number})

    async def _complete(self, upload: "_Upload") -> None:
        assert upload.upload_id is not None
        try:
            await self._client.complete_multipart_upload(
                Bucket=self.location.bucket,
                Key=upload.name,
                UploadId=upload.upload_id,
                MultipartUpload={"Parts": upload.parts},  # type: ignore[typeddict-item]
            )
        except (ClientError, *_UNAVAILABLE) as error:
            raise _unavailable(error) from error
        upload.upload_id = None


@dataclass
class _Upload:
    """A writer's multipart upload, apart from the writer so a finalizer can abort it."""

    name: str
    upload_id: str | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)


class S3BlobWriter:
    """One blob on its way to the bucket: a part's worth in memory, the rest uploaded."""

    def __init__(self, store: S3BlobStore, name: str) -> None:
        self._store = store
        self._upload = _Upload(name)
        self._pending = bytearray()
        self._is_closed = False
        self._discard = weakref.finalize(self, store.abandoned, self._upload)

    async def write(self, data: bytes) -> None:
        self._check_open()
        # A suspension point even when only buffering: a download writing a fast upstream's
        # bytes still lets the other tasks run, and a cancellation land.
        await asyncio.sleep(0)
        self._pending += data
        while len(self._pending) >= self._store.part_bytes:
            part = bytes(self._pending[: self._store.part_bytes])
            del self._pending[: self._store.part_bytes]
            await self._store._upload_part(self._upload, part)

    async def commit(self) -> None:
        self._check_open()
        self._is_closed = True
        pending, self._pending = bytes(self._pending), bytearray()
        try:
            if self._upload.upload_id is None:
                await self._store._put(self._upload.name, pending)
            else:
                if pending:  # the last part may be smaller than the others
                    await self._store._upload_part(self._upload, pending)
                await self._store._complete(self._upload)
        except BaseException:
            await asyncio.shield(self._store._abort(self._upload))
            raise
        finally:
            self._discard.detach()

    async def abort(self) -> None:
        if self._is_closed and self._upload.upload_id is None:
            return
        self._is_closed = True
        self._pending = bytearray()
        self._discard.detach()
        await self._store._abort(self._upload)

    def _check_open(self) -> None:
        if self._is_closed:
            raise ValueError("the blob writer is committed or aborted")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _unavailable(error: BaseException) -> StorageError:
    return StorageError(f"the object store is unavailable: {error}")
