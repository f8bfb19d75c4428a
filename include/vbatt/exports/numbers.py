"""Numbers as partner files write them: fixed point, never an exponent, never "-0".

Billing systems parse numbers with their own, often strict, readers: ``1e-07`` or
``-0.000`` in a column of kWh makes an import fail or, worse, books a sign. Every format
goes through :func:`fixed`, so the rule is in one place.
"""

from __future__ import annotations

import math


def fixed(value: float, decimals: int, *, decimal_point: str = ".", trim: bool = False) -> str:
    """``value`` rounded to ``decimals`` places; ``trim`` drops trailing zeros ("1.5", "2").

    Rounding is Python's (round-half-even on the binary value), the same in every format.
    A value that rounds to zero is written without a sign.
    """
    if not math.isfinite(value):
        raise ValueError(f"cannot write {value!r} as a number: exports carry finite values only")
    if not 0 <= decimals <= 9:
        raise ValueError(f"decimals must be 0..9, not {decimals}")
    text = f"{value:.{decimals}f}"
    if trim and "." in text:
        text = text.rstrip("0").rstrip(".")
    if text.startswith("-") and not text.strip("-0."):
        text = text[1:]
    if decimal_point != ".":
        text = text.replace(".", decimal_point)
    return text
