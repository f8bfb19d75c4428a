"""Numbers as partner files write them: fixed point, never an exponent, never "-0".

Billing systems parse numbers with their own, often strict, readers: ``1e-07`` or
``-0.000`` in a column of kWh makes an import fail or, worse, books a sign. Every format
goes through :func:`fixed`, so the rule is in one place.
"""

from __future__ import annotations

from functools import lru_cache


def fixed(value: float, decimals: int, *, decimal_point: str = ".", trim: bool = False) -> str:
    """``value`` rounded to ``decimals`` places; ``trim`` drops trailing zeros ("1.5", "2").

    Rounding is Python's (round-half-even on the binary value), the same in every format.
    A value that rounds to zero is written without a sign. Called once per value written
    (millions per export), hence the terse body.
    """
    if not value:  # the most common value of all: half of every profile is zeros
        return _zero(decimals, decimal_point, trim)
    text = f"{value:.{decimals}f}"
    if text[-1] in "fn":  # "inf", "-inf", "nan"
        raise ValueError(f"cannot write {value!r} as a number: exports carry finite values only")
    if trim and decimals:
        text = text.rstrip("0").rstrip(".")
    if text[0] == "-" and not text.strip("-0."):
        text = text[1:]
    if decimal_point != ".":
        text = text.replace(".", decimal_point)
    return text


@lru_cache(maxsize=64)
def _zero(decimals: int, decimal_point: str, trim: bool) -> str:
    return "0" if trim or not decimals else "0" + decimal_point + "0" * decimals
