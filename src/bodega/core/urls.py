"""URLs as bodega shows them to people."""

from urllib.parse import urlsplit, urlunsplit


def shown_url(url: str) -> str:
    """The URL without its credentials, for pages and messages: secrets never reach them."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))
