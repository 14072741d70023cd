"""The manifest of a connector version and the shape of its operations."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.reads import Reader

SubjectKind = Literal["nir", "siren"]
Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class Subject:
    """A person whose data a request is about, by a normalised identifier."""

    kind: SubjectKind
    identifier: str


@dataclass(frozen=True)
class Disclosure(Generic[Model]):
    """What an operation returns: the answer and every subject whose data it carries."""

    body: Model
    subjects: Sequence[Subject]
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectorContext:
    """What the pipeline hands an operation: the database and the facts of the request.

    Reads go through ``reader`` (prepared statements, no transaction: see
    :mod:`gateway.reads`). An operation that writes (ACRE records its decisions) opens a
    session for it with ``open_session()``; none is made for the others.
    """

    reader: Reader
    open_session: Callable[[], AbstractAsyncContextManager[AsyncSession]]
    today: dt.date
    now: dt.datetime
    partner_kind: str
    services: Mapping[str, Any]
    """Shared clients a connector may need (e.g. ``"pole_emploi"``), set up by the gateway."""


@dataclass(frozen=True)
class Deprecation:
    """A deprecated version: announced on ``deprecated_on``, gone (410) after ``sunset_on``."""

    deprecated_on: dt.date
    sunset_on: dt.date
    successor: str
    """Path prefix of the version that replaces it, for the ``Link`` header."""


OperationFunction = Callable[..., Awaitable[Disclosure[Any]]]


@dataclass(frozen=True)
class Operation:
    """One HTTP operation of a connector version."""

    name: str
    method: Literal["GET", "POST"]
    path: str
    function: OperationFunction
    response_model: type[BaseModel]
    summary: str
    description: str
    subject: Callable[[Mapping[str, Any]], Subject | None] | None
    """The requested subject, from the validated parameters; None for feeds and batches."""
    bulk: bool
    examples: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ConnectorVersion:
    """A published version of a dataset: its scope, deprecation, fields and operations.

    ``releasable`` lists the response fields a habilitation may withhold (dotted paths in the
    JSON answer); any other field is always part of the answer. Versions never change
    incompatibly once published: a breaking change is a new version.
    """

    dataset: str
    version: int
    scope: str
    title: str
    consumers: Sequence[str]
    releasable: frozenset[str] = frozenset()
    deprecation: Deprecation | None = None
    upstream: str | None = None
    """The partner system a version calls to answer, if any: its failures are 502/503/504."""
    operations: list[Operation] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.dataset}.v{self.version}"

    @property
    def prefix(self) -> str:
        return f"/api/v{self.version}"

    def operation(
        self,
        method: Literal["GET", "POST"],
        path: str,
        *,
        response_model: type[BaseModel],
        summary: str,
        subject: Callable[[Mapping[str, Any]], Subject | None] | None = None,
        bulk: bool = False,
    ) -> Callable[[OperationFunction], OperationFunction]:
        """Register an operation; ``path`` is relative to ``/api/v{version}``."""

        def register(function: OperationFunction) -> OperationFunction:
            self.operations.append(
                Operation(
                    name=function.__name__,
                    method=method,
                    path=path,
                    function=function,
                    response_model=response_model,
                    summary=summary,
                    # cleandoc: the docstring ends up in OpenAPI, without its indentation.
                    description=inspect.cleandoc(function.__doc__ or ""),
                    subject=subject,
                    bulk=bulk,
                )
            )
            return function

        return register
