"""Search on PostgreSQL: names found by pg_trgm, summaries by full-text search over the
words bodega's own tokenizer reads (core.search.summary_words), and the chunked sync of
an index's names with a new root list. The queries of postgres.py's index store.

Both the stored tsvector and the query's tsquery are written here, never parsed by a text
search configuration: a summary's positions are exactly its words, so a phrase matches
on PostgreSQL where it matches on SQLite's FTS5 and the in-memory store.
"""

import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from bodega.core.search import MIN_SUBSTRING, summary_words
from bodega.storage.metadata import SearchDetails
from bodega.storage.postgres_schema import SEARCH_LOCK_CLASS

T = TypeVar("T")
# asyncpg's classes are generic to the type checker only.
Db: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

_STAGE_BATCH = 10_000  # names per INSERT while staging
# A sync left behind by a process that died is dropped when a later sync of its index
# starts this long after it.
_STALE_SYNC = 24 * 3600.0
# tsvector limits: a lexeme under 2 KiB, positions up to 16383, at most 256 per lexeme.
_MAX_WORD = 500
_MAX_POSITION = 16383
_MAX_POSITIONS = 255

# The shortest names first (then the oldest): a common word's thousands of matches are
# found by the trigram index and only `limit` of them returned.
_SHORTEST_MATCHES = (
    "SELECT key, name FROM search_names WHERE index_id = $1 AND ('-' || key || '-') LIKE $2"
    " ORDER BY length(key), id LIMIT $3"
)
# The projects this bodega served, however long their names: few, so scanned.
_SERVED_MATCHES = (
    "SELECT n.key, n.name FROM search_downloads d JOIN search_names n"
    " ON n.index_id = d.index_id AND n.key = d.key"
    " WHERE d.index_id = $1 AND strpos(d.key, $2) > 0 ORDER BY d.count DESC LIMIT $3"
)
_SUMMARY_MATCHES = (
    "SELECT n.key, n.name FROM search_details d JOIN search_names n USING (index_id, key)"
    " WHERE d.index_id = $1 AND d.words @@ $2::tsquery LIMIT $3"
)


def _like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern (keys are [a-z0-9-]; this is for safety)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def summary_vector(summary: str) -> str:
    """The tsvector (as text) of a summary's words, each at its position."""
    positions: dict[str, list[int]] = defaultdict(list)
    for position, word in enumerate(summary_words(summary), start=1):
        if len(word) <= _MAX_WORD and len(positions[word]) < _MAX_POSITIONS:
            positions[word].append(min(position, _MAX_POSITION))
    return " ".join(
        f"'{word}':{','.join(map(str, spots))}" for word, spots in positions.items() if spots
    )


def phrase_query(words: Sequence[str]) -> str:
    """The words one after another as a tsquery; the last also as the start of a longer
    word when it has three characters or more. Words are letters and digits (summary_words):
    quoted, none can carry tsquery syntax."""
    quoted = [f"'{word}'" for word in words]
    if len(words[-1]) >= 3:
        quoted[-1] += ":*"
    return " <-> ".join(quoted)


async def match_names(db: Db, index_id: int, key: str, limit: int) -> list[tuple[str, str]]:
    found = await db.fetch(
        "SELECT key, name FROM search_names WHERE index_id = $1 AND key = $2", index_id, key
    )
    found += await db.fetch(_SHORTEST_MATCHES, index_id, f"%-{_like(key)}-%", limit)
    if len(key) >= MIN_SUBSTRING:
        found += await db.fetch(_SHORTEST_MATCHES, index_id, f"%{_like(key)}%", limit)
    found += await db.fetch(_SERVED_MATCHES, index_id, key, limit)
    return [(row[0], row[1]) for row in found]


async def match_summaries(
    db: Db, index_id: int, words: Sequence[str], limit: int
) -> list[tuple[str, str]]:
    rows = await db.fetch(_SUMMARY_MATCHES, index_id, phrase_query(words), limit)
    return [(row[0], row[1]) for row in rows]


async def get_details(db: Db, index_id: int, keys: list[str]) -> dict[str, SearchDetails]:
    rows = await db.fetch(
        "SELECT d.key, n.name, d.version, d.summary, d.summary_version"
        " FROM search_details d JOIN search_names n USING (index_id, key)"
        " WHERE d.index_id = $1 AND d.key = ANY($2::text[])",
        index_id,
        keys,
    )
    return {row[0]: SearchDetails(*row) for row in rows}


async def put_details(db: Db, index_id: int, details: SearchDetails) -> None:
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1, $2)", SEARCH_LOCK_CLASS, index_id)
        await db.execute(
            "INSERT INTO search_names (index_id, key, name) VALUES ($1, $2, $3)"
            " ON CONFLICT (index_id, key) DO NOTHING",
            index_id,
            details.key,
            details.name,
        )
        await db.execute(
            "INSERT INTO search_details VALUES ($1, $2, $3, $4, $5, $6::tsvector)"
            " ON CONFLICT (index_id, key) DO UPDATE SET version = excluded.version,"
            " summary = excluded.summary, summary_version = excluded.summary_version,"
            " words = excluded.words",
            index_id,
            details.key,
            details.version,
            details.summary,
            details.summary_version,
            summary_vector(details.summary),
        )


