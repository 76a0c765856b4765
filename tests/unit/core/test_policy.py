"""core.policy: which files an index shows, and why not the others."""

import pytest
from packaging.utils import NormalizedName

from bodega.core.model import DistributionFile, ProjectPage
from bodega.core.policy import (
    ALLOW,
    DENY,
    MIN_RELEASE_AGE,
    NO_UPLOAD_TIME,
    Exemption,
    IndexPolicy,
    decide,
    filter_page,
    parse_rule,
    parse_target,
    seconds_until,
    upload_timestamp,
)

NOW = 1_800_000_000.0  # 2027-01-15
DAY = 86400.0
OLD = "2020-01-01T00:00:00.000000Z"
AN_HOUR_AGO = "2027-01-15T07:00:00Z"  # NOW - 3600


def file(filename: str, upload_time: str | None = OLD) -> DistributionFile:
    return DistributionFile(filename, f"https://files.example/{filename}", upload_time=upload_time)


def page(*files: DistributionFile, versions: tuple[str, ...] = ()) -> ProjectPage:
    return ProjectPage(NormalizedName("pkg"), files, versions)


def exemption(version: str | None = None, until: float | None = None) -> Exemption:
    return Exemption(1, "root/pypi", NormalizedName("pkg"), version, "fix", "ops", NOW, until)


AGED = IndexPolicy(min_release_age=DAY)
NEW = file("pkg-2.0-py3-none-any.whl", AN_HOUR_AGO)
OLD_FILE = file("pkg-1.0-py3-none-any.whl")


def test_upload_times_are_read_as_pep_700_writes_them() -> None:
    assert upload_timestamp(file("a-1.tar.gz", "2027-01-15T07:00:00Z")) == NOW - 3600
    assert (
        upload_timestamp(file("a-1.tar.gz", "2027-01-15T07:00:00.123456Z")) == NOW - 3600 + 0.123456
    )
    assert upload_timestamp(file("a-1.tar.gz", None)) is None
    assert upload_timestamp(file("a-1.tar.gz", "yesterday")) is None
    assert upload_timestamp(file("a-1.tar.gz", "2027-01-15T07:00:00")) is None  # no zone


def test_a_file_younger_than_the_minimum_age_is_hidden_until_it_comes_of_age() -> None:
    verdict = decide(AGED, "pkg", NEW, [], NOW)
    assert verdict.hidden is not None
    assert verdict.hidden.rule == MIN_RELEASE_AGE
    assert verdict.hidden.of_age_at == NOW - 3600 + DAY
    assert "uploaded 1h ago" in verdict.hidden.reason
    assert decide(AGED, "pkg", NEW, [], NOW + DAY).hidden is None
    assert decide(AGED, "pkg", OLD_FILE, [], NOW).hidden is None
    assert decide(IndexPolicy(), "pkg", NEW, [], NOW).hidden is None


def test_files_without_an_upload_time_pass_counted_or_are_hidden() -> None:
    unknown = file("pkg-1.0.tar.gz", None)
    assert decide(AGED, "pkg", unknown, [], NOW).has_no_upload_time
    hiding = IndexPolicy(min_release_age=DAY, files_without_upload_time="hide")
    hidden = decide(hiding, "pkg", unknown, [], NOW).hidden
    assert hidden is not None
    assert hidden.rule == NO_UPLOAD_TIME


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("urllib3<1.26.5", "urllib3<1.26.5"),
        ("evil-*", "evil-*"),
        ({"files": "*.exe"}, "files=*.exe"),
        ({"project": "pkg", "files": "*.tar.gz"}, "project=pkg files=*.tar.gz"),
    ],
)
def test_rules_are_read_from_strings_and_tables(raw: object, text: str) -> None:
    assert parse_rule(raw).text == text


