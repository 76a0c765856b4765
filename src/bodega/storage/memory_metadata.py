"""A metadata store in memory, for unit tests and the contract suites only: what SQLite
keeps, in dicts, with the same meaning (tests/contract/ holds both to it)."""

import itertools
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

from bodega.core.search import MIN_SUBSTRING, summary_words
from bodega.storage.index_views import SharedConcerns
from bodega.storage.memory_accounts import MemoryAccountStore
from bodega.storage.memory_hosted import MemoryHostedStore, MemoryHostedStores
from bodega.storage.memory_policy import MemoryPolicyStore
from bodega.storage.metadata import (
    FileDigests,
    RemovedFile,
    SearchDetails,
    StoredBlob,
    StoredPage,
    StoredRoot,
)


class MemoryMetadataStore:
    """Every index's metadata; blob records and file digests shared by all of them."""

    def __init__(self) -> None:
        self._blobs: dict[str, StoredBlob] = {}
        self._digests: dict[str, FileDigests] = {}
        self._indexes: dict[str, _IndexData] = {}
        self._ids = itertools.count(1)  # search names in insertion order, as SQLite's ids
        self._policy = MemoryPolicyStore()
        self._hosted = MemoryHostedStores()
        self._accounts = MemoryAccountStore()

    def index(self, name: str) -> "MemoryIndexStore":
        return MemoryIndexStore(self, self._indexes.setdefault(name, _IndexData()))

    def policy(self) -> MemoryPolicyStore:
        return self._policy

    def hosted(self, name: str) -> MemoryHostedStore:
        return self._hosted.hosted(name)

    def accounts(self) -> MemoryAccountStore:
        return self._accounts

    def export(self) -> "MemoryExport":
        return MemoryExport(self)

    async def root_blob_keys(self) -> frozenset[str]:
        roots = [data.root for data in self._indexes.values() if data.root is not None]
        return frozenset(key for root in roots for key in root.blob_keys)

    async def record_blob(self, key: str, size: int, stored_at: float) -> None:
        self._blobs[key] = StoredBlob(key, size, stored_at)

    async def blob_keys(self) -> set[str]:
        return set(self._blobs)

    async def forget_blob(self, key: str) -> None:
        self._blobs.pop(key, None)

    async def touch_blobs(self, accessed: Mapping[str, float]) -> None:
        for key, at in accessed.items():
            blob = self._blobs.get(key)
            if blob is not None and blob.accessed_at < at:
                self._blobs[key] = replace(blob, accessed_at=at)

    async def blob_usage(self) -> tuple[int, int]:
        return len(self._blobs), sum(blob.size for blob in self._blobs.values())

    async def blobs_by_access(
        self, *, unused_since: float | None = None, limit: int | None = None
    ) -> list[StoredBlob]:
        served = await self.root_blob_keys() | self._hosted.blob_keys()
        found = sorted(
            (
                blob
                for blob in self._blobs.values()
                if blob.key not in served
                and (unused_since is None or blob.accessed_at < unused_since)
            ),
            key=lambda blob: blob.accessed_at,
        )
        return found if limit is None else found[:limit]

    async def cached_keys(self, keys: Collection[str]) -> set[str]:
        return {key for key in keys if key in self._blobs}

    async def put_file_digests(self, digests: FileDigests) -> None:
        self._digests[digests.sha256] = digests

    async def file_digests(self, keys: Collection[str]) -> dict[str, FileDigests]:
        return {key: self._digests[key] for key in keys if key in self._digests}

    async def is_writable(self) -> bool:
        return True

    async def close(self) -> None:
        pass


@dataclass
class _IndexData:
    pages: dict[str, StoredPage] = field(default_factory=dict)
    root: StoredRoot | None = None
    names: dict[str, tuple[int, str]] = field(default_factory=dict)  # key -> (id, name)
    details: dict[str, SearchDetails] = field(default_factory=dict)
    downloads: Counter[str] = field(default_factory=Counter)
    root_key: str | None = None
    core_metadata: dict[str, dict[str, str]] = field(default_factory=dict)


