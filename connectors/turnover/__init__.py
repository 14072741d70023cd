"""Micro-entrepreneur turnover, as declared to URSSAF, for CAF and Pôle emploi.

``v1`` (deprecated) gives the declared total per period; ``v2`` adds the split by activity
category and the history of rectifications. Both read through :mod:`connectors.turnover.common`.
"""

from connectors.turnover import v1, v2

VERSIONS = (v1.VERSION, v2.VERSION)

__all__ = ["VERSIONS"]
