"""The one path every data request takes: authenticate, authorise, justify, fetch, minimise, audit.

``add_connector_routes`` turns each connector version's operations into FastAPI routes, which
document them, whose route class (:class:`gateway.pipeline.route.ConnectorRoute`) runs the whole
path around them, so a connector cannot forget a step: it only ever sees the validated
parameters and a read session. :class:`gateway.pipeline.lane.ConnectorLane` sends each of their
requests to its route directly.
"""
