"""Numbers as partner files write them: one rounding rule, fixed point, never an exponent,
never "-0".

Billing systems parse numbers with their own, often strict, readers: ``1e-07`` or
``-0.000`` in a column of kWh makes an import fail or, worse, books a sign. And the same
value must read the same in every file a partner gets: MSCONS and CSV of one quarter hour
may not differ in the third decimal. Every format goes through :func:`fixed` (text) or
:func:`rounded` (a ``Decimal``, for formats that add rounded values), so the rule is here,
once:

    a value is rounded half-even to ``decimals`` places from its shortest decimal form
    (``repr``), i.e. as the number a person reads: 0.0015 -> 0.002, 0.0025 -> 0.002,
    2.0025 -> 2.002, although the binary doubles nearest to them lie just below or above.

Rounding the binary value instead (Python's ``format``) would write 0.001 for 0.0015 and
0.003 for 2.0025. Both forms agree everywhere except on such exact decimal ties, so the
fast path formats the binary value and only a tie takes the ``Decimal`` route.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache


def fixed(value: float, decimals: int, *, decimal_point: str = ".", trim: bool = False) -> str:
    """``value`` rounded by the rule above; ``trim`` drops trailing zeros ("1.5", "2").

    A value that rounds to zero is written without a sign. Called once per value written
    (millions per export), hence the terse body.
    """
    if not value:  # the most common value of all: half of every profile is zeros
        return _zero(decimals, decimal_point, trim)
    text = f"{value:.{decimals}f}"
    if text[-1] in "fn":  # "inf", "-inf", "nan"
        raise ValueError(f"cannot write {value!r} as a number: exports carry finite values only")
    if _tie(value, decimals):
        text = f"{_rounded(float(value), decimals):f}"
    if trim and decimals:
        text = text.rstrip("0").rstrip(".")
    if text[0] == "-" and not text.strip("-0."):
        text = text[1:]
    if decimal_point != ".":
        text = text.replace(".", decimal_point)
    return text


def rounded(value: float, decimals: int) -> Decimal:
    """``value`` as a ``Decimal`` of ``decimals`` places, rounded by the same rule."""
    if not value:
        return _ZEROS[decimals] if decimals < len(_ZEROS) else Decimal(0).scaleb(-decimals)
    return _rounded(float(value), decimals)


def _tie(value: float, decimals: int) -> bool:
    """Is the shortest decimal form of ``value`` exactly halfway at ``decimals`` places?"""
    text = repr(value)
    if "e" in text:  # tiny or huge: let Decimal decide
        _, digits, exponent = Decimal(text).as_tuple()
        return exponent == -(decimals + 1) and digits[-1] == 5
    fraction = text.partition(".")[2]
    return len(fraction) == decimals + 1 and fraction[-1] == "5"


@lru_cache(maxsize=1 << 16)
def _rounded(value: float, decimals: int) -> Decimal:
    quantum = Decimal(1).scaleb(-decimals)
    result = Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_EVEN)
    return result.copy_abs() if not result else result


_ZEROS = [Decimal(0).scaleb(-d) for d in range(10)]


@lru_cache(maxsize=64)
def _zero(decimals: int, decimal_point: str, trim: bool) -> str:
    return "0" if trim or not decimals else "0" + decimal_point + "0" * decimals
