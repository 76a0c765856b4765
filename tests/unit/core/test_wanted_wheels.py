"""Which wheels bodega extracts METADATA for, and in what order."""

from packaging.utils import NormalizedName

from bodega.core.model import DistributionFile, ProjectPage, ProjectStatus
from bodega.core.wanted_wheels import wanted_wheels


def page(
    *filenames: str, extracted: tuple[str, ...] = (), yanked: tuple[str, ...] = ()
) -> ProjectPage:
    files = tuple(
        DistributionFile(
            name,
            f"https://files.example/{name}",
            core_metadata={"sha256": "0" * 64} if name in extracted else False,
            yanked=name in yanked,
        )
        for name in filenames
    )
    return ProjectPage(NormalizedName("demo"), files)


def chosen(project_page: ProjectPage) -> list[str]:
    return [file.filename for _, file in wanted_wheels(project_page)]


def test_pure_then_linux_x86_64_newest_python_first_then_other_platforms() -> None:
    listed = page(
        "demo-2.0-cp312-cp312-win32.whl",
        "demo-2.0-cp312-cp312-win_amd64.whl",
        "demo-2.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "demo-2.0-cp313-cp313-manylinux_2_17_x86_64.whl",
        "demo-2.0-cp313-cp313-macosx_11_0_arm64.whl",
        "demo-2.0-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl",
        "demo-2.0-py2.py3-none-any.whl",
        "demo-2.0.tar.gz",
    )
    assert chosen(listed) == [
        "demo-2.0-py2.py3-none-any.whl",
        "demo-2.0-cp313-cp313-manylinux_2_17_x86_64.whl",
        "demo-2.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "demo-2.0-cp313-cp313-macosx_11_0_arm64.whl",
        "demo-2.0-cp312-cp312-win_amd64.whl",
        "demo-2.0-cp312-cp312-win32.whl",
        "demo-2.0-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl",
    ]


def test_only_the_newest_release_and_never_an_older_one_once_it_is_extracted() -> None:
    names = [f"demo-1.{minor}-py3-none-any.whl" for minor in range(3)]
    assert chosen(page(*names)) == [names[-1]]
    assert chosen(page(*names, extracted=(names[-1],))) == []


def test_a_pre_release_or_a_yanked_release_is_not_the_newest() -> None:
    names = ["demo-1.0-py3-none-any.whl", "demo-2.0rc1-py3-none-any.whl"]
    assert chosen(page(*names)) == ["demo-1.0-py3-none-any.whl"]
    assert chosen(
        page(*names, "demo-1.1-py3-none-any.whl", yanked=("demo-1.1-py3-none-any.whl",))
    ) == ["demo-1.0-py3-none-any.whl"]
    assert chosen(page("demo-2.0rc1-py3-none-any.whl")) == ["demo-2.0rc1-py3-none-any.whl"]


def test_nothing_for_a_quarantined_project_or_odd_filenames() -> None:
    quarantined = page("demo-1.0-py3-none-any.whl")
    quarantined = ProjectPage(
        quarantined.name, quarantined.files, status=ProjectStatus("quarantined")
    )
    assert chosen(quarantined) == []
    assert chosen(page("demo-1.0.tar.gz", "not a wheel.whl")) == []
