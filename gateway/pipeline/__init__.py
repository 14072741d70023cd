"""The one path every data request takes: authenticate, authorise, justify, fetch, minimise, audit.

``add_connector_routes`` turns each connector version's operations into FastAPI routes whose
route class (:class:`gateway.pipeline.route.PipelineRoute`) runs the whole path around them, so
a connector cannot forget a step: it only ever sees the validated parameters and a read session.
"""
