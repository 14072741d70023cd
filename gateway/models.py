"""Every table of the gateway, gathered so migrations and tests see one complete metadata."""

from gateway.audit import models as audit_models
from gateway.consent import models as consent_models
from gateway.console import models as console_models
from gateway.database import Base
from gateway.keys import models as keys_models
from gateway.oauth import models as oauth_models
from gateway.partners import models as partners_models
from gateway.pipeline import models as pipeline_models
from gateway.reference import models as reference_models

metadata = Base.metadata

__all__ = [
    "audit_models",
    "consent_models",
    "console_models",
    "keys_models",
    "metadata",
    "oauth_models",
    "partners_models",
    "pipeline_models",
    "reference_models",
]
