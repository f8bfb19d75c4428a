"""Does a house meter measure both directions? Asked of the smart-me cloud before a write.

The rule book's input is a meter with an import and an export register; a battery on a
meter that only counts import would never charge. When the cloud knows the meter and
reports no export register (``CounterReadingExport``), the write is refused with a message
that says so. A meter the cloud does not know (404) passes: its readings may come as files.
When the cloud cannot be asked (down, credentials refused), the write is refused with 503,
to be retried, rather than accepted unchecked. Without a configured cloud (no
``SMARTME_API_KEY`` / ``SMARTME_USER``) ``vbatt serve`` runs no check (docs/api.md).

The check is a plain callable (meter id -> problem or None) handed to ``create_app``, so
tests put the simulated cloud behind it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from vbatt.api.errors import Refused
from vbatt.ingest.smartme import (
    SmartMeClient,
    SmartMeConfig,
    SmartMeError,
    SmartMeNotFoundError,
)

log = logging.getLogger(__name__)

MeterCheck = Callable[[str], str | None]


class SmartMeMeterCheck:
    """A meter check that asks the smart-me cloud for the device (one call, short timeout)."""

    def __init__(self, config: SmartMeConfig) -> None:
        # an answer within a request's patience: few retries, no long back-off
        self.config = replace(config, max_retries=1, timeout=10.0, backoff_max=2.0, rate=None)

    def __call__(self, meter_id: str) -> str | None:
        try:
            with SmartMeClient(self.config) as client:
                device = client.get_device(meter_id)
        except SmartMeNotFoundError:
            return None
        except SmartMeError as exc:
            log.warning("meter check of %s: smart-me cloud not available: %s", meter_id, exc)
            raise Refused(
                503,
                f"Could not ask the smart-me cloud whether meter {meter_id!r} measures both"
                " directions; try again later.",
                code="meter_check_unavailable",
                headers={"Retry-After": "60"},
            ) from None
        if device.export_kwh is None:
            return (
                f"{meter_id!r}: the smart-me cloud reports no export register (1-0:2.8.0) for"
                " this meter; a battery needs a meter that measures both directions"
            )
        return None


def from_settings() -> MeterCheck | None:
    """The check for ``vbatt serve``: the configured smart-me cloud, or None (no check)."""
    from vbatt.settings import smartme_credentials

    try:
        credentials = smartme_credentials()
    except ValueError:  # `vbatt serve` says so at start
        return None
    return SmartMeMeterCheck(SmartMeConfig(**credentials))
