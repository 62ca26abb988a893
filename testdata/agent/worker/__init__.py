"""The agent's work: settings and the upstream check."""

from .settings import load_settings
from .upstream import check_upstream

__all__ = ["load_settings", "check_upstream"]
