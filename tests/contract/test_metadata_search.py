"""The SearchIndex contract: names synced in chunks from a root list, details, summaries,
downloads; each index's own."""

from bodega.storage.metadata import MetadataStore, SearchDetails, SharedMetadataStore
from tests.support.search_sync import sync_names


async def test_chunked_sync_adds_renames_and_removes_but_keeps_seen_projects(
    store: MetadataStore,
) -> None:
    await sync_names(store, [("a", "a"), ("b", "b"), ("c", "c"), ("d", "d")])
    await store.put_search_details(SearchDetails("c", "c", "1.0", "see", "1.0"))
    # Upstream now lists a, B (renamed) and e; c and d are gone, but c was seen.
    await sync_names(store, [("a", "a"), ("b", "B"), ("e", "e")], root_key="newer")
    keys = {key: name for k in "abcde" for key, name in await store.match_names(k, 10)}
    assert keys == {"a": "a", "b": "B", "c": "c", "e": "e"}
    assert await store.search_root_key() == "newer"
    assert await store.match_summaries(("see",), 10) == [("c", "c")]
    await store.put_search_details(SearchDetails("c", "c", "2.0", "sea", "2.0"))
    assert await store.match_summaries(("see",), 10) == []
    assert await store.match_summaries(("sea",), 10) == [("c", "c")]


async def test_a_key_staged_twice_keeps_its_last_spelling(store: MetadataStore) -> None:
    await sync_names(store, [("a-b", "a_b"), ("a-b", "A.b")])
    assert {name for _, name in await store.match_names("a-b", 10)} == {"A.b"}


async def test_a_list_that_shrank_is_merged_to_the_end_in_chunks(store: MetadataStore) -> None:
    await sync_names(store, [(f"p{i:03}", f"p{i:03}") for i in range(300)], limit=50)
    sync = await store.start_search_sync()
    await sync.stage([("p150", "P150"), ("zz", "zz")])
    bounds = [await sync.merge(None, 50)]
    while bounds[-1] is not None:
        bounds.append(await sync.merge(bounds[-1], 50))
    await sync.finish("root")
    assert len(bounds) > 2  # more than one chunk, however few names remain
    found = {key: name for k in ("p15", "zz") for key, name in await store.match_names(k, 9)}
    assert found == {"p150": "P150", "zz": "zz"}
    assert (await store.search_counts())[1] == 0


async def test_an_aborted_sync_leaves_the_root_key_for_the_next_one(store: MetadataStore) -> None:
    await sync_names(store, [("a", "a")], root_key="first")
    sync = await store.start_search_sync()
    await sync.stage([("b", "b")])
    await sync.abort()
    assert await store.search_root_key() == "first"
    assert await store.match_names("b", 5) == []


async def test_names_match_whole_as_words_and_inside(store: MetadataStore) -> None:
    names = ["requests", "requests-oauthlib", "django-requests", "grequests", "flask"]
    await sync_names(store, [(n, n) for n in sorted(names)])
    found = {key for key, _ in await store.match_names("requests", 10)}
    assert found == set(names) - {"flask"}
    assert {key for key, _ in await store.match_names("re", 10)} == set()  # too short inside


async def test_the_shortest_names_are_the_candidates_not_the_first_in_order(
    store: MetadataStore,
) -> None:
    """zope.interface was 83rd of the names starting with zope: now among the first."""
    many = [(f"zope-app-component-{i:03}", f"zope.app.component{i:03}") for i in range(300)]
    await sync_names(store, sorted([*many, ("zope-interface", "zope.interface")]), limit=100)
    found = await store.match_names("zope", 5)
    assert ("zope-interface", "zope.interface") in found
    assert len(found) == 10  # five as a word, five inside: each side stops at its limit


async def test_served_projects_are_candidates_however_long_their_names(
    store: MetadataStore,
) -> None:
    short = [(f"http{i:03}", f"http{i:03}") for i in range(50)]
    await sync_names(store, sorted([*short, ("a-long-httpclient-name", "A-Long-HTTPClient-Name")]))
    assert "a-long-httpclient-name" not in dict(await store.match_names("http", 5))
    await store.add_downloads({"a-long-httpclient-name": 2, "http001": 1})
    await store.add_downloads({"a-long-httpclient-name": 1})
    assert "a-long-httpclient-name" in dict(await store.match_names("http", 5))
    downloads = await store.get_downloads(["a-long-httpclient-name", "http001", "http002"])
    assert downloads == {"a-long-httpclient-name": 3, "http001": 1}


