"""Every published connector version, listed by hand: what is served is what is written here.

Order matters where paths overlap: the status feed (``/status/events``) is mounted before the
status lookup (``/status/{siren}``).
"""

from __future__ import annotations

from connectors import acre, cfp, status, turnover
from connectors.kit import ConnectorVersion

VERSIONS: tuple[ConnectorVersion, ...] = (
    *turnover.VERSIONS,
    *status.VERSIONS,
    cfp.v1.VERSION,
    acre.v1.VERSION,
)

__all__ = ["VERSIONS"]
