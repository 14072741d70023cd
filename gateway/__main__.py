"""``python -m gateway``: the same command line as ``gateway``."""

from gateway.cli import main

main()