async def test_summaries_match_their_words_in_order_the_last_as_a_prefix(
    store: MetadataStore,
) -> None:
    await store.put_search_details(
        SearchDetails("requests", "requests", "2.0", "Python HTTP for Humans.", "2.0")
    )
    assert await store.match_summaries(("http", "for"), 5) == [("requests", "requests")]
    assert await store.match_summaries(("hum",), 5) == [("requests", "requests")]
    assert await store.match_summaries(("for", "http"), 5) == []
    assert await store.match_summaries(("h",), 5) == []  # short: whole words only
    assert await store.match_summaries((), 5) == []
    details = await store.get_search_details(["requests", "other"])
    assert details == {
        "requests": SearchDetails("requests", "requests", "2.0", "Python HTTP for Humans.", "2.0")
    }
    assert await store.search_counts() == (1, 1)


async def test_search_names_details_and_downloads_are_each_indexs_own(
    database: SharedMetadataStore,
) -> None:
    pypi, torch = database.index("root/pypi"), database.index("team/torch")
    await sync_names(pypi, [("requests", "requests"), ("torch", "torch")])
    assert await torch.search_root_key() is None
    await sync_names(torch, [("torch", "Torch"), ("torchvision", "torchvision")])
    assert set(await pypi.match_names("torch", 10)) == {("torch", "torch")}
    assert set(await torch.match_names("torch", 10)) == {
        ("torch", "Torch"),
        ("torchvision", "torchvision"),
    }
    assert await torch.match_names("requests", 10) == []
    await torch.put_search_details(SearchDetails("torch", "Torch", "2.5", "Tensors", "2.5"))
    assert await pypi.get_search_details(["torch"]) == {}
    assert await pypi.match_summaries(("tensors",), 10) == []
    assert await torch.match_summaries(("tensors",), 10) == [("torch", "Torch")]
    await torch.add_downloads({"torch": 3})
    assert await pypi.get_downloads(["torch"]) == {}
    assert await torch.get_downloads(["torch"]) == {"torch": 3}
    assert await pypi.search_counts() == (2, 0)
    assert await torch.search_counts() == (2, 1)
    await sync_names(pypi, [])  # upstream emptied: only pypi's names go
    assert await pypi.match_names("torch", 10) == []
    assert ("torchvision", "torchvision") in await torch.match_names("torch", 10)


async def test_two_indexes_sync_their_names_at_the_same_time(
    database: SharedMetadataStore,
) -> None:
    pypi, torch = database.index("root/pypi"), database.index("team/torch")
    pypi_sync, torch_sync = await pypi.start_search_sync(), await torch.start_search_sync()
    await pypi_sync.stage([("a", "a"), ("b", "b")])
    await torch_sync.stage([("c", "c")])
    for sync in (pypi_sync, torch_sync):
        after = await sync.merge(None, 1)
        while after is not None:
            after = await sync.merge(after, 1)
        await sync.finish("root")
    assert {key for k in "abc" for key, _ in await pypi.match_names(k, 5)} == {"a", "b"}
    assert {key for k in "abc" for key, _ in await torch.match_names(k, 5)} == {"c"}


async def test_summaries_with_any_text_are_stored_and_matched_by_their_words(
    store: MetadataStore,
) -> None:
    """Quotes, backslashes, query syntax, a huge word, a word repeated thousands of times:
    a summary is text, never syntax, and never too much for the store."""
    hostile = "it's \\ 'quoted' & | ! <-> :* \" NEAR(a b) " + "x" * 5000 + " word" * 3000
    await store.put_search_details(SearchDetails("odd", "odd", "1.0", hostile + " tail", "1.0"))
    assert await store.match_summaries(("quoted",), 5) == [("odd", "odd")]
    assert await store.match_summaries(("it", "s"), 5) == [("odd", "odd")]
    assert await store.match_summaries(("near", "a", "b"), 5) == [("odd", "odd")]
    assert await store.match_summaries(("word", "word"), 5) == [("odd", "odd")]
    assert (await store.get_search_details(["odd"]))["odd"].summary == hostile + " tail"
