"""Data quality gates: Great Expectations suites run against the warehouse.

The suites are JSON files in ``expectations/`` (one per suite); this package loads them
into an in-memory GX context, validates the warehouse at three checkpoints and says, for
people, what failed:

- ``after_ingest`` (warn): the readings just loaded; row-level failures are quarantined.
- ``after_ledger`` (block): meter intervals and the ledger against the rule book.
- ``before_export`` (block that partner): :func:`check_export`.
"""

from vbatt.quality.gates import CHECKPOINTS, QualityGateError, run_checkpoint
from vbatt.quality.result import Failure, QualityResult

__all__ = [
    "CHECKPOINTS",
    "Failure",
    "QualityGateError",
    "QualityResult",
    "check_export",
    "run_checkpoint",
]


def check_export(*args, **kwargs) -> QualityResult:
    """See :func:`vbatt.quality.exports.check_export` (imported lazily: pandas-heavy)."""
    from vbatt.quality.exports import check_export as _check_export

    return _check_export(*args, **kwargs)
