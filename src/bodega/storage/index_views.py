"""What every store's view of one index shares with all the others: the blob records, the
file digests and the store's health are the same rows whichever index asks."""

from typing import Protocol

from bodega.storage.metadata import BlobRecords, FileDigestStore, StoreHealth


class SharedConcerns:
    """The store's shared methods, as an index view's own (a base of each backend's view)."""

    def __init__(self, shared: "_Shared") -> None:
        self.record_blob = shared.record_blob
        self.blob_keys = shared.blob_keys
        self.forget_blob = shared.forget_blob
        self.is_writable = shared.is_writable
        self.touch_blobs = shared.touch_blobs
        self.blob_usage = shared.blob_usage
        self.blobs_by_access = shared.blobs_by_access
        self.cached_keys = shared.cached_keys
        self.put_file_digests = shared.put_file_digests
        self.file_digests = shared.file_digests


class _Shared(BlobRecords, FileDigestStore, StoreHealth, Protocol):
    """The shared concerns, as a store offers them."""
