"""Mock partners: consumers that call the gateway over HTTP, and a mock Pôle emploi API."""
