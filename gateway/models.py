"""Every table of the gateway, gathered so migrations and tests see one complete metadata."""

from gateway.database import Base
from gateway.reference import models as reference_models

metadata = Base.metadata

__all__ = ["metadata", "reference_models"]
