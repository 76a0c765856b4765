"""The index model: names, route globs, which bases a project is looked for in, merged pages."""

import dataclasses

import pytest
from packaging.utils import NormalizedName

from bodega.core.indexes import (
    IndexSpec,
    MirrorIndex,
    VirtualIndex,
    check_index_name,
    compile_glob,
    glob_problem,
    graph_problems,
    merge_pages,
)
from bodega.core.model import DistributionFile, ProjectPage, ProjectStatus
from bodega.errors import InvalidName

ALL = VirtualIndex(
    "team/all",
    ("team/torch", "root/pypi"),
    (("torch*", "team/torch"), ("nvidia-*", "team/torch"), ("numpy", "root/pypi")),
)

# ------------------------------------------------------------------------------ names


@pytest.mark.parametrize("name", ["root/pypi", "team/torch", "Team-1/gpu_wheels.v2", "a/b"])
def test_index_names_of_two_safe_segments_are_kept_as_given(name: str) -> None:
    assert check_index_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "root",
        "root/",
        "/pypi",
        "root/pypi/extra",
        "root pypi/x",
        "root/py pi",
        "../pypi",
        "root/..",
        "root/.hidden",
        "+search/x",
        "-/metrics",
        "root/+simple",
        "root/-x",
        "röot/pypi",
        "root/pypi\n",
        "root\\pypi",
        "root/%2e%2e",
        "simple/x",
        "files/x",
        "pypi/x",
        "RPC2/x",
        "someone/json",
        "a/" + "b" * 100,
    ],
)
def test_anything_but_user_slash_index_of_safe_segments_is_an_invalid_name(name: str) -> None:
    with pytest.raises(InvalidName):
        check_index_name(name)


# ------------------------------------------------------------------------------ globs


@pytest.mark.parametrize(
    "glob", ["torch*", "nvidia-*", "numpy", "*", "py?", "[a-c]*", "[!x]*", "Torch_Audio", "[]]"]
)
def test_globs_of_name_characters_and_wildcards_are_accepted(glob: str) -> None:
    assert glob_problem(glob) is None


@pytest.mark.parametrize(
    ("glob", "problem"),
    [
        ("", "is empty"),
        ("torch *", "only a project name's characters"),
        ("torch/*", "only a project name's characters"),
        ("{torch,nvidia}*", "only a project name's characters"),
        ("tö*", "only a project name's characters"),
        ("[abc", "never closed"),
        ("[!]", "never closed"),
        ("abc]", "closes no ["),
        ("a!b", "does not start a [!...] set"),
    ],
)
def test_a_bad_glob_says_what_is_wrong(glob: str, problem: str) -> None:
    found = glob_problem(glob)
    assert found is not None
    assert problem in found


@pytest.mark.parametrize(
    ("glob", "name", "matches"),
    [
        ("torch*", "torch", True),
        ("torch*", "torchvision", True),
        ("torch*", "pytorch", False),
        ("Torch_*", "torch-audio", True),
        ("torch.*", "torch-audio", True),
        ("torch__*", "torch-audio", True),
        ("py?", "pyx", True),
        ("py?", "pyxx", False),
        ("[a-c]*", "boto3", True),
        ("[!a-c]*", "boto3", False),
    ],
)
def test_globs_match_normalized_names_and_are_normalized_themselves(
    glob: str, name: str, matches: bool
) -> None:
    assert (compile_glob(glob).fullmatch(name) is not None) is matches


# ------------------------------------------------------------------------------ candidates


@pytest.mark.parametrize(
    ("project", "bases"),
    [
        ("torch", ("team/torch",)),
        ("torchvision", ("team/torch",)),
        ("Torch_Audio", ("team/torch",)),  # matched as torch-audio
        ("nvidia-cublas-cu12", ("team/torch",)),
        ("NVIDIA.cuDNN", ("team/torch",)),
        ("numpy", ("root/pypi",)),  # a route may pin a name to any base, the last too
        ("requests", ("team/torch", "root/pypi")),  # no route: every base, in order
        ("pytorch", ("team/torch", "root/pypi")),
    ],
)
def test_a_matching_route_pins_one_base_else_every_base_in_order(
    project: str, bases: tuple[str, ...]
) -> None:
    assert ALL.candidates(project) == bases


