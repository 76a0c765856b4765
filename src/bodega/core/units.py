"""Sizes and durations as people write them on a command line: `50G`, `90d`."""

import re

# Binary multiples, as df -h and du -h print them: 1K = 1024 bytes.
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from `50G`, `512M`, `1.5T`, `10GiB` or a plain number of bytes."""
    found = _SIZE.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a size like 50G, 512M or 1000000")
    number, unit = found.groups()
    if "." in number and not unit:
        raise ValueError(f"{text!r}: a byte count is a whole number")
    return int(float(number) * _SIZE_UNITS[unit.lower()])


def parse_duration(text: str) -> float:
    """Seconds from `90d`, `12h`, `30m`, `45s` or `2w`."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a duration like 90d, 12h, 30m, 45s or 2w")
    number, unit = found.groups()
    return float(number) * _SECONDS[unit.lower()]


def format_size(size: int) -> str:
    """`1.5 GiB`, for reports."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
