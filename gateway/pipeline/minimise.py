"""Data minimisation: a partner receives only the fields its habilitation covers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def withheld_fields(releasable: frozenset[str], released: frozenset[str] | None) -> frozenset[str]:
    """The releasable fields this habilitation does not cover (None: it covers them all)."""
    if released is None:
        return frozenset()
    return releasable - released


def _drop(node: Any, path: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _drop(item, path)
        return
    if not isinstance(node, dict):
        return
    head, *rest = path
    if not rest:
        node.pop(head, None)
    elif head in node:
        _drop(node[head], rest)


def minimise(data: dict[str, Any], withheld: Iterable[str]) -> dict[str, Any]:
    """Remove each withheld dotted path from the answer, descending through lists.

    ``"periods.amounts"`` removes ``amounts`` from every element of ``periods``. The answer is
    changed in place and returned.
    """
    for path in withheld:
        _drop(data, path.split("."))
    return data
