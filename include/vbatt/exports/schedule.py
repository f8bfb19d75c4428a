"""Which periods a partner is due for when a local day has been settled.

Daily partners get every day; monthly partners get the month once its last day is
settled. The DAG and backfills ask this module, so a backfilled day exports exactly
what the schedule would have exported on that day.
"""

from __future__ import annotations

from datetime import date, timedelta

from vbatt.exports.model import Period
from vbatt.exports.partners import PartnerConfig
from vbatt.exports.period import day_period, month_period


def periods_due(partner: PartnerConfig, settled_day: date) -> list[Period]:
    if partner.schedule == "daily":
        return [day_period(settled_day, partner.timezone)]
    if (settled_day + timedelta(days=1)).day == 1:
        return [month_period(settled_day.year, settled_day.month, partner.timezone)]
    return []


def partners_due_on(settled_day: date) -> list[str]:
    """The partners (of ``partners/``) with a period due once ``settled_day`` is settled."""
    from vbatt.exports.partners import load_partners
    from vbatt.settings import get_settings

    partners = load_partners(get_settings().partners_dir)
    return [p for p, config in partners.items() if periods_due(config, settled_day)]
