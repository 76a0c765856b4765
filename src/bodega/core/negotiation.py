"""PEP 691 content negotiation for simple-API pages."""

import functools

from bodega.core.parsing import HTML, HTML_V1, JSON_V1

# Warehouse's offer order: on equal q-values the earlier offer wins, so `*/*` (or no Accept
# at all) gets text/html, which Pipenv's hash probe needs, and pypi-simple's JSON/HTML tie
# gets v1+html, as it does from the public index.
_OFFERS = (HTML, HTML_V1, JSON_V1)
_ALIASES = {
    "application/vnd.pypi.simple.latest+json": JSON_V1,
    "application/vnd.pypi.simple.latest+html": HTML_V1,
}
_MAX_RANGES = 64


@functools.lru_cache(maxsize=64)  # clients send the same few Accept headers every time
def choose_media_type(accept: str | None, format_param: str | None = None) -> str:
    """The media type to answer with; HTML when nothing offered is acceptable.

    Warehouse answers text/html rather than 406 when nothing matches, and so does bodega:
    a browser or a bare curl then still gets a page.
    """
    if format_param:
        chosen = _ALIASES.get(format_param, format_param)
        return chosen if chosen in _OFFERS else HTML
    if not accept:
        return HTML
    ranges = _parse_accept(accept)
    best, best_q = HTML, 0.0
    for offer in _OFFERS:
        q = _quality(offer, ranges)
        if q > best_q:
            best, best_q = offer, q
    return best


def _parse_accept(header: str) -> list[tuple[str, float]]:
    ranges = []
    for item in header.split(",")[:_MAX_RANGES]:
        media_range, *params = (part.strip() for part in item.split(";"))
        media_range = _ALIASES.get(media_range.lower(), media_range.lower())
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                q = _q_value(value.strip())
        if "/" in media_range:
            ranges.append((media_range, q))
    return ranges


def _q_value(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        return 0.0
    return min(max(value, 0.0), 1.0)


def _quality(offer: str, ranges: list[tuple[str, float]]) -> float:
    """The q of the most specific range that matches `offer` (RFC 9110 section 12.5.1)."""
    offer_type = offer.split("/", maxsplit=1)[0]
    best_specificity, q = -1, 0.0
    for media_range, range_q in ranges:
        if media_range == offer:
            specificity = 2
        elif media_range == f"{offer_type}/*":
            specificity = 1
        elif media_range == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best_specificity, q = specificity, range_q
    return q
