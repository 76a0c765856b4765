"""Project search, the pure part: what a query asks, how matches rank, what a project's
latest version and summary are.

Ranking (issue 16): the whole name, then the term as words of the name (split on - _ .),
then the term anywhere inside the name, then the summary's words. Within a tier, projects
this bodega has served more often come first (by order of magnitude of their downloads),
then shorter names. Storage only finds candidates; every ordering decision is here.

A query is the XML-RPC `search(spec, operator)` of the legacy PyPI API that `pip search`
still sends: `spec` maps a field to a list of terms, and "or" takes projects matching any
(field, term), "and" those matching all of them.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from packaging.version import InvalidVersion, Version

FIELDS = ("name", "summary")
MAX_TERMS = 16
MAX_TERM_LENGTH = 100
MAX_RESULTS = 100
# Core metadata is a few KiB; a description can be large, but nothing needs more than this.
MAX_METADATA_BYTES = 1024 * 1024
_WORD = re.compile(r"[^\W_]+")  # letters and digits: what FTS5 unicode61 keeps as tokens
_SEPARATORS = re.compile(r"[-_.\s]+")


# Substrings shorter than a trigram match far too many names to rank (and SQLite's trigram
# index cannot look them up): such a term matches whole names and whole words only.
MIN_SUBSTRING = 3
_NAME_CHARACTERS = re.compile(r"[a-z0-9-]+")


class Tier(IntEnum):
    """How well a project matches, best first."""

    EXACT = 0  # the whole name
    WORD = 1  # whole words of the name: "zope" in zope.interface
    SUBSTRING = 2  # anywhere inside the name: "yaml" in PyYAML
    SUMMARY = 3  # the summary has the term's words


@dataclass(frozen=True, slots=True)
class Criterion:
    field: str  # one of FIELDS
    term: str


@dataclass(frozen=True, slots=True)
class Query:
    criteria: tuple[Criterion, ...]
    match_all: bool  # "and"; "or" when False


class QueryError(ValueError):
    """A search spec bodega cannot answer."""


@dataclass(frozen=True, slots=True)
class Match:
    key: str  # the PEP 503 normalized name
    name: str  # upstream's spelling
    tier: Tier


def parse_query(params: Sequence[Any]) -> Query:
    """The parameters of an XML-RPC `search` call, validated."""
    if not 1 <= len(params) <= 2 or not isinstance(params[0], Mapping):
        raise QueryError("search takes a spec struct and an optional operator")
    operator = params[1] if len(params) == 2 else "and"  # the legacy API's default
    if operator not in ("and", "or"):
        raise QueryError("the operator must be 'and' or 'or'")
    criteria: list[Criterion] = []
    for field, terms in params[0].items():
        if field not in FIELDS:
            raise QueryError(f"bodega searches only {' and '.join(FIELDS)}, not {field!r}")
        for term in [terms] if isinstance(terms, str) else terms:
            if not isinstance(term, str) or len(term) > MAX_TERM_LENGTH:
                raise QueryError(f"a search term is a string of at most {MAX_TERM_LENGTH}")
            if term.strip():
                criteria.append(Criterion(field, term.strip()))
    if len(criteria) > MAX_TERMS:
        raise QueryError(f"at most {MAX_TERMS} search terms")
    return Query(tuple(criteria), operator == "and")


def name_key(term: str) -> str | None:
    """A term in the form of normalized names (PEP 503), or None when no name can hold it
    (names are letters, digits and separators: PEP 508)."""
    key = _SEPARATORS.sub("-", term.lower()).strip("-")
    return key if _NAME_CHARACTERS.fullmatch(key) else None


def name_tier(term_key: str, key: str) -> Tier | None:
    """How the normalized name `key` matches a term in name form, or None."""
    if key == term_key:
        return Tier.EXACT
    if f"-{term_key}-" in f"-{key}-":
        return Tier.WORD
    if len(term_key) >= MIN_SUBSTRING and term_key in key:
        return Tier.SUBSTRING
    return None


def summary_words(term: str) -> tuple[str, ...]:
    """The words of a term that summaries are searched for: runs of letters and digits, in
    lower case, as SQLite FTS5's unicode61 tokenizer reads text. Nothing else of the term
    reaches a store, so no term can carry query syntax (column filters, NEAR, operators)."""
    return tuple(_WORD.findall(term.lower()))


def best_matches(matches: Iterable[Match]) -> dict[str, Match]:
    """Each project once, at the best tier it reached."""
    best: dict[str, Match] = {}
    for match in matches:
        if match.key not in best or match.tier < best[match.key].tier:
            best[match.key] = match
    return best


def combine(
    per_criterion: Sequence[Mapping[str, Match]],
    *,
    match_all: bool,
    downloads: Mapping[str, int] | None = None,
) -> list[Match]:
    """One ranked list: the best tier a project reached; within a tier the projects served
    more often (`downloads`, by order of magnitude), then shorter names, then by name."""
    if not per_criterion:
        return []
    best = best_matches(m for matches in per_criterion for m in matches.values())
    if match_all:
        keys = set(per_criterion[0]).intersection(*per_criterion[1:])
        best = {key: best[key] for key in keys}
    served = downloads or {}

    def order(match: Match) -> tuple[int, int, int, str]:
        popularity = served.get(match.key, 0).bit_length()  # 0, 1, 2-3, 4-7, ...
        return (match.tier, -popularity, len(match.key), match.key)

    return sorted(best.values(), key=order)[:MAX_RESULTS]


def is_newer(version: str | None, than: str | None) -> bool:
    """Whether `version` is a valid version above `than` (anything beats None or junk)."""
    if version is None:
        return False
    try:
        new = Version(version)
    except InvalidVersion:
        return False
    try:
        return than is None or new > Version(than)
    except InvalidVersion:
        return True


@dataclass(frozen=True, slots=True)
class CoreMetadata:
    """What search and the project page read from a METADATA file (core metadata spec)."""

    version: str | None
    summary: str
    description: str
    description_content_type: str | None = None


def read_core_metadata(data: bytes) -> CoreMetadata:
    """Version, Summary, the description (body or Description header) and its content type
    of METADATA bytes."""
    # Imported here: packaging.metadata is heavy, and search reads metadata only behind answers.
    from bodega.core.core_metadata import parse_core_metadata

    fields = parse_core_metadata(data[:MAX_METADATA_BYTES])
    version = fields.get("version")
    content_type = fields.get("description_content_type")
    return CoreMetadata(
        None if version is None else version.strip(),
        " ".join(fields.get("summary", "").split()),
        fields.get("description", ""),
        None if content_type is None else content_type.strip(),
    )
