"""The metadata store interface: project pages with their validators, blob records, and the
search index (project names, summaries, latest versions).

A store holds the metadata of every index (`<user>/<index>`): a MetadataStore is one
index's share of it, whose pages, root list, search and core metadata are that index's own,
and whose blob records and file digests are the same for every index (blobs are shared)."""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bodega.core.model import DistributionFile
from bodega.core.policy import Exemption

# The index bodega's single mirror became (issue 12): what was stored before indexes
# existed belongs to it.
FIRST_INDEX = "root/pypi"


@dataclass(frozen=True, slots=True)
class StoredPage:
    """A project page as last fetched from upstream, with what revalidation needs."""

    project: str
    record: dict[str, Any]  # ProjectPage.to_record()
    etag: str | None
    last_modified: str | None
    fetched_at: float  # when upstream last confirmed it (200 or 304), epoch seconds


@dataclass(frozen=True, slots=True)
class StoredRoot:
    """The root list, rendered once per refresh and kept as two blobs, with a gzip copy of
    each once it is made (in the background, after the renderings are served)."""

    html_key: str
    json_key: str
    project_count: int
    fetched_at: float
    html_gzip_key: str | None = None
    json_gzip_key: str | None = None

    @property
    def blob_keys(self) -> frozenset[str]:
        """Every blob the root list is served from: none is evicted, pruned or adopted."""
        keys = (self.html_key, self.json_key, self.html_gzip_key, self.json_gzip_key)
        return frozenset(key for key in keys if key is not None)

    @property
    def is_compressed(self) -> bool:
        return self.html_gzip_key is not None and self.json_gzip_key is not None


@dataclass(frozen=True, slots=True)
class SearchDetails:
    """What bodega learned about a project from its page or its core metadata."""

    key: str  # PEP 503 normalized name
    name: str  # upstream's spelling
    version: str | None  # the latest version seen
    summary: str
    summary_version: str | None  # the version the summary was read from


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A blob's record: its size and when a client last asked for it."""

    key: str
    size: int
    accessed_at: float  # epoch seconds; the time it was stored until first asked for


@dataclass(frozen=True, slots=True)
class FileDigests:
    """The digests bodega computed of a verified file, besides the sha256 it is known by."""

    sha256: str
    md5: str
    blake2b_256: str


class PageStore(Protocol):
    """An index's project pages, as last fetched from upstream."""

    async def get_page(self, project: str) -> StoredPage | None: ...

    async def put_page(self, page: StoredPage) -> None: ...

    async def mark_page_fresh(self, project: str, fetched_at: float) -> None:
        """Upstream said 304: the stored page is confirmed as of `fetched_at`."""

    async def has_page(self, project: str) -> bool: ...

    async def forget_page(self, project: str) -> bool:
        """Drop the stored page, so the next request fetches it in full; False if none."""

    async def page_count(self) -> int: ...


class BlobRecords(Protocol):
    """A record per blob in the blob store, shared by every index: its size and last use."""

    async def record_blob(self, key: str, size: int, stored_at: float) -> None:
        """A blob was committed to the blob store."""

    async def blob_keys(self) -> set[str]: ...

    async def forget_blob(self, key: str) -> None: ...

    async def touch_blobs(self, accessed: Mapping[str, float]) -> None:
        """Record last-access times, many at once (hits are batched, not one write each)."""

    async def blob_usage(self) -> tuple[int, int]:
        """How many blobs are recorded, and their total size in bytes."""

    async def blobs_by_access(
        self, *, unused_since: float | None = None, limit: int | None = None
    ) -> list[StoredBlob]:
        """Recorded blobs, least recently used first, optionally only those not used since
        `unused_since`; never the blobs any index's root list is served from, nor those of
        a hosted index's files (pinned)."""

    async def cached_keys(self, keys: Collection[str]) -> set[str]:
        """Those of `keys` that are recorded blobs."""


class RootListStore(Protocol):
    """An index's root list (every project upstream lists), as its renderings' blobs."""

    async def get_root(self) -> StoredRoot | None: ...

    async def put_root(self, root: StoredRoot) -> StoredRoot:
        """Store the root list; returns it as stored: a root with the same renderings as the
        one it replaces keeps the gzip copies recorded for them."""

    async def add_root_gzip(self, root: StoredRoot) -> bool:
        """Record `root`'s gzip copies if its renderings are still the stored ones; False
        (and nothing changed) when a newer root list replaced them meanwhile."""


