"""Versioned connectors, one package per dataset, one module per published version."""
