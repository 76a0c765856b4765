"""The md5 and blake2b_256 of files bodega holds, for the JSON API's `digests` (issue 16).

The public index's simple pages give only sha256, while its JSON API gives all three, and
some callers check md5. bodega can say the other two for files it has cached: it hashes
each verified blob once, in the background, after a JSON API request listed it (the
request is answered with what is known; the next one has them), and keeps the result by
the file's sha256. One file is hashed at a time, and a request queues a bounded number.
"""

import asyncio
import hashlib
import logging
from collections.abc import Collection
from typing import Protocol

from bodega.errors import BodegaError
from bodega.proxy.files import FileCache
from bodega.storage.metadata import BlobRecords, FileDigests, FileDigestStore


class DigestRecords(BlobRecords, FileDigestStore, Protocol):
    """What the digester needs: which blobs are cached, and their digests."""


log = logging.getLogger(__name__)

QUEUED_PER_REQUEST = 64


class FileDigester:
    """Knows, and in the background learns, the other digests of cached files."""

    def __init__(self, store: DigestRecords, files: FileCache) -> None:
        self._store = store
        self._files = files
        self._queued: dict[str, None] = {}  # sha256s waiting, in order
        self._worker: asyncio.Task[None] | None = None

    async def known(self, keys: Collection[str]) -> dict[str, dict[str, str]]:
        """sha256 -> {hash name: hex digest} for the files bodega has hashed; cached files
        not hashed yet are queued, so a later request has them."""
        found = await self._store.file_digests(keys)
        missing = [k for k in keys if k not in found and k not in self._queued]
        if missing:
            cached = await self._store.cached_keys(missing)
            for key in [k for k in missing if k in cached][:QUEUED_PER_REQUEST]:
                self._queued[key] = None
            if self._queued and self._worker is None:
                self._worker = asyncio.ensure_future(self._work())
        return {k: {"md5": d.md5, "blake2b_256": d.blake2b_256} for k, d in found.items()}

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def _work(self) -> None:
        try:
            while self._queued:
                key = next(iter(self._queued))
                try:
                    await self._hash(key)
                except (BodegaError, OSError) as error:  # a later request queues it again
                    log.warning("could not hash cached file %s: %s", key, error)
                self._queued.pop(key, None)
        finally:
            self._worker = None

    async def _hash(self, key: str) -> None:
        hashers = _Hashers()
        try:
            # Read through the blob store, whatever it is; hashed off the loop, a chunk a hop.
            async for chunk in self._files.read(key):
                await asyncio.to_thread(hashers.update, chunk)
        except FileNotFoundError:
            return  # evicted before or while being read
        digests = hashers.digests(key)
        if digests is None:
            log.warning("cached file %s no longer matches its sha256; not describing it", key)
            return
        await self._store.put_file_digests(digests)


class _Hashers:
    def __init__(self) -> None:
        # sha256 too: the digests said for a file must be of the very bytes the index named.
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._blake2b = hashlib.blake2b(digest_size=32)

    def update(self, chunk: bytes) -> None:
        self._sha256.update(chunk)
        self._md5.update(chunk)
        self._blake2b.update(chunk)

    def digests(self, key: str) -> FileDigests | None:
        if self._sha256.hexdigest() != key:
            return None
        return FileDigests(key, self._md5.hexdigest(), self._blake2b.hexdigest())