class SearchSync(Protocol):
    """One sync of an index's searchable names with a new list of them, staged whole
    first, then merged a chunk at a time. One sync of an index at a time; it ends with
    `finish` or `abort`, which drop what it staged."""

    async def stage(self, names: Sequence[tuple[str, str]]) -> None:
        """Stage (key, name) pairs, in any order; a key staged again keeps its last name."""

    async def merge(self, after: str | None, limit: int) -> str | None:
        """Make the searchable names after `after` (exclusive) the staged ones, up to the
        returned key: at most `limit` of each side, in one short step that other work can
        come between. None when the whole index matches the staging. Names with details
        stay even when the staging lacks them."""

    async def finish(self, root_key: str) -> None:
        """The merge is done: the names are those of the root-list blob `root_key`."""

    async def abort(self) -> None:
        """Give up: what was merged stays, the staging goes, `search_root_key` is unchanged."""


class SearchIndex(Protocol):
    """An index's search: names from its root list, details (latest version, summary) of
    the projects bodega has seen, and how often bodega served each project."""

    async def start_search_sync(self) -> SearchSync: ...

    async def search_root_key(self) -> str | None:
        """The root-list blob the names were last synced from."""

    async def get_search_details(self, keys: Collection[str]) -> dict[str, SearchDetails]: ...

    async def put_search_details(self, details: SearchDetails) -> None:
        """Store (replace) a project's details and make its name and summary searchable."""

    async def match_names(self, key: str, limit: int) -> list[tuple[str, str]]:
        """Candidates for a term in name form: (key, name) of the name equal to it, of the
        shortest `limit` names with it as words, and with it inside (from three characters),
        and of the projects bodega served most that have it inside. Unranked; repeats."""

    async def match_summaries(self, words: Sequence[str], limit: int) -> list[tuple[str, str]]:
        """(key, name) of `limit` projects whose summary has `words` (lowercase letters and
        digits, `summary_words`) one after another, the last one also as the start of a
        longer word when it has three characters or more."""

    async def add_downloads(self, counts: Mapping[str, int]) -> None:
        """Count files served, by project key: search's popularity signal."""

    async def get_downloads(self, keys: Collection[str]) -> dict[str, int]: ...

    async def search_counts(self) -> tuple[int, int]:
        """How many names are searchable (an upper bound once names were removed), and how
        many projects have details."""


class CoreMetadataRecords(Protocol):
    """The core metadata bodega extracted itself from an index's wheels (PEP 658)."""

    async def put_core_metadata(self, project: str, filename: str, sha256: str) -> None:
        """bodega extracted the METADATA of a wheel (blob `sha256`); its page may advertise it."""

    async def core_metadata_of(self, project: str) -> dict[str, str]:
        """Filename -> sha256 of every METADATA bodega extracted for this project's wheels."""


class FileDigestStore(Protocol):
    """Digests bodega computed of verified files, by sha256: facts about bytes, shared by
    every index, that outlive the blob."""

    async def put_file_digests(self, digests: FileDigests) -> None:
        """Keep the digests bodega computed of a verified file."""

    async def file_digests(self, keys: Collection[str]) -> dict[str, FileDigests]:
        """The digests kept for those of the files `keys` (sha256s) that bodega hashed."""


@dataclass(frozen=True, slots=True)
class NewExemption:
    """A break-glass exemption as `bodega allow` asks for it (the store numbers it)."""

    index: str
    project: str  # normalized
    version: str | None
    reason: str
    created_by: str
    created_at: float
    until: float | None

    @classmethod
    def of(cls, exemption: Exemption) -> "NewExemption":
        """What was asked for to make `exemption` (its store's number and revocation aside)."""
        return cls(
            exemption.index,
            exemption.project,
            exemption.version,
            exemption.reason,
            exemption.created_by,
            exemption.created_at,
            exemption.until,
        )