def test_the_first_matching_route_in_file_order_wins() -> None:
    index = VirtualIndex("a/b", ("x/one", "x/two"), (("torch-*", "x/two"), ("torch*", "x/one")))
    assert index.candidates("torch-audio") == ("x/two",)
    assert index.candidates("torch") == ("x/one",)


def test_a_virtual_index_without_routes_asks_every_base() -> None:
    assert VirtualIndex("a/b", ("x/one", "x/two")).candidates("torch") == ("x/one", "x/two")


def test_specs_compare_by_their_configuration_and_survive_replace() -> None:
    same = VirtualIndex("team/all", ALL.bases, ALL.routes)
    assert same == ALL
    moved = dataclasses.replace(ALL, routes=(("requests", "root/pypi"),))
    assert moved.candidates("requests") == ("root/pypi",)
    assert moved.candidates("torch") == ALL.bases


# ------------------------------------------------------------------------------ the graph

MIRRORS: list[IndexSpec] = [
    MirrorIndex("root/pypi", "http://127.0.0.1:9/simple/", 600, 30, 5, 3600, False),
    MirrorIndex("team/torch", "http://127.0.0.1:8/simple/", 600, 30, 5, 3600, False),
]


def test_the_issues_example_has_no_graph_problem() -> None:
    assert graph_problems([*MIRRORS, ALL]) == []


def test_virtual_indexes_may_stack_on_each_other() -> None:
    outer = VirtualIndex("team/outer", ("team/all", "root/pypi"))
    assert graph_problems([*MIRRORS, ALL, outer]) == []


def test_an_unknown_base_is_named() -> None:
    index = VirtualIndex("team/all", ("team/torch", "team/gone"))
    assert graph_problems([*MIRRORS, index]) == [
        "[indexes.\"team/all\"] bases: no index named 'team/gone'"
    ]


def test_an_index_that_is_its_own_base_is_named_once() -> None:
    index = VirtualIndex("team/all", ("team/all", "root/pypi"))
    assert graph_problems([*MIRRORS, index]) == [
        "[indexes.\"team/all\"] bases: 'team/all' is the index itself"
    ]


def test_a_cycle_through_virtual_indexes_is_reported_once() -> None:
    specs: list[IndexSpec] = [
        *MIRRORS,
        VirtualIndex("x/a", ("x/b", "root/pypi")),
        VirtualIndex("x/b", ("x/c",)),
        VirtualIndex("x/c", ("x/a",)),
    ]
    assert graph_problems(specs) == ["bases form a cycle: x/a -> x/b -> x/c -> x/a"]


def test_a_route_to_a_base_the_index_does_not_list_is_named() -> None:
    index = VirtualIndex("team/all", ("root/pypi",), (("torch*", "team/torch"),))
    assert graph_problems([*MIRRORS, index]) == [
        "[indexes.\"team/all\"] routes: 'torch*' goes to 'team/torch', which is not one of"
        " its bases"
    ]


# ------------------------------------------------------------------------------ merged pages


def _file(filename: str, url: str) -> DistributionFile:
    return DistributionFile(filename, url, {"sha256": url[-2:] * 32})


def _page(*files: DistributionFile, versions: tuple[str, ...] = ()) -> ProjectPage:
    return ProjectPage(NormalizedName("demo"), files, versions)


def test_merged_pages_hold_every_file_once_the_first_base_winning_a_filename() -> None:
    first = _page(
        _file("demo-1.0.tar.gz", "http://one/a1"), _file("demo-2.0.tar.gz", "http://one/a2")
    )
    second = _page(
        _file("demo-2.0.tar.gz", "http://two/b2"), _file("demo-3.0.tar.gz", "http://two/b3")
    )
    merged = merge_pages([first, second])
    assert [(f.filename, f.url) for f in merged.files] == [
        ("demo-1.0.tar.gz", "http://one/a1"),
        ("demo-2.0.tar.gz", "http://one/a2"),
        ("demo-3.0.tar.gz", "http://two/b3"),
    ]
    assert merged.file_named("demo-3.0.tar.gz") == second.files[1]