class MemoryIndexStore(SharedConcerns):
    """One index's share of a MemoryMetadataStore."""

    def __init__(self, store: MemoryMetadataStore, data: _IndexData) -> None:
        super().__init__(store)
        self._store = store
        self._data = data

    async def get_page(self, project: str) -> StoredPage | None:
        return self._data.pages.get(project)

    async def put_page(self, page: StoredPage) -> None:
        self._data.pages[page.project] = page

    async def mark_page_fresh(self, project: str, fetched_at: float) -> None:
        page = self._data.pages.get(project)
        if page is not None:
            self._data.pages[project] = replace(page, fetched_at=fetched_at)

    async def has_page(self, project: str) -> bool:
        return project in self._data.pages

    async def forget_page(self, project: str) -> bool:
        return self._data.pages.pop(project, None) is not None

    async def page_count(self) -> int:
        return len(self._data.pages)

    async def get_root(self) -> StoredRoot | None:
        return self._data.root

    async def put_root(self, root: StoredRoot) -> StoredRoot:
        old = self._data.root
        if old is not None and (old.html_key, old.json_key) == (root.html_key, root.json_key):
            root = replace(
                root,
                html_gzip_key=root.html_gzip_key or old.html_gzip_key,
                json_gzip_key=root.json_gzip_key or old.json_gzip_key,
            )
        self._data.root = root
        return root

    async def add_root_gzip(self, root: StoredRoot) -> bool:
        old = self._data.root
        if old is None or (old.html_key, old.json_key) != (root.html_key, root.json_key):
            return False
        self._data.root = replace(
            old, html_gzip_key=root.html_gzip_key, json_gzip_key=root.json_gzip_key
        )
        return True

    async def start_search_sync(self) -> "MemorySearchSync":
        return MemorySearchSync(self._store, self._data)

    async def search_root_key(self) -> str | None:
        return self._data.root_key

    async def get_search_details(self, keys: Collection[str]) -> dict[str, SearchDetails]:
        found = {}
        for key in keys:
            details = self._data.details.get(key)
            if details is not None:
                found[key] = replace(details, name=self._data.names[key][1])
        return found

    async def put_search_details(self, details: SearchDetails) -> None:
        if details.key not in self._data.names:
            self._data.names[details.key] = (next(self._store._ids), details.name)
        self._data.details[details.key] = details

    async def match_names(self, key: str, limit: int) -> list[tuple[str, str]]:
        names = self._data.names
        shortest = sorted(names.items(), key=lambda item: (len(item[0]), item[1][0]))
        found = [(key, names[key][1])] if key in names else []
        found += [(k, name) for k, (_, name) in shortest if f"-{key}-" in f"-{k}-"][:limit]
        if len(key) >= MIN_SUBSTRING:
            found += [(k, name) for k, (_, name) in shortest if key in k][:limit]
        served = [k for k, _ in self._data.downloads.most_common() if key in k and k in names]
        found += [(k, names[k][1]) for k in served[:limit]]
        return found

    async def match_summaries(self, words: Sequence[str], limit: int) -> list[tuple[str, str]]:
        if not words:
            return []
        found = []
        for key, details in self._data.details.items():
            if _has_phrase(summary_words(details.summary), words):
                found.append((key, self._data.names[key][1]))
        return found[:limit]

    async def add_downloads(self, counts: Mapping[str, int]) -> None:
        self._data.downloads.update(counts)

    async def get_downloads(self, keys: Collection[str]) -> dict[str, int]:
        return {key: self._data.downloads[key] for key in keys if key in self._data.downloads}

    async def search_counts(self) -> tuple[int, int]:
        return len(self._data.names), len(self._data.details)

    async def put_core_metadata(self, project: str, filename: str, sha256: str) -> None:
        self._data.core_metadata.setdefault(project, {})[filename] = sha256

    async def core_metadata_of(self, project: str) -> dict[str, str]:
        return dict(self._data.core_metadata.get(project, {}))


class MemoryExport:
    """Everything a MemoryMetadataStore holds, listed whole, as SqliteExport lists it."""

    def __init__(self, store: MemoryMetadataStore) -> None:
        self._store = store

    async def index_names(self) -> list[str]:
        used = {name for name, data in self._store._indexes.items() if data != _IndexData()}
        return sorted(used | set(self._store._hosted.names()))

    async def page_projects(self, index: str) -> list[str]:
        return sorted(self._data(index).pages)

    async def search_names(self, index: str) -> list[tuple[str, str]]:
        return [(key, name) for key, (_, name) in sorted(self._data(index).names.items())]

    async def search_detail_keys(self, index: str) -> list[str]:
        return sorted(self._data(index).details)

    async def download_counts(self, index: str) -> dict[str, int]:
        return dict(self._data(index).downloads)

    async def core_metadata_projects(self, index: str) -> list[str]:
        return sorted(self._data(index).core_metadata)

    async def blob_records(self) -> list[StoredBlob]:
        return [self._store._blobs[key] for key in sorted(self._store._blobs)]

    async def file_digest_keys(self) -> list[str]:
        return sorted(self._store._digests)

    async def removed_files(self) -> list[RemovedFile]:
        return self._store._policy.removed_files()

    async def accepted_filenames(self, index: str) -> list[str]:
        return self._store._hosted.accepted_filenames(index)

    def _data(self, index: str) -> _IndexData:
        return self._store._indexes.get(index) or _IndexData()


class MemorySearchSync:
    def __init__(self, store: MemoryMetadataStore, data: _IndexData) -> None:
        self._store = store
        self._data = data
        self._staged: dict[str, str] = {}

    async def stage(self, names: Sequence[tuple[str, str]]) -> None:
        self._staged.update(names)

    async def merge(self, after: str | None, limit: int) -> str | None:
        """The same chunks as SQLite's merge: up to the last key both sides read past."""
        names = self._data.names
        staged = sorted(k for k in self._staged if k > (after or ""))[:limit]
        existing = sorted(k for k in names if k > (after or ""))[:limit]
        bounds = [keys[-1] for keys in (staged, existing) if len(keys) == limit]
        upper = min(bounds) if bounds else None
        for key in existing:
            if upper is not None and key > upper:
                break
            if key not in self._staged and key not in self._data.details:
                del names[key]
        for key in staged:
            if upper is not None and key > upper:
                break
            row_id = names[key][0] if key in names else next(self._store._ids)
            names[key] = (row_id, self._staged[key])
        return upper

    async def finish(self, root_key: str) -> None:
        self._data.root_key = root_key
        self._staged = {}

    async def abort(self) -> None:
        self._staged = {}


def _has_phrase(text: Sequence[str], words: Sequence[str]) -> bool:
    """Whether `words` come one after another in `text`, the last one as a prefix when it
    has three characters or more (FTS5's phrase with a prefix query, as sqlite.py asks)."""
    *whole, last = words
    for start in range(len(text) - len(words) + 1):
        window = text[start : start + len(words)]
        if list(window[:-1]) != whole:
            continue
        if window[-1] == last or (len(last) >= 3 and window[-1].startswith(last)):
            return True
    return False