class PolicyStore(Protocol):
    """Supply-chain policy's records, every index's (issue 15): break-glass exemptions, and
    the files upstream removed whose cached bytes stay available to their exact URL."""

    async def add_exemption(self, exemption: NewExemption) -> Exemption:
        """The exemption, numbered. One identical to a recorded one (every field, its
        creation time included) is that one: a write tried again after its answer was lost
        (a dropped database connection) records nothing twice."""

    async def exemptions(self) -> list[Exemption]:
        """Every exemption ever made, revoked and expired ones too, oldest first."""

    async def revoke_exemption(self, exemption_id: int, revoked_at: float) -> Exemption | None:
        """Revoke it (once: a second revocation keeps the first time); None for no such id."""

    async def put_removed_file(
        self, index: str, project: str, file: DistributionFile, removed_at: float
    ) -> None:
        """Upstream stopped listing `file`: keep its entry (the first removal's time)."""

    async def removed_file(
        self, index: str, project: str, filename: str
    ) -> DistributionFile | None:
        """The entry of a file upstream removed from the project's page, if one was."""

    async def restored_file(self, index: str, project: str, filename: str) -> None:
        """Upstream lists the file again: it is no removed file any more."""


@dataclass(frozen=True, slots=True)
class HostedFile:
    """A file uploaded to a hosted index, and what its page says of it."""

    project: str  # PEP 503 normalized
    version: str  # PEP 440 normalized
    filename: str
    sha256: str  # its blob's key
    md5: str
    blake2b_256: str
    size: int
    uploaded_at: float  # epoch seconds: its PEP 700 upload-time
    requires_python: str | None = None
    metadata_sha256: str | None = None  # PEP 658: the blob of its METADATA, for wheels
    yanked: bool = False  # PEP 592
    yank_reason: str = ""
    attestations: str | None = None  # PEP 740: the JSON list uploaded with it


@dataclass(frozen=True, slots=True)
class HostedProject:
    """A project of a hosted index: its name as first uploaded and its PEP 792 status."""

    project: str  # normalized
    name: str
    status: str | None = None  # None: active
    status_reason: str | None = None


class HostedStore(Protocol):
    """A hosted index's projects and files, and every filename it ever accepted (a
    filename is never accepted twice, not even after its file is deleted)."""

    async def add_hosted_file(self, file: HostedFile, name: str) -> bool:
        """Record an uploaded file (and its project, spelled `name`, when new), atomically;
        False (and nothing recorded) when the filename was accepted before."""

    async def was_accepted(self, filename: str) -> bool: ...

    async def accept_filename(self, filename: str) -> bool:
        """Take a filename without a file (one accepted and deleted where it came from:
        `bodega migrate`); False when it was taken."""

    async def hosted_files(self, project: str) -> list[HostedFile]:
        """The project's files, in upload order."""

    async def hosted_project(self, project: str) -> HostedProject | None: ...

    async def hosted_projects(self) -> list[HostedProject]:
        """Every project with a row, by normalized name."""

    async def set_yanked(
        self, project: str, version: str | None, filename: str | None, reason: str | None
    ) -> int:
        """Yank (reason: a text, maybe empty) or unyank (None) the files of a project, of
        one version, or one file; how many files matched."""

    async def delete_hosted_files(
        self, project: str, version: str | None, filename: str | None
    ) -> list[HostedFile]:
        """Delete files (of the project, a version, or one) and return them; deleting the
        whole project (both None) drops its row too. Their filenames stay accepted."""

    async def set_project_status(
        self, project: str, status: str | None, reason: str | None
    ) -> bool:
        """Set a project's PEP 792 status (None: active); False when there is no project."""

    async def reserve(self, project: str) -> None: ...

    async def release_reservation(self, project: str) -> bool: ...

    async def reservations(self) -> set[str]: ...

    async def hosted_blob_keys(self) -> set[str]:
        """The blobs of every hosted file of every index (files and METADATA): pinned, never
        evicted, pruned or adopted."""


@dataclass(frozen=True, slots=True)
class RemovedFile:
    """A file upstream stopped listing, as the PolicyStore keeps it."""

    index: str
    project: str
    file: DistributionFile
    removed_at: float


