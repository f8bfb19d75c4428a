"""virtual-battery: virtual batteries for PV customers, computed from smart-meter data."""

__version__ = "0.1.0"