@pytest.mark.parametrize(
    "raw", ["", "urllib3 <<1", {"project": "x", "colour": "red"}, {}, 3, {"files": ""}, "a/b"]
)
def test_a_bad_rule_says_why(raw: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_rule(raw)


def test_deny_rules_match_names_versions_and_filenames() -> None:
    policy = IndexPolicy(deny=(parse_rule("pkg<1.5"), parse_rule({"files": "*.exe"})))
    hidden = decide(policy, "pkg", OLD_FILE, [], NOW).hidden
    assert hidden is not None
    assert hidden.rule == DENY
    assert "'pkg<1.5'" in hidden.reason
    assert decide(policy, "pkg", file("pkg-1.5rc1-py3-none-any.whl"), [], NOW).hidden is None
    assert decide(policy, "pkg", file("pkg-1.4rc1-py3-none-any.whl"), [], NOW).hidden is not None
    assert decide(policy, "pkg", NEW, [], NOW).hidden is None
    assert decide(policy, "other", file("other-3.0.win32.exe"), [], NOW).hidden is not None
    # Names match as PEP 503 normalizes them.
    assert decide(IndexPolicy(deny=(parse_rule("Py_Kg"),)), "py-kg", OLD_FILE, [], NOW).hidden


def test_allow_rules_hide_what_none_of_them_matches_and_deny_wins() -> None:
    policy = IndexPolicy(allow=(parse_rule("pkg"),), deny=(parse_rule("pkg==2.0"),))
    assert decide(policy, "pkg", OLD_FILE, [], NOW).hidden is None
    other = decide(policy, "other", file("other-1.0.tar.gz"), [], NOW).hidden
    assert other is not None
    assert other.rule == ALLOW
    denied = decide(policy, "pkg", NEW, [], NOW).hidden
    assert denied is not None
    assert denied.rule == DENY


def test_an_exemption_wins_over_every_rule_while_it_lasts() -> None:
    policy = IndexPolicy(min_release_age=DAY, deny=(parse_rule("pkg"),))
    assert decide(policy, "pkg", NEW, [exemption()], NOW).exempted_by == exemption()
    assert decide(policy, "pkg", NEW, [exemption("2.0")], NOW).hidden is None
    assert decide(policy, "pkg", NEW, [exemption("2")], NOW).hidden is None  # same version
    assert decide(policy, "pkg", OLD_FILE, [exemption("2.0")], NOW).hidden is not None
    assert decide(policy, "pkg", NEW, [exemption(until=NOW - 1)], NOW).hidden is not None
    revoked = Exemption(1, "root/pypi", NormalizedName("pkg"), None, "", "", NOW, None, NOW)
    assert decide(policy, "pkg", NEW, [revoked], NOW).hidden is not None


def test_a_filtered_page_drops_hidden_files_and_their_versions_and_knows_when_it_changes() -> None:
    filtered = filter_page(page(OLD_FILE, NEW, versions=("1.0", "2.0", "3.0")), [(AGED, [])], NOW)
    assert [f.filename for f in filtered.page.files] == [OLD_FILE.filename]
    assert filtered.page.versions == ("1.0", "3.0")  # 3.0 had no file to hide
    assert [(f.filename, h.rule) for f, h in filtered.hidden] == [(NEW.filename, MIN_RELEASE_AGE)]
    assert filtered.next_change == NOW - 3600 + DAY
    assert seconds_until(filtered.next_change, NOW) == int(DAY - 3600)


def test_a_page_nothing_is_hidden_from_is_the_same_page() -> None:
    whole = page(OLD_FILE, NEW)
    assert filter_page(whole, [(IndexPolicy(), [])], NOW).page is whole
    exempted = filter_page(whole, [(AGED, [exemption("2.0", until=NOW + 60)])], NOW)
    assert exempted.page is whole
    assert exempted.next_change == NOW + 60  # the exemption's end


def test_each_policy_of_the_chain_applies() -> None:
    denying = IndexPolicy(deny=(parse_rule("pkg==1.0"),))
    filtered = filter_page(page(OLD_FILE, NEW), [(AGED, []), (denying, [exemption("2.0")])], NOW)
    # Each index's exemptions lift its own rules only: 2.0 is still too young for the first.
    assert filtered.page.files == ()


@pytest.mark.parametrize(
    ("text", "target"),
    [("pkg", ("pkg", None)), ("Py_Kg==2.0", ("py-kg", "2.0")), ("pkg==2", ("pkg", "2"))],
)
def test_a_break_glass_target_is_a_project_and_perhaps_a_version(
    text: str, target: tuple[str, str | None]
) -> None:
    assert parse_target(text) == target


@pytest.mark.parametrize("text", ["", "p*", "pkg==", "pkg==banana", "../x"])
def test_a_bad_break_glass_target_says_why(text: str) -> None:
    with pytest.raises(ValueError, match=r"is no"):
        parse_target(text)
