"""Outcomes a connector reports by raising; the pipeline renders them as problems.

``ConnectorError`` is the root; each subclass fixes the HTTP status. ``code`` is stable and
documented for partners (``subject.unknown``, ``turnover.no_declaration``, ...), ``detail`` is
fixed text that never quotes an identifier.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ConnectorError(Exception):
    status: ClassVar[int] = 500
    outcome: ClassVar[str] = "error"

    def __init__(self, code: str, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra or {}


class SubjectNotFound(ConnectorError):  # noqa: N818 - an outcome, named as partners read it
    """Nothing to disclose; ``code`` says why so the partner can act."""

    status = 404
    outcome = "not_found"


class InvalidRequest(ConnectorError):  # noqa: N818
    status = 422
    outcome = "refused"


class TooManyItems(ConnectorError):  # noqa: N818
    status = 413
    outcome = "refused"


class UpstreamBadAnswer(ConnectorError):  # noqa: N818
    status = 502
    outcome = "error"


class UpstreamUnavailable(ConnectorError):  # noqa: N818
    status = 503
    outcome = "error"


class UpstreamTimeout(ConnectorError):  # noqa: N818
    status = 504
    outcome = "error"
