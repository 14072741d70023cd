"""Consents: the ledger of what a person agreed to share, with whom, for what, until when."""
