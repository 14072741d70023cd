"""Sends each request for a connector operation straight to its route.

Before reaching a route, a request crosses the application's middleware (server errors,
telemetry, body limit, exceptions, exit stacks) and the router, which tries every route before
the connectors' in turn; together that cost as much per request as the pipeline's token check
and audit record. Connector routes handle their own errors
(:class:`~gateway.pipeline.route.ConnectorRoute` renders every refusal and failure it knows,
audits it, and answers 500 to anything else), so the lane is the application's outermost
layer but one: inside the request-context middleware, which gives every response its request
id, headers and log line, and in front of everything else.

A request the lane does not fully match (another path, or a connector path with another
method) goes on through the application as before, so 404 and 405 answers are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.pipeline.route import ConnectorRoute


class ConnectorLane:
    def __init__(
        self, app: ASGIApp, routes: Sequence[ConnectorRoute], prefix: str = "/api/"
    ) -> None:
        self.app = app
        self._routes = tuple(routes)
        self._prefix = prefix

    def route_for(self, scope: Scope) -> tuple[ConnectorRoute, Scope] | None:
        """The connector route fully matching ``scope`` (path and method), with its params."""
        if scope["type"] != "http" or not scope["path"].startswith(self._prefix):
            return None
        for route in self._routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return route, child_scope
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.route_for(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        route, child_scope = found
        scope.update(child_scope)
        await route.handle(scope, receive, send)
