"""The metadata store's SQLite schema, as the migrations that build it: each upgrades it by
one version (PRAGMA user_version); append, never edit a released one."""

import sqlite3

# SQLite 3.34 brought FTS5's trigram tokenizer, which finds a substring of 800k names in a
# millisecond (LIKE '%term%' uses it). Older SQLite gets a plain table with the same
# columns: the same queries work, scanning instead of looking up.
_HAS_TRIGRAMS = sqlite3.sqlite_version_info >= (3, 34, 0)
# automerge 8 (default 4): a sync of 800k names adds a segment per chunk, and merging them
# less eagerly halves its writes and its longest chunk; lookups stay in milliseconds.
_TRIGRAM_TABLE = (
    "CREATE VIRTUAL TABLE search_trigrams USING fts5("
    "text, tokenize='trigram', detail='none', columnsize=0);"
    " INSERT INTO search_trigrams (search_trigrams, rank) VALUES ('automerge', 8)"
    if _HAS_TRIGRAMS
    else "CREATE TABLE search_trigrams (text TEXT NOT NULL)"
)
_TRIGRAM_ROWID = "(length(key) << 32) | id"

MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE IF NOT EXISTS pages (
    project TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    fetched_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS blobs (
    key TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS root (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    html_key TEXT NOT NULL,
    json_key TEXT NOT NULL,
    project_count INTEGER NOT NULL,
    fetched_at REAL NOT NULL
);
""",
    # 2: search. Names from the root list and the projects bodega has seen; FTS5 over the
    # words of each name and its summary (rowid = search_names.id).
    """
CREATE TABLE IF NOT EXISTS search_names (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS search_details (
    key TEXT PRIMARY KEY,
    version TEXT,
    summary TEXT NOT NULL,
    summary_version TEXT
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5(words, summary);
CREATE TABLE IF NOT EXISTS search_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    root_key TEXT NOT NULL
);
""",
    # 3: core metadata bodega extracted from wheels whose upstream page offered none (PEP 658).
    """
CREATE TABLE IF NOT EXISTS core_metadata (
    project TEXT NOT NULL,
    filename TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (project, filename)
);
""",
    # 4: last access per blob, for least-recently-used eviction and `bodega cache prune`.
    """
ALTER TABLE blobs ADD COLUMN accessed_at REAL NOT NULL DEFAULT 0;
UPDATE blobs SET accessed_at = stored_at;
CREATE INDEX blobs_by_access ON blobs (accessed_at);
""",
    # 5: the gzip copies of the root list's renderings, NULL until they are made (issue 6).
    """
ALTER TABLE root ADD COLUMN html_gzip_key TEXT;
ALTER TABLE root ADD COLUMN json_gzip_key TEXT;
""",
    # 6: search inside names (issue 16). Each name as "-key-", so "-term-" finds whole
    # words and "term" any substring; rowid = length << 32 | search_names.id, so the first
    # matches in rowid order are the shortest names. And how often bodega served each
    # project, its own popularity signal. The full-text index keeps only summaries, one row
    # per project with details: names are matched by trigrams now, and a sync no longer
    # writes 800k rows of words. Only the names bodega has details of are kept
    # (tables rebuilt, not 800k rows deleted: seconds, not tens of seconds, at start-up);
    # the next sync, due at once, adds the others back with their trigrams.
    f"""
CREATE TABLE search_names_kept (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);
INSERT INTO search_names_kept SELECT id, key, name FROM search_names
  WHERE key IN (SELECT key FROM search_details);
DROP TABLE search_names;
ALTER TABLE search_names_kept RENAME TO search_names;
DROP TABLE search_text;
CREATE VIRTUAL TABLE search_text USING fts5(summary);
INSERT INTO search_text (rowid, summary)
  SELECT n.id, d.summary FROM search_names n JOIN search_details d USING (key);
{_TRIGRAM_TABLE};
INSERT INTO search_trigrams (rowid, text) SELECT {_TRIGRAM_ROWID}, '-' || key || '-'
  FROM search_names;
CREATE TABLE search_downloads (key TEXT PRIMARY KEY, count INTEGER NOT NULL);
DELETE FROM search_state;
""",  # noqa: S608 (constant SQL)
    # 7: the other digests of files bodega hashed itself, by their sha256, for the JSON API's
    # `digests` (issue 16). Facts about the bytes: they outlive the blob's eviction.
    """
CREATE TABLE IF NOT EXISTS file_digests (
    sha256 TEXT PRIMARY KEY,
    md5 TEXT NOT NULL,
    blake2b_256 TEXT NOT NULL
) WITHOUT ROWID;
""",
    # 8: indexes (issue 12). Each per-index table gains the index's number (the table
    # `indexes` names them); the rows stored before indexes existed belong to root/pypi,
    # number 0. A search name's id is `number << 48 | n` and its trigram rowid adds
    # `length << 32` (migration 6), so each index's full-text rows are one rowid range
    # that FTS5 reads alone, and root/pypi's ids and full-text rows stay as they are: only
    # plain tables are rebuilt (INSERT..SELECT, as in migration 6), no FTS5 row rewritten.
    """
CREATE TABLE indexes (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
INSERT INTO indexes VALUES (0, 'root/pypi');
CREATE TABLE pages_scoped (
    index_id INTEGER NOT NULL,
    project TEXT NOT NULL,
    record TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    fetched_at REAL NOT NULL,
    PRIMARY KEY (index_id, project)
);
INSERT INTO pages_scoped SELECT 0, project, record, etag, last_modified, fetched_at FROM pages;
DROP TABLE pages;
ALTER TABLE pages_scoped RENAME TO pages;
CREATE TABLE root_scoped (
    index_id INTEGER PRIMARY KEY,
    html_key TEXT NOT NULL,
    json_key TEXT NOT NULL,
    project_count INTEGER NOT NULL,
    fetched_at REAL NOT NULL,
    html_gzip_key TEXT,
    json_gzip_key TEXT
);
INSERT INTO root_scoped
  SELECT 0, html_key, json_key, project_count, fetched_at, html_gzip_key, json_gzip_key
  FROM root;
DROP TABLE root;
ALTER TABLE root_scoped RENAME TO root;
CREATE TABLE search_names_scoped (
    id INTEGER PRIMARY KEY,
    index_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (index_id, key)
);
INSERT INTO search_names_scoped SELECT id, 0, key, name FROM search_names ORDER BY key;
DROP TABLE search_names;
ALTER TABLE search_names_scoped RENAME TO search_names;
CREATE TABLE search_details_scoped (
    index_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    version TEXT,
    summary TEXT NOT NULL,
    summary_version TEXT,
    PRIMARY KEY (index_id, key)
);
INSERT INTO search_details_scoped SELECT 0, key, version, summary, summary_version
  FROM search_details;
DROP TABLE search_details;
ALTER TABLE search_details_scoped RENAME TO search_details;
CREATE TABLE search_downloads_scoped (
    index_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (index_id, key)
);
INSERT INTO search_downloads_scoped SELECT 0, key, count FROM search_downloads;
DROP TABLE search_downloads;
ALTER TABLE search_downloads_scoped RENAME TO search_downloads;
CREATE TABLE search_state_scoped (index_id INTEGER PRIMARY KEY, root_key TEXT NOT NULL);
INSERT INTO search_state_scoped SELECT 0, root_key FROM search_state;
DROP TABLE search_state;
ALTER TABLE search_state_scoped RENAME TO search_state;
CREATE TABLE core_metadata_scoped (
    index_id INTEGER NOT NULL,
    project TEXT NOT NULL,
    filename TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (index_id, project, filename)
);
INSERT INTO core_metadata_scoped SELECT 0, project, filename, sha256 FROM core_metadata;
DROP TABLE core_metadata;
ALTER TABLE core_metadata_scoped RENAME TO core_metadata;
""",
    # Supply-chain policy (issue 15): break-glass exemptions and files removed upstream.
    """
CREATE TABLE policy_exemptions (
    id INTEGER PRIMARY KEY,
    index_name TEXT NOT NULL,
    project TEXT NOT NULL,
    version TEXT,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    until REAL,
    revoked_at REAL
);
CREATE TABLE policy_removed_files (
    index_name TEXT NOT NULL,
    project TEXT NOT NULL,
    filename TEXT NOT NULL,
    record TEXT NOT NULL,
    removed_at REAL NOT NULL,
    PRIMARY KEY (index_name, project, filename)
);
""",
    # 10: hosted indexes (issue 13): uploaded files, every filename ever accepted, reserved
    # names. A hosted file's blob has no row in `blobs`: it is pinned, never evicted.
    """
CREATE TABLE hosted_projects (
    index_id INTEGER NOT NULL,
    project TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT,
    status_reason TEXT,
    PRIMARY KEY (index_id, project)
);
CREATE TABLE hosted_files (
    index_id INTEGER NOT NULL,
    filename TEXT NOT NULL,
    project TEXT NOT NULL,
    version TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    md5 TEXT NOT NULL,
    blake2b_256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    uploaded_at REAL NOT NULL,
    requires_python TEXT,
    metadata_sha256 TEXT,
    yanked INTEGER NOT NULL DEFAULT 0,
    yank_reason TEXT NOT NULL DEFAULT '',
    attestations TEXT,
    PRIMARY KEY (index_id, filename)
);
CREATE INDEX hosted_files_by_project ON hosted_files (index_id, project);
CREATE INDEX hosted_files_by_sha256 ON hosted_files (sha256);
CREATE INDEX hosted_files_by_metadata ON hosted_files (metadata_sha256);
CREATE TABLE hosted_filenames (
    index_id INTEGER NOT NULL,
    filename TEXT NOT NULL,
    PRIMARY KEY (index_id, filename)
);
CREATE TABLE hosted_reserved (
    index_id INTEGER NOT NULL,
    project TEXT NOT NULL,
    PRIMARY KEY (index_id, project)
);
""",
    # 11: accounts and API tokens (issue 13), shared by every index. A token's secret is kept
    # only as a sha256 digest; its indexes are a JSON list of names ("*": every index), its
    # projects a JSON list of the projects it may upload and manage ([]: every project).
    """
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    password_hash TEXT,
    is_admin INTEGER NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE tokens (
    token_id TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    scope TEXT NOT NULL,
    indexes TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    description TEXT NOT NULL,
    projects TEXT NOT NULL
);
CREATE INDEX tokens_by_user ON tokens (user);
""",
    # 12: failed logins per client address, so that every process on this data dir (--workers)
    # holds an address back together; rows older than the window go as new ones come.
    """
CREATE TABLE failed_logins (
    client TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX failed_logins_by_client ON failed_logins (client, at);
CREATE INDEX failed_logins_by_time ON failed_logins (at);
""",
)
