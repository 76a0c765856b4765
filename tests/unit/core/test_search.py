"""Search queries, ranking and core metadata: pure functions, hostile input included."""

import xmlrpc.client

import pytest

from bodega.core.search import (
    MAX_RESULTS,
    Match,
    QueryError,
    Tier,
    combine,
    name_key,
    name_tier,
    parse_query,
    read_core_metadata,
    summary_words,
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
    ("term", "words"),
    [
        ("Requests", ("requests",)),
        ('x" OR summary : "y', ("x", "or", "summary", "y")),
        ("NEAR(a b) *", ("near", "a", "b")),
        ("-_.", ()),
    ],
)
def test_summary_terms_carry_only_words(term: str, words: tuple[str, ...]) -> None:
    assert summary_words(term) == words


def test_name_key_follows_pep_503() -> None:
    assert name_key("Flask_Login.") == "flask-login"
    assert name_key("django rest") == "django-rest"
    assert name_key("100%") is None  # no name holds it, and no LIKE wildcard gets through


@pytest.mark.parametrize(
    ("term", "key", "tier"),
    [
        ("requests", "requests", Tier.EXACT),
        ("requests", "requests-oauthlib", Tier.WORD),
        ("requests", "django-requests", Tier.WORD),
        ("zope", "zope-interface", Tier.WORD),
        ("django-rest", "django-rest-framework", Tier.WORD),
        ("requests", "requestsh", Tier.SUBSTRING),
        ("http", "httpx", Tier.SUBSTRING),
        ("yaml", "pyyaml", Tier.SUBSTRING),
        ("py", "pyyaml", None),  # too short to match inside a name
        ("py", "py-spy", Tier.WORD),
        ("flask", "requests", None),
    ],
)
def test_name_tiers(term: str, key: str, tier: Tier | None) -> None:
    assert name_tier(term, key) == tier


def matches(tier: Tier, *keys: str) -> dict[str, Match]:
    return {key: Match(key, key, tier) for key in keys}


def test_ranking_is_exact_then_words_then_inside_then_summary_then_shorter() -> None:
    found = {
        **matches(Tier.WORD, "requests-oauthlib", "django-requests"),
        **matches(Tier.SUBSTRING, "requestsh", "requestsaa"),
        **matches(Tier.EXACT, "requests"),
    }
    summary = matches(Tier.SUMMARY, "httpx", "requests")
    ranked = combine([found, summary], match_all=False)
    assert [m.key for m in ranked] == [
        "requests",
        "django-requests",
        "requests-oauthlib",
        "requestsh",
        "requestsaa",
        "httpx",
    ]
    assert [m.key for m in combine([found, summary], match_all=True)] == ["requests"]


def test_within_a_tier_served_projects_come_first_by_order_of_magnitude() -> None:
    found = matches(Tier.SUBSTRING, "httpx", "httpcore", "aiohttp", "http3", "httpie")
    downloads = {"httpcore": 40, "aiohttp": 35, "httpie": 1}
    ranked = combine([found], match_all=False, downloads=downloads)
    # 40 and 35 are the same order of magnitude: the shorter name first.
    assert [m.key for m in ranked] == ["aiohttp", "httpcore", "httpie", "http3", "httpx"]


def test_results_stop_at_the_limit_after_ranking() -> None:
    found = matches(Tier.SUBSTRING, *(f"yaml{i:04}" for i in range(500)), "pyyaml")
    ranked = combine([found], match_all=False, downloads={"pyyaml": 1})
    assert len(ranked) == MAX_RESULTS
    assert ranked[0].key == "pyyaml"


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
