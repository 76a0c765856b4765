"""The HostedStore contract: a hosted index's projects, files, every filename ever
accepted and reserved names, on every metadata store."""

import asyncio
import dataclasses

from bodega.storage.metadata import HostedFile, HostedProject, SharedMetadataStore
from bodega.storage.postgres import PostgresMetadataStore

PRIVATE = "acme/private"


def _file(
    filename: str, version: str = "1.0", project: str = "demo", **fields: object
) -> HostedFile:
    values: dict[str, object] = {
        "project": project,
        "version": version,
        "filename": filename,
        "sha256": (filename.encode().hex() * 8)[:64],
        "md5": "0" * 32,
        "blake2b_256": "1" * 64,
        "size": 10,
        "uploaded_at": 1000.0,
        **fields,
    }
    return HostedFile(**values)  # type: ignore[arg-type]


async def test_a_file_added_is_listed_with_its_project(database: SharedMetadataStore) -> None:
    hosted = database.hosted(PRIVATE)
    wheel = _file("demo-1.0-py3-none-any.whl", metadata_sha256="a" * 64, attestations="[]")
    assert await hosted.add_hosted_file(wheel, "Demo")
    assert await hosted.add_hosted_file(_file("demo-1.0.tar.gz"), "demo")
    assert [f.filename for f in await hosted.hosted_files("demo")] == [
        "demo-1.0-py3-none-any.whl",
        "demo-1.0.tar.gz",
    ]
    assert (await hosted.hosted_files("demo"))[0] == wheel
    assert await hosted.hosted_project("demo") == HostedProject("demo", "Demo")
    assert await hosted.hosted_projects() == [HostedProject("demo", "Demo")]
    assert await hosted.hosted_files("other") == []


async def test_a_filename_is_never_accepted_twice(database: SharedMetadataStore) -> None:
    hosted = database.hosted(PRIVATE)
    first = _file("demo-1.0.tar.gz")
    assert await hosted.add_hosted_file(first, "demo")
    again = dataclasses.replace(first, sha256="f" * 64)
    assert not await hosted.add_hosted_file(again, "demo")
    assert await hosted.hosted_files("demo") == [first]
    await hosted.delete_hosted_files("demo", None, None)
    assert await hosted.was_accepted("demo-1.0.tar.gz")
    assert not await hosted.add_hosted_file(again, "demo")
    assert await hosted.hosted_files("demo") == []


async def test_concurrent_adds_of_one_filename_let_exactly_one_in(
    database: SharedMetadataStore,
) -> None:
    hosted = database.hosted(PRIVATE)
    files = [_file("demo-1.0.tar.gz", sha256=f"{n:x}" * 64) for n in range(8)]
    results = await asyncio.gather(*(hosted.add_hosted_file(f, "demo") for f in files))
    assert sorted(results) == [False] * 7 + [True]
    assert len(await hosted.hosted_files("demo")) == 1


async def test_replicas_sharing_postgresql_accept_a_filename_once(postgres_dsn: str) -> None:
    # Two bodegas behind a load balancer, each with its own pool: the database decides.
    replicas = [await PostgresMetadataStore.open(postgres_dsn) for _ in range(2)]
    try:
        files = [_file("demo-1.0.tar.gz", sha256=f"{n:x}" * 64) for n in range(8)]
        results = await asyncio.gather(
            *(
                replicas[n % 2].hosted(PRIVATE).add_hosted_file(f, "demo")
                for n, f in enumerate(files)
            )
        )
        assert sorted(results) == [False] * 7 + [True]
        for replica in replicas:
            assert len(await replica.hosted(PRIVATE).hosted_files("demo")) == 1
            assert await replica.hosted(PRIVATE).was_accepted("demo-1.0.tar.gz")
    finally:
        for replica in replicas:
            await replica.close()


async def test_indexes_keep_their_own_files_and_filenames(database: SharedMetadataStore) -> None:
    one, two = database.hosted(PRIVATE), database.hosted("acme/other")
    assert await one.add_hosted_file(_file("demo-1.0.tar.gz"), "demo")
    assert await two.add_hosted_file(_file("demo-1.0.tar.gz"), "demo")
    await one.delete_hosted_files("demo", None, None)
    assert len(await two.hosted_files("demo")) == 1


