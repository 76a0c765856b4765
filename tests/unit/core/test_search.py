"""Search queries, ranking and core metadata: pure functions, hostile input included."""

import xmlrpc.client

import pytest

from bodega.core.search import (
    Match,
    QueryError,
    Tier,
    combine,
    fts_phrase,
    latest_version,
    name_key,
    parse_query,
    read_core_metadata,
)
from bodega.core.xmlrpc import PARSE_ERROR, CallError, parse_call, render_result


def test_pip_search_call_parses_into_name_and_summary_criteria() -> None:
    query = parse_query(({"name": ["Flask_Login"], "summary": ["flask login"]}, "or"))
    assert [(c.field, c.term) for c in query.criteria] == [
        ("name", "Flask_Login"),
        ("summary", "flask login"),
    ]
    assert not query.match_all


@pytest.mark.parametrize(
    "params",
    [
        (),
        ("x",),
        ({"author": ["x"]},),
        ({"name": ["x"]}, "xor"),
        ({"name": [1]},),
        ({"name": ["x" * 101]},),
        ({"name": ["x"] * 17},),
    ],
)
def test_bad_search_specs_are_refused(params: tuple[object, ...]) -> None:
    with pytest.raises(QueryError):
        parse_query(params)


@pytest.mark.parametrize(
    ("term", "phrase"),
    [
        ("requests", '"requests"*'),
        ("py", '"py"'),
        ('x" OR summary : "y', '"x or summary y"'),
        ("NEAR(a b) *", '"near a b"'),
        ("-_.", None),
    ],
)
def test_fts_phrases_carry_only_words(term: str, phrase: str | None) -> None:
    assert fts_phrase(term) == phrase


def test_name_key_follows_pep_503() -> None:
    assert name_key("Flask_Login.") == "flask-login"


def test_ranking_is_exact_then_prefix_then_word_then_summary_then_shorter() -> None:
    found = {
        "django-requests": Match("django-requests", "django-requests", Tier.WORD),
        "requests-oauthlib": Match("requests-oauthlib", "requests-oauthlib", Tier.PREFIX),
        "requests-x": Match("requests-x", "requests-x", Tier.PREFIX),
        "requests": Match("requests", "requests", Tier.EXACT),
    }
    summary = {"httpx": Match("httpx", "httpx", Tier.SUMMARY)}
    ranked = combine([found, summary], match_all=False)
    assert [m.key for m in ranked] == [
        "requests",
        "requests-x",
        "requests-oauthlib",
        "django-requests",
        "httpx",
    ]
    assert combine([found, summary], match_all=True) == []


def test_latest_version_prefers_final_releases() -> None:
    assert latest_version(["1.0", "2.0rc1", "junk", "1.10"]) == "1.10"
    assert latest_version(["2.0rc1", "2.0b1"]) == "2.0rc1"
    assert latest_version(["junk"]) is None


def test_core_metadata_gives_summary_version_and_description() -> None:
    data = b"Metadata-Version: 2.1\nName: a\nVersion: 1.0\nSummary: <b>hi</b>\n\n</pre>body\n"
    metadata = read_core_metadata(data)
    assert (metadata.version, metadata.summary, metadata.description) == (
        "1.0",
        "<b>hi</b>",
        "</pre>body\n",
    )


def test_xmlrpc_results_stay_parseable_with_hostile_strings() -> None:
    body = render_result([{"name": "a\x00b", "summary": "\ud800</string>&", "version": "1"}])
    (hits,), _ = xmlrpc.client.loads(body)
    assert hits == [{"name": "a\ufffdb", "summary": "\ufffd</string>&", "version": "1"}]


def test_xmlrpc_entities_are_refused_before_expansion() -> None:
    bomb = b'<!DOCTYPE l [<!ENTITY a "a">]><methodCall><methodName>&a;</methodName></methodCall>'
    with pytest.raises(CallError) as error:
        parse_call(bomb)
    assert error.value.code == PARSE_ERROR