async def start_sync(db: Db, index_id: int) -> int:
    """A new sync's number; drops what syncs of the index that never ended left behind."""
    now = time.time()
    async with db.transaction():
        await db.execute(
            "DELETE FROM search_staging WHERE sync_id IN (SELECT id FROM search_syncs"
            " WHERE index_id = $1 AND started_at < $2)",
            index_id,
            now - _STALE_SYNC,
        )
        await db.execute(
            "DELETE FROM search_syncs WHERE index_id = $1 AND started_at < $2",
            index_id,
            now - _STALE_SYNC,
        )
        sync_id = await db.fetchval(
            "INSERT INTO search_syncs (index_id, started_at) VALUES ($1, $2) RETURNING id",
            index_id,
            now,
        )
    return int(sync_id)


class PostgresSearchSync:
    """A sync's staging: its rows of search_staging, which any connection can see."""

    def __init__(
        self,
        run: Callable[[Callable[[Db], Awaitable[Any]]], Awaitable[Any]],
        run_in_index: Callable[[Callable[[Db, int], Awaitable[Any]]], Awaitable[Any]],
        sync_id: int,
    ) -> None:
        self._run = run
        self._run_in_index = run_in_index
        self._sync_id = sync_id

    async def stage(self, names: Sequence[tuple[str, str]]) -> None:
        # One row per key in a statement (ON CONFLICT may not touch a row twice): the last.
        latest = dict(names)
        keys, spellings = list(latest), list(latest.values())

        async def work(db: Db) -> None:
            for start in range(0, len(keys), _STAGE_BATCH):
                await db.execute(
                    "INSERT INTO search_staging (sync_id, key, name)"
                    " SELECT $1, key, name FROM unnest($2::text[], $3::text[]) AS v(key, name)"
                    " ON CONFLICT (sync_id, key) DO UPDATE SET name = excluded.name",
                    self._sync_id,
                    keys[start : start + _STAGE_BATCH],
                    spellings[start : start + _STAGE_BATCH],
                )

        await self._run(work)

    async def merge(self, after: str | None, limit: int) -> str | None:
        async def work(db: Db, index_id: int) -> str | None:
            async with db.transaction():
                await db.execute(
                    "SELECT pg_advisory_xact_lock($1, $2)", SEARCH_LOCK_CLASS, index_id
                )
                return await _merge_names(db, index_id, self._sync_id, after or "", limit)

        upper: str | None = await self._run_in_index(work)
        return upper

    async def finish(self, root_key: str) -> None:
        async def work(db: Db, index_id: int) -> None:
            async with db.transaction():
                await db.execute(
                    "INSERT INTO search_state VALUES ($1, $2)"
                    " ON CONFLICT (index_id) DO UPDATE SET root_key = excluded.root_key",
                    index_id,
                    root_key,
                )
                await _drop_staging(db, self._sync_id)
            # Now rather than when autovacuum gets round to it: the planner's statistics
            # (until then a first sync's 800k names look like a few hundred, and the name
            # searches scan them all instead of asking the trigram index: 60 ms, not 5),
            # and the trigram index's pending list, which every search reads through.
            await db.execute("ANALYZE search_names")
            await db.execute("SELECT gin_clean_pending_list('search_names_trigrams')")

        await self._run_in_index(work)

    async def abort(self) -> None:
        async def work(db: Db) -> None:
            async with db.transaction():
                await _drop_staging(db, self._sync_id)

        await self._run(work)


async def _drop_staging(db: Db, sync_id: int) -> None:
    await db.execute("DELETE FROM search_staging WHERE sync_id = $1", sync_id)
    await db.execute("DELETE FROM search_syncs WHERE id = $1", sync_id)


async def _merge_names(db: Db, index_id: int, sync_id: int, after: str, limit: int) -> str | None:
    """Reconcile the next keys after `after` of the index's search names with the staging:
    at most `limit` of each, up to the last key both sides have read past (as SQLite's
    merge). Returns that key, or None when both are exhausted."""
    staged = await db.fetch(
        "SELECT key, name FROM search_staging WHERE sync_id = $1 AND key > $2"
        " ORDER BY key LIMIT $3",
        sync_id,
        after,
        limit,
    )
    existing = await db.fetch(
        "SELECT key, id, name FROM search_names WHERE index_id = $1 AND key > $2"
        " ORDER BY key LIMIT $3",
        index_id,
        after,
        limit,
    )
    # A side that returned fewer than `limit` rows has nothing more: it does not bound.
    bounds = [rows[-1][0] for rows in (staged, existing) if len(rows) == limit]
    upper = min(bounds) if bounds else None
    incoming = {row[0]: row[1] for row in staged if upper is None or row[0] <= upper}
    present = [row for row in existing if upper is None or row[0] <= upper]
    # Names gone from the list go, unless bodega has details of them (seen: still searchable).
    await db.execute(
        "DELETE FROM search_names n WHERE n.id = ANY($1::bigint[]) AND NOT EXISTS"
        " (SELECT 1 FROM search_details d WHERE d.index_id = n.index_id AND d.key = n.key)",
        [row[1] for row in present if row[0] not in incoming],
    )
    renamed = [
        (row[1], incoming[row[0]]) for row in present if incoming.get(row[0], row[2]) != row[2]
    ]
    if renamed:
        await db.execute(
            "UPDATE search_names SET name = v.name"
            " FROM unnest($1::bigint[], $2::text[]) AS v(id, name) WHERE search_names.id = v.id",
            [row_id for row_id, _ in renamed],
            [name for _, name in renamed],
        )
    known = {row[0] for row in present}
    added = [(key, name) for key, name in incoming.items() if key not in known]
    if added:
        await db.execute(
            "INSERT INTO search_names (index_id, key, name)"
            " SELECT $1, key, name FROM unnest($2::text[], $3::text[]) AS v(key, name)",
            index_id,
            [key for key, _ in added],
            [name for _, name in added],
        )
    return upper
