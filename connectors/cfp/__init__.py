"""CFP (training contribution) attestations for training funds; one module per version."""

from connectors.cfp import v1

__all__ = ["v1"]
