"""The published API contracts: the OpenAPI document and the frozen connector version schemas.

:mod:`gateway.contracts.schemas` cuts each connector version's contract out of the OpenAPI
document; :mod:`gateway.contracts.compat` says whether a change to it is compatible;
:mod:`gateway.contracts.cli` writes and checks the committed copies.
"""

from gateway.contracts.compat import Change, Report, compare_all, compare_contracts, compare_schemas
from gateway.contracts.schemas import (
    CONTRACTS_DIRECTORY,
    current_contracts,
    generate_document,
    read_frozen,
    version_contract,
)

__all__ = [
    "CONTRACTS_DIRECTORY",
    "Change",
    "Report",
    "compare_all",
    "compare_contracts",
    "compare_schemas",
    "current_contracts",
    "generate_document",
    "read_frozen",
    "version_contract",
]
