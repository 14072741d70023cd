"""The demo: four mock partners playing their exchanges against a real gateway.

:mod:`gateway.demo.partners` registers the partners, :mod:`gateway.demo.cast` picks whom
they ask about, :mod:`gateway.demo.servers` runs the servers on threads, and
:mod:`gateway.demo.run` tells the story (``gateway demo``).
"""