async def test_yank_and_unyank_by_file_version_or_project(database: SharedMetadataStore) -> None:
    hosted = database.hosted(PRIVATE)
    for filename, version in (("demo-1.0.tar.gz", "1.0"), ("demo-2.0.tar.gz", "2.0")):
        await hosted.add_hosted_file(_file(filename, version), "demo")
    assert await hosted.set_yanked("demo", "1.0", None, "broken") == 1
    assert [(f.yanked, f.yank_reason) for f in await hosted.hosted_files("demo")] == [
        (True, "broken"),
        (False, ""),
    ]
    assert await hosted.set_yanked("demo", None, "demo-2.0.tar.gz", "") == 1
    assert await hosted.set_yanked("demo", None, None, None) == 2
    assert not any(f.yanked for f in await hosted.hosted_files("demo"))
    assert await hosted.set_yanked("demo", "3.0", None, "x") == 0


async def test_delete_a_file_a_release_or_the_project(database: SharedMetadataStore) -> None:
    hosted = database.hosted(PRIVATE)
    for filename, version in (
        ("demo-1.0.tar.gz", "1.0"),
        ("demo-1.0-py3-none-any.whl", "1.0"),
        ("demo-2.0.tar.gz", "2.0"),
    ):
        await hosted.add_hosted_file(_file(filename, version), "demo")
    deleted = await hosted.delete_hosted_files("demo", None, "demo-1.0.tar.gz")
    assert [f.filename for f in deleted] == ["demo-1.0.tar.gz"]
    deleted = await hosted.delete_hosted_files("demo", "1.0", None)
    assert [f.filename for f in deleted] == ["demo-1.0-py3-none-any.whl"]
    assert await hosted.hosted_project("demo") is not None
    deleted = await hosted.delete_hosted_files("demo", None, None)
    assert [f.filename for f in deleted] == ["demo-2.0.tar.gz"]
    assert await hosted.hosted_project("demo") is None


async def test_project_status(database: SharedMetadataStore) -> None:
    hosted = database.hosted(PRIVATE)
    assert not await hosted.set_project_status("demo", "archived", None)
    await hosted.add_hosted_file(_file("demo-1.0.tar.gz"), "demo")
    assert await hosted.set_project_status("demo", "quarantined", "malware")
    assert await hosted.hosted_project("demo") == HostedProject(
        "demo", "demo", "quarantined", "malware"
    )
    assert await hosted.set_project_status("demo", None, None)
    assert await hosted.hosted_project("demo") == HostedProject("demo", "demo")


async def test_reservations(database: SharedMetadataStore) -> None:
    hosted = database.hosted(PRIVATE)
    await hosted.reserve("internal-tool")
    await hosted.reserve("internal-tool")
    assert await hosted.reservations() == {"internal-tool"}
    assert await database.hosted("acme/other").reservations() == set()
    assert await hosted.release_reservation("internal-tool")
    assert not await hosted.release_reservation("internal-tool")
    assert await hosted.reservations() == set()


async def test_hosted_blobs_are_pinned(database: SharedMetadataStore) -> None:
    hosted = database.hosted(PRIVATE)
    wheel = _file("demo-1.0-py3-none-any.whl", metadata_sha256="a" * 64)
    await hosted.add_hosted_file(wheel, "demo")
    store = database.index("root/pypi")
    await store.record_blob(wheel.sha256, 10, 1.0)  # the same bytes cached from a mirror
    await store.record_blob("a" * 64, 10, 1.0)
    await store.record_blob("b" * 64, 10, 1.0)
    assert await hosted.hosted_blob_keys() == {wheel.sha256, "a" * 64}
    assert [blob.key for blob in await store.blobs_by_access()] == ["b" * 64]


async def test_a_filename_accepted_without_a_file_is_taken(database: SharedMetadataStore) -> None:
    hosted = database.hosted(PRIVATE)
    assert await hosted.accept_filename("demo-0.9.tar.gz")
    assert not await hosted.accept_filename("demo-0.9.tar.gz")
    assert await hosted.was_accepted("demo-0.9.tar.gz")
    assert not await hosted.add_hosted_file(_file("demo-0.9.tar.gz"), "demo")
    assert await hosted.hosted_projects() == []
    assert await hosted.add_hosted_file(_file("demo-1.0.tar.gz"), "demo")
    assert not await hosted.accept_filename("demo-1.0.tar.gz")