class MetadataExport(Protocol):
    """Everything a store holds, listed whole, for `bodega migrate`: the keys each concern's
    records are read by (through that concern's own Protocol), and the few records no
    concern lists. Read-only; lists in a stable order (by key or name)."""

    async def index_names(self) -> list[str]:
        """Every index that has rows of any concern."""

    async def page_projects(self, index: str) -> list[str]: ...

    async def search_names(self, index: str) -> list[tuple[str, str]]:
        """(key, name) of every searchable name of the index."""

    async def search_detail_keys(self, index: str) -> list[str]: ...

    async def download_counts(self, index: str) -> dict[str, int]: ...

    async def core_metadata_projects(self, index: str) -> list[str]: ...

    async def blob_records(self) -> list[StoredBlob]:
        """Every blob record (the root lists' and hosted files' blobs included)."""

    async def file_digest_keys(self) -> list[str]: ...

    async def removed_files(self) -> list[RemovedFile]: ...

    async def accepted_filenames(self, index: str) -> list[str]:
        """Every filename the hosted index ever accepted, its files deleted since too."""


class StoreHealth(Protocol):
    async def is_writable(self) -> bool:
        """Whether a write could start now (for readiness checks)."""


class MetadataStore(
    PageStore,
    BlobRecords,
    RootListStore,
    SearchIndex,
    CoreMetadataRecords,
    FileDigestStore,
    StoreHealth,
    Protocol,
):
    """One index's metadata: its own pages, root list, search and core metadata, and the
    blob records and file digests every index shares."""


class SharedMetadataStore(BlobRecords, FileDigestStore, StoreHealth, Protocol):
    """The metadata of every index: what they share, and each one's through `index`."""

    def index(self, name: str) -> MetadataStore:
        """The metadata of the index `name` (`<user>/<index>`)."""

    def policy(self) -> PolicyStore:
        """Supply-chain policy's records, every index's."""

    async def root_blob_keys(self) -> frozenset[str]:
        """Every blob any index's root list is served from."""

    def hosted(self, name: str) -> HostedStore:
        """The projects and files of the hosted index `name`."""

    def accounts(self) -> "AccountStore":
        """Accounts and API tokens, shared by every index."""

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StoredUser:
    """An account: its name, its password's argon2 hash (None: it logs in by token only)."""

    name: str
    password_hash: str | None
    is_admin: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class StoredToken:
    """An API token, by the id it is looked up with; its secret only as a digest."""

    token_id: str
    user: str
    digest: str  # core.access.token_digest of the secret
    scope: str  # an Action's label: read, upload, admin
    indexes: tuple[str, ...]  # index names, or "*" for every index
    created_at: float
    expires_at: float | None  # epoch seconds; None: never
    description: str = ""
    # The projects (normalized names) it may upload and manage; empty: every project.
    projects: tuple[str, ...] = ()


class AccountStore(Protocol):
    """Accounts and their API tokens, shared by every index."""

    async def add_user(self, user: StoredUser) -> bool:
        """Add an account; False (nothing changed) when one has that name."""

    async def get_user(self, name: str) -> StoredUser | None: ...

    async def users(self) -> list[StoredUser]:
        """Every account, by name."""

    async def set_password(self, name: str, password_hash: str | None) -> bool:
        """False when there is no such account."""

    async def remove_user(self, name: str) -> bool:
        """Remove an account and every token of it; False when there is none."""

    async def add_first_admin(self, user: StoredUser, token: StoredToken) -> bool:
        """Add `user` and its `token` only if there is no account at all, in one step
        (two starting servers never make two); False when there was one."""

    async def add_token(self, token: StoredToken) -> bool:
        """False (nothing stored) when its account does not exist."""

    async def get_token(self, token_id: str) -> StoredToken | None: ...

    async def tokens(self, user: str | None = None) -> list[StoredToken]:
        """Every token (of one account), oldest first."""

    async def revoke_token(self, token_id: str) -> bool:
        """Delete the token; False when there is none."""

    async def note_failed_login(self, client: str, at: float, forget_before: float) -> None:
        """Count a failed login from the address `client` at `at` (epoch seconds), and
        forget every address's failures from before `forget_before`."""

    async def failed_logins(self, client: str, since: float) -> list[float]:
        """When the failed logins from `client` since `since` were, oldest first."""


class ExportableMetadataStore(SharedMetadataStore, Protocol):
    """A store that can list everything it holds: what `bodega migrate` copies from."""

    def export(self) -> MetadataExport: ...
