"""Byte sizes as users write them (``'64MB'``, ``'1.5 GiB'``, ``2**20``) and as we print them."""

from __future__ import annotations

import re

from sqlml.errors import InvalidOptionError

_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_bytes(value, *, where: str = "CREATE MODEL", option: str = "device_memory") -> int:
    """``'64MB'`` -> 64_000_000, ``'64MiB'`` or ``'64M'`` -> 67_108_864; plain numbers are bytes."""
    if isinstance(value, bool):
        raise InvalidOptionError(where, option, f"expected a size such as '64MB', got {value!r}")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        match = _PATTERN.match(str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise InvalidOptionError(
                where, option, f"expected a size such as '64MB', '1.5GiB' or a number of bytes, got {value!r}"
            )
        number, unit = float(match.group(1)), match.group(2).lower()
    from sqlml.bounds import MAX_BYTES

    if not number * _UNITS[unit] <= MAX_BYTES:  # also NaN and infinity
        raise InvalidOptionError(where, option, f"must be at most {format_bytes(MAX_BYTES)}, got {value!r}")
    size = int(number * _UNITS[unit])
    if size <= 0:
        raise InvalidOptionError(where, option, f"must be more than 0 bytes, got {value!r}")
    return size


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; binary units, three significant digits."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
