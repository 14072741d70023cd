"""Who a mock partner is: its name, its SIRETs, the scopes and purposes it asks with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PartnerProfile:
    name: str
    kind: str
    role: str
    siret: str
    """SIRET of the partner's head office, as registered at the gateway."""
    recipient: str
    """SIRET of the unit that makes the requests (the ``Recipient`` header)."""
    scopes: tuple[str, ...]
    purpose: str
    """The purpose code stated by default."""

    @property
    def user_agent(self) -> str:
        return f"mock-{self.kind}/1.0"
