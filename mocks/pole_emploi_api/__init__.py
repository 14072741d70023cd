"""A mock of Pôle emploi's job-seeker status API, the upstream of the ACRE connector."""

from mocks.pole_emploi_api.app import create_app

__all__ = ["create_app"]
