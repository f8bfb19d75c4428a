"""The read API and dashboard over the warehouse marts: ``vbatt serve`` (docs/api.md)."""

from vbatt.api.app import create_app

__all__ = ["create_app"]
