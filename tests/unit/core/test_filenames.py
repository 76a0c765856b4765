"""Filename -> release, package type and Python version, for every form a page lists."""

import pytest

from bodega.core.filenames import (
    ListedVersions,
    kind_of,
    release_of,
    spelled_version,
    version_of,
)

LISTED = ListedVersions(["2004d", "0.6c11", "1.0", "1.0.1", "2.0rc1"])
NONE_LISTED = ListedVersions([])


@pytest.mark.parametrize(
    ("filename", "project", "release"),
    [
        ("pytz-2004d.tar.bz2", "pytz", "2004d"),
        ("setuptools-0.6c11-py2.7.egg", "setuptools", "0.6c11"),
        ("setuptools-0.6c11.win32.exe", "setuptools", "0.6c11"),
        ("foo-1.0.win32-py2.7.exe", "foo", "1.0"),
        ("Foo_Bar-1.0-1.noarch.rpm", "foo-bar", "1.0"),
        ("foo-1.0.linux-x86_64.tar.gz", "foo", "1.0"),
        ("foo-1.0.1.zip", "foo", "1.0.1"),
        ("foo-2.0-rc1.tar.gz", "foo", "2.0rc1"),  # the listed spelling of the same version
        ("foo-2.0rc1-py2.py3-none-any.whl", "foo", "2.0rc1"),
        ("foo-bar-1.0.tar.gz", "foo-bar", "1.0"),  # a dash in the project's name
        ("other_name-1.0-py3-none-any.whl", "foo", "1.0"),  # an odd wheel name
        ("foo-3.0-alpha.tar.gz", "foo", "3.0-alpha"),  # not listed: as the name spells it
        ("foo-3.1.win32.exe", "foo", "3.1"),
    ],
)
def test_every_file_finds_its_release_as_upstream_spells_it(
    filename: str, project: str, release: str
) -> None:
    assert release_of(filename, project, LISTED) == release


def test_without_a_list_of_versions_the_filename_spelling_is_kept() -> None:
    assert release_of("setuptools-0.6c11-py2.4.egg", "setuptools", NONE_LISTED) == "0.6c11"
    assert spelled_version("pytz-2004d.tar.gz", "pytz") == "2004d"
    assert version_of("setuptools-0.6c11.tar.gz") == "0.6rc11"  # PEP 440, for sorting
    assert release_of("foo.tar.gz", "foo", NONE_LISTED) is None


@pytest.mark.parametrize(
    ("filename", "package_type", "python_version"),
    [
        ("foo-1.0.tar.gz", "sdist", "source"),
        ("foo-1.0.zip", "sdist", "source"),
        ("foo-1.0-py2.py3-none-any.whl", "bdist_wheel", "py2.py3"),
        ("foo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", "bdist_wheel", "cp311"),
        ("foo-1.0-py2.7.egg", "bdist_egg", "2.7"),
        ("foo-1.0.win32-py2.7.exe", "bdist_wininst", "2.7"),
        ("foo-1.0.win32.exe", "bdist_wininst", "any"),
        ("foo-1.0.win-amd64-py3.4.msi", "bdist_msi", "3.4"),
        ("foo-1.0-1.noarch.rpm", "bdist_rpm", "any"),
    ],
)
def test_package_type_and_python_version_are_what_the_filename_says(
    filename: str, package_type: str, python_version: str
) -> None:
    kind = kind_of(filename)
    assert (kind.package_type, kind.python_version) == (package_type, python_version)