def test_one_page_merges_to_itself() -> None:
    page = _page(_file("demo-1.0.tar.gz", "http://one/a1"), versions=("1.0",))
    assert merge_pages([page]) is page


def test_merging_no_page_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one page"):
        merge_pages([])


def test_merged_versions_are_every_bases_when_each_says_them() -> None:
    first = _page(_file("demo-2.0.tar.gz", "http://one/a2"), versions=("1.0", "2.0"))
    second = _page(_file("demo-3.0.tar.gz", "http://two/b3"), versions=("2.0", "3.0"))
    assert merge_pages([first, second]).versions == ("1.0", "2.0", "3.0")


def test_merged_versions_are_left_to_the_files_when_a_base_did_not_say_its_own() -> None:
    first = _page(_file("demo-2.0.tar.gz", "http://one/a2"), versions=("2.0",))
    second = _page(_file("demo-3.0.tar.gz", "http://two/b3"))
    assert merge_pages([first, second]).versions == ()


def test_merged_status_is_the_first_bases_that_says_one_and_serials_are_dropped() -> None:
    first = dataclasses.replace(_page(_file("demo-1.0.tar.gz", "http://one/a1")), last_serial=7)
    archived = ProjectStatus("archived", "moved")
    second = dataclasses.replace(_page(), status=archived, last_serial=9)
    merged = merge_pages([first, second])
    assert merged.status == archived
    assert merged.last_serial is None
    assert merged.name == "demo"


def _mirror(name: str) -> MirrorIndex:
    return MirrorIndex(name, "http://127.0.0.1:9/simple/", 600, 30, 5, 600, False)


def test_mirror_names_follow_virtual_bases_in_order_each_once() -> None:
    from bodega.core.indexes import IndexSpec, mirror_names

    specs: dict[str, IndexSpec] = {
        "root/pypi": _mirror("root/pypi"),
        "team/torch": _mirror("team/torch"),
        "team/gpu": VirtualIndex("team/gpu", ("team/torch", "root/pypi")),
        "team/all": VirtualIndex("team/all", ("team/gpu", "root/pypi", "team/torch")),
    }
    assert mirror_names(specs, "root/pypi") == ("root/pypi",)
    assert mirror_names(specs, "team/all") == ("team/torch", "root/pypi")


def test_source_names_follow_routes_at_every_level() -> None:
    from bodega.core.indexes import HostedIndex, IndexSpec, listing_filter, source_names

    specs: dict[str, IndexSpec] = {
        "root/pypi": _mirror("root/pypi"),
        "team/torch": _mirror("team/torch"),
        "acme/private": HostedIndex("acme/private"),
        "team/gpu": VirtualIndex(
            "team/gpu", ("team/torch", "root/pypi"), (("nvidia-*", "team/torch"),)
        ),
        "team/all": VirtualIndex(
            "team/all", ("acme/private", "team/gpu"), (("torch*", "team/gpu"),)
        ),
        "team/plain": VirtualIndex("team/plain", ("team/torch", "root/pypi")),
    }
    assert source_names(specs, "team/all", "six") == ("acme/private", "team/torch", "root/pypi")
    assert source_names(specs, "team/all", "Torch_Vision") == ("team/torch", "root/pypi")
    assert source_names(specs, "team/all", "nvidia-cudnn") == ("acme/private", "team/torch")
    assert source_names(specs, "root/pypi", "six") == ("root/pypi",)
    public = listing_filter(specs, "team/all", "root/pypi")
    assert public is not None
    names = ("six", "torch", "torchvision", "nvidia-x", "xtorch")
    assert [n for n in names if public(n)] == ["six", "torch", "torchvision", "xtorch"]
    gpu = listing_filter(specs, "team/all", "team/torch")
    assert gpu is not None
    assert [n for n in names if gpu(n)] == list(names)
    assert listing_filter(specs, "team/plain", "root/pypi") is None
    assert listing_filter(specs, "root/pypi", "root/pypi") is None
