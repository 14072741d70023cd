"""Partner registry: organisations, their OAuth clients and their habilitations."""
