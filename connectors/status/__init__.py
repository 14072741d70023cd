"""Self-employed status (affiliation, radiation, regime), for CAF and CNAM.

``v1`` answers person by person (scope ``status:read``); ``feed`` publishes every status change
as a paged flow (dataset ``status-events``, scope ``status:feed``). Both read through
:mod:`connectors.status.common`.
"""

from connectors.status import feed, v1

# The feed comes first: both are mounted under /api/v1, and ``/status/events`` must be matched
# before ``/status/{siren}`` would take "events" for a SIREN.
VERSIONS = (feed.VERSION, v1.VERSION)

__all__ = ["VERSIONS"]
