"""Search latency over a full-size name list.

    python bench/search.py [--names 800000] [--repeat 50] [--db PATH | --database URL]

Generates ~800k project names shaped like the public index's (one to three words joined by
"-", common prefixes such as python-/django-), syncs them into bodega's real SQLite store in
the same chunks the background task merges, gives 5,000 of them summaries and versions, then
times the searches `pip search` sends (name and summary, "or"), end to end through
ProjectSearch.search on the store's thread (or on PostgreSQL, with --database URL naming an
empty database). Prints the sync time, the slowest chunk (the
longest any other store work waits) and per-query latency.
"""

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bodega.core.search import Criterion, Query
from bodega.proxy.search import SYNC_CHUNK, ProjectSearch
from bodega.storage.metadata import FIRST_INDEX, MetadataStore, SearchDetails, SharedMetadataStore
from bodega.storage.postgres import PostgresMetadataStore
from bodega.storage.sqlite import SqliteMetadataStore

PREFIXES = ["python", "django", "flask", "pytest", "py", "aws", "azure", "mkdocs", "sphinx"]
QUERIES = ["requests", "django", "flask-login", "py", "python", "zzzzzz", "http client", "a"]


def vocabulary(rng: random.Random, size: int) -> list[str]:
    syllables = ["ba", "co", "de", "fi", "go", "ha", "ji", "ka", "lo", "mu", "ne", "po", "qu"]
    syllables += ["ra", "si", "tu", "vo", "wa", "xi", "yo", "ze", "str", "ex", "on", "er"]
    words = {"requests", "http", "client", "login", "oauth", "json", "async", "test", "api"}
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def names(count: int, seed: int = 8) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    words = vocabulary(rng, 20_000)
    found: dict[str, str] = {}
    while len(found) < count:
        parts = [rng.choice(words) for _ in range(rng.choice((1, 2, 2, 3)))]
        if rng.random() < 0.15:
            parts.insert(0, rng.choice(PREFIXES))
        key = "-".join(parts)
        found[key] = "_".join(parts) if rng.random() < 0.2 else key
    for fixed in ("requests", "requests-oauthlib", "django", "flask-login", "py"):
        found[fixed] = fixed
    return sorted(found.items())


async def sync(store: MetadataStore, pairs: list[tuple[str, str]]) -> float:
    """Stages the names and merges them as ProjectSearch does; the slowest merge chunk (the
    longest any other store write waits) in seconds."""
    sync = await store.start_search_sync()
    for start in range(0, len(pairs), 10_000):
        await sync.stage(pairs[start : start + 10_000])
    slowest, after = 0.0, None
    while True:
        chunk_started = time.perf_counter()
        after = await sync.merge(after, SYNC_CHUNK)
        slowest = max(slowest, time.perf_counter() - chunk_started)
        if after is None:
            await sync.finish("bench")
            return slowest


async def run(count: int, repeat: int, db: Path | str) -> None:
    database: SharedMetadataStore
    if isinstance(db, str):
        database = await PostgresMetadataStore.open(db)
    else:
        database = await SqliteMetadataStore.open(db)
    store = database.index(FIRST_INDEX)
    try:
        pairs = names(count)
        started = time.perf_counter()
        slowest = await sync(store, pairs)
        print(f"synced {len(pairs)} names in {time.perf_counter() - started:.1f} s")
        print(f"slowest merge chunk of {SYNC_CHUNK}: {slowest * 1000:.0f} ms")
        rng = random.Random(9)
        for key, name in rng.sample(pairs, 5000):
            summary = f"{rng.choice(['A', 'The', 'Fast'])} {name} http client for {key}"
            await store.put_search_details(SearchDetails(key, name, "1.0", summary, "1.0"))
        resync_started = time.perf_counter()
        await sync(store, pairs)
        print(f"re-sync of an unchanged list: {time.perf_counter() - resync_started:.1f} s")
        search: Any = ProjectSearch(
            store,
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            refresh_interval=0,
            first_refresh_delay=0,
        )
        print(f"{'query':<14}{'hits':>6}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
        worst = 0.0
        for text in QUERIES:
            query = Query((Criterion("name", text), Criterion("summary", text)), match_all=False)
            times = []
            for _ in range(repeat):
                began = time.perf_counter()
                hits = await search.search(query)
                times.append((time.perf_counter() - began) * 1000)
            times.sort()
            p95 = times[int(len(times) * 0.95) - 1]
            worst = max(worst, p95)
            median = statistics.median(times)
            print(f"{text!r:<14}{len(hits):>6}{median:>10.2f}{p95:>10.2f}{times[-1]:>10.2f}")
        print(f"worst p95: {worst:.1f} ms")
    finally:
        await database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=800_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--db", type=Path, default=None, help="default: a temporary file")
    parser.add_argument("--database", default=None, help="an empty PostgreSQL database's URL")
    args = parser.parse_args()
    if args.database is not None:
        asyncio.run(run(args.names, args.repeat, args.database))
        return
    if args.db is not None:
        asyncio.run(run(args.names, args.repeat, args.db))
        return
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(args.names, args.repeat, Path(folder) / "bench.sqlite3"))


if __name__ == "__main__":
    main()
