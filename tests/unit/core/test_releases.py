"""A project's releases and the one rule for its latest version."""

from bodega.core.model import DistributionFile, ProjectPage
from bodega.core.names import normalize_project_name
from bodega.core.releases import file_with_metadata, latest_version, releases_of


def file(filename: str, *, yanked: bool = False, metadata: bool = False) -> DistributionFile:
    core_metadata: bool | dict[str, str] = {"sha256": "ab" * 32} if metadata else False
    return DistributionFile(
        filename, f"https://files.example/{filename}", yanked=yanked, core_metadata=core_metadata
    )


def live(*versions: str) -> dict[str, list[DistributionFile]]:
    return {v: [file(f"a-{v}.tar.gz")] for v in versions}


def test_latest_version_prefers_final_releases() -> None:
    assert latest_version(live("1.0", "2.0rc1", "junk", "1.10")) == "1.10"
    assert latest_version(live("2.0rc1", "2.0b1")) == "2.0rc1"
    assert latest_version(live("junk", "2004d")) in ("junk", "2004d")  # none is PEP 440
    assert latest_version(live("2004d", "0.1")) == "0.1"
    assert latest_version({}) is None


def test_latest_version_skips_releases_whose_files_are_all_yanked() -> None:
    releases = {**live("1.0"), "2.0": [file("a-2.0.tar.gz", yanked=True)], "3.0": []}
    assert latest_version(releases) == "1.0"
    assert latest_version({"2.0": [file("a-2.0.tar.gz", yanked=True)], "3.0": []}) == "3.0"


def test_releases_hold_every_listed_version_as_spelled() -> None:
    page = ProjectPage(
        normalize_project_name("a"),
        (file("a-1.0-py3-none-any.whl", metadata=True), file("a-1.0.tar.gz"), file("a.exe")),
        versions=("1.0", "0.9"),
    )
    releases = releases_of(page)
    assert {v: len(fs) for v, fs in releases.items()} == {"1.0": 2, "0.9": 0}
    found = file_with_metadata(page)
    assert found is not None
    assert found.filename == "a-1.0-py3-none-any.whl"
